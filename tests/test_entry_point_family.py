"""A family from another package, declared by a ``skrel.families`` entry point: skrel finds it with no
edit to skrel (the registry, the command line, the bank, the selector's candidates).

The "package" is a directory holding a ``.dist-info`` with an ``entry_points.txt`` that points at
``tests/test_third_party_family.py``'s ``SPEC``, put on ``PYTHONPATH`` of a fresh interpreter:
exactly what ``pip install`` of a package declaring the entry point leaves behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import make_shop, shop_task_toml
from skrel.data import save_directory

TESTS = Path(__file__).resolve().parent


def _package(tmp_path: Path, target: str = "test_third_party_family:SPEC") -> dict:
    info = tmp_path / "skrel_recency-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: skrel-recency\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[skrel.families]\nrecency = {target}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _run(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=600)


def test_an_entry_point_family_is_registered_listed_and_banked(tmp_path):
    save_directory(make_shop(), tmp_path / "shop")
    (tmp_path / "task.toml").write_text(shop_task_toml())
    env = _package(tmp_path)
    env["SKREL_TEST_TMP"] = str(tmp_path)
    out = _run("""
        import json, warnings
        warnings.simplefilter("ignore")
        from skrel.cli import build_parser
        from skrel.estimators.registry import FAMILIES, make_model
        from skrel.relatron.bank import PerformanceBank, bank_config_counts
        from skrel.utils.estimator_checks import shop_task, make_shop_database

        epilog = build_parser().epilog
        db = make_shop_database()
        task = shop_task("binary")
        # `skrel bank extend` over the shop database as a directory and its task file (written by the test)
        import os
        from pathlib import Path
        from skrel.cli import main

        root = Path(os.environ["SKREL_TEST_TMP"])
        code = main(["bank", "extend", "--db", str(root / "shop"), "--task", str(root / "task.toml"), "--empty",
                     "--families", "recency", "--budget", "2", "--no-landscape", "--out", str(root / "bank.parquet")])
        assert code == 0, code
        records = PerformanceBank.load(root / "bank.parquet").to_frame()
        from skrel import RelatronSelector

        shipped = PerformanceBank.load()
        default_candidates = RelatronSelector()._candidates(shipped).families
        sel = RelatronSelector(candidates=["baseline", "recency"], budget=1, post_selection=None,
                               random_state=0).fit(db, task)
        print(json.dumps({
            "registered": "recency" in FAMILIES,
            "listed": "recency" in epilog,
            "built": type(make_model("recency", {"days": 30})).__name__,
            "counts": bank_config_counts(["recency"]),
            "families": sorted(set(records["family"])),
            "fits": int(len(records)),
            "val": float(records["val"].max()),
            "default_candidates": default_candidates,
            "reason": sel.macro_reason_,
            "chosen": sel.selected_family_,
        }))
    """, env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["registered"] and result["listed"] and result["built"] == "RecencyBoostingEstimator"
    assert result["counts"] == {"recency": 4} and result["families"] == ["recency"] and result["fits"] == 2
    assert 0.5 < result["val"] <= 1
    # the shipped bank has never seen the family: still a candidate, measured on validation, and said so
    assert "recency" in result["default_candidates"]
    assert "the bank has no fits of recency" in result["reason"], result["reason"]
    assert result["chosen"] in ("baseline", "recency")


def test_a_broken_entry_point_warns_and_skrel_still_works(tmp_path):
    out = _run("""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from skrel.estimators.registry import family_names
        print(family_names())
        print([str(w.message) for w in caught if "entry point" in str(w.message)])
    """, _package(tmp_path, "no_such_module:SPEC"))
    assert out.returncode == 0, out.stderr[-3000:]
    names, messages = out.stdout.strip().splitlines()[-2:]
    assert "'dfs'" in names and "recency" not in names
    assert "skrel family entry point 'recency' (no_such_module:SPEC) was not loaded" in messages
