"""``skrel bank build | extend | show`` (skrel.relatron.bank_cli) on the shipped bank and tiny tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import make_shop, shop_task_toml
from skrel.cli import build_parser, main
from skrel.relatron.bank import BANK_PATH, PerformanceBank
from skrel.relatron.bank_cli import task_specs

ROOT = Path(__file__).resolve().parents[2]
ONE_SYNTHETIC = "synthetic/h0.0-d1-binary-n300"  # the smallest task of the collection


def run_json(capsys, argv) -> dict:
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skrel: error: "), err
    return err[0]


@pytest.fixture
def shop(tmp_path):
    """The shop database as a directory of Parquet files with a schema.toml, and its task file."""
    data = tmp_path / "shop"
    data.mkdir()
    for name, t in make_shop().tables.items():
        t.df.to_parquet(data / f"{name}.parquet", index=False)
    (data / "schema.toml").write_text(
        '[tables.users]\nprimary_key = "user_id"\n[tables.items]\nprimary_key = "item_id"\n'
        '[tables.orders]\nprimary_key = "order_id"\ntime_column = "at"\n'
        'foreign_keys = { user_id = "users", item_id = "items" }\n'
    )
    task = tmp_path / "task.toml"
    task.write_text(shop_task_toml())
    return ["--db", str(data), "--task", str(task)]


@pytest.mark.skipif(not BANK_PATH.exists(), reason="no shipped bank")
def test_show_the_shipped_bank(capsys):
    frame = PerformanceBank.load().to_frame()
    out = run_json(capsys, ["bank", "show", "--json"])
    assert out["path"] == str(BANK_PATH)
    assert out["tasks"] == frame["task_id"].nunique() and out["fits"] == len(frame)
    assert out["families"] == frame["family"].value_counts().to_dict()
    table = {t["task_id"]: t for t in out["task_table"]}
    assert set(table) == set(frame["task_id"])
    assert table["f1/driver-dnf"]["best_family"] == PerformanceBank.load().best_family()["f1/driver-dnf"]
    assert main(["bank", "show"]) == 0
    text = capsys.readouterr().out
    assert f"{out['tasks']} tasks, {out['fits']} fits" in text and "f1/driver-dnf" in text


def test_a_missing_bank_points_at_the_command(capsys, tmp_path):
    assert main(["bank", "show", "--bank", str(tmp_path / "none.parquet")]) == 2
    assert "build one with `skrel bank build`" in error_line(capsys)
    with pytest.raises(FileNotFoundError, match="skrel bank extend --empty"):
        PerformanceBank.load(tmp_path / "none.parquet")


def test_extend_a_bank_with_a_task_of_yours(capsys, shop, tmp_path):
    first = tmp_path / "mine.parquet"
    out = run_json(capsys, ["bank", "extend", *shop, "--empty", "--families", "baseline", "--budget", "1",
                            "--no-landscape", "--out", str(first), "--json"])
    assert out == {"out": str(first), "task_id": "user/user-active", "new_fits": 1, "fits": 1,
                   "best_family": "baseline"}
    frame = PerformanceBank.load(first).to_frame()
    assert frame["task_id"].tolist() == ["user/user-active"] and frame["family"].tolist() == ["baseline"]
    assert json.loads(frame["params"][0]) == {} and 0.0 <= frame["test"][0] <= 1.0
    assert any(c.startswith("emb:") for c in frame.columns)

    second = tmp_path / "more.parquet"
    out = run_json(capsys, ["bank", "extend", *shop, "--bank", str(first), "--task-id", "shop/again", "--families",
                            "baseline", "--budget", "1", "--seeds", "0", "1", "--no-landscape", "--out", str(second),
                            "--json"])
    assert (out["new_fits"], out["fits"]) == (2, 3)
    frame = PerformanceBank.load(second).to_frame()
    again = frame[frame["task_id"] == "shop/again"]
    assert sorted(again["seed"]) == [0, 1] and set(again["group"]) == {"shop"}
    # the same fit, same seed, same score whatever the task id
    pd.testing.assert_series_equal(frame.loc[frame["seed"] == 0, "test"].reset_index(drop=True),
                                   pd.Series([frame["test"][0]] * 2, name="test"))

    assert main(["bank", "extend", *shop, "--bank", str(second), "--task-id", "shop/again", "--families",
                 "baseline", "--out", str(second)]) == 2
    assert "'shop/again' is already in the bank" in error_line(capsys)
    assert main(["bank", "extend", *shop, "--families", "nope", "--out", str(second)]) == 2
    assert "unknown family 'nope'" in error_line(capsys)
    assert main(["bank", "extend", "--db", shop[1], "--out", str(second)]) == 2
    assert "bank extend needs a task" in error_line(capsys)


def test_build_one_task_then_resume(capsys, tmp_path):
    assert any(s["task_id"].startswith(ONE_SYNTHETIC) for s in task_specs())
    argv = ["bank", "build", "--only", ONE_SYNTHETIC, "--families", "baseline", "--budget", "1", "--jobs", "1",
            "--records", str(tmp_path / "records"), "--out", str(tmp_path / "bank.parquet"), "--verbose", "0"]
    assert main(argv) == 0
    assert "1 tasks, 1 fits (1 new" in capsys.readouterr().out
    records = list((tmp_path / "records").glob("*.jsonl"))
    assert len(records) == 1 and records[0].name.startswith("synthetic__h0.0-d1-binary-n300")
    frame = PerformanceBank.load(tmp_path / "bank.parquet").to_frame()
    assert len(frame) == 1 and frame["source"][0] == "synthetic" and frame["group"][0] == "synthetic-seed0"
    assert main(argv) == 0  # resumed: nothing left to fit, the same bank
    assert "1 tasks, 1 fits (0 new" in capsys.readouterr().out
    pd.testing.assert_frame_equal(PerformanceBank.load(tmp_path / "bank.parquet").to_frame(), frame)
    assert main(["bank", "build", "--only", "nothing/", "--records", str(tmp_path / "r2")]) == 2
    assert "No task id starts with ['nothing/']; the tasks are synthetic/" in error_line(capsys)
    assert main(["bank", "build", "--families", "nope", "--records", str(tmp_path / "r2")]) == 2
    assert "Unknown model 'nope'" in error_line(capsys)


def test_every_bank_option_has_help(capsys):
    bank = build_parser()._subparsers._group_actions[0].choices["bank"]
    actions = bank._subparsers._group_actions[0].choices
    assert set(actions) == {"build", "extend", "show"}
    for name, sub in actions.items():
        for action in sub._actions:
            assert action.help, f"bank {name}: option {action.dest} has no help text"
        assert main(["bank", name, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: skrel bank {name}")


def test_the_benchmark_script_is_the_command():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "build_bank.py"), "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: skrel bank build") and "--records DIR" in proc.stdout
