"""The light core: ``pip install skrel`` (no extras) fits DFS and the baseline, and a family whose
extra is missing raises one ImportError naming the extra.

Each test runs a fresh interpreter in which the optional packages cannot be imported (a meta-path
finder refuses them), so it checks the same thing in the full development environment and in CI's
core-only one (``.ci/run`` installs ``pip install .`` alone in a second virtual environment and
runs this directory there).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

OPTIONAL = ["torch", "torch_geometric", "torch_frame", "skorch", "featuretools", "woodwork", "tabpfn", "relbench",
            "matplotlib", "pyspark", "dask", "distributed"]

BLOCK = f"""
import importlib.abc, sys

class _Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Missing())
"""


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=600)


def test_dfs_and_baseline_fit_without_any_extra():
    out = run("""
        import json, sys, warnings
        warnings.simplefilter("ignore")
        import skrel
        from skrel import BaselineEstimator, DFSEstimator
        from skrel.datasets import load_flights
        from skrel.metrics import evaluate

        db, tasks = load_flights()
        task = tasks["plane-cancel"]
        X_val, y_val = task.split(db, "val")
        scores = {}
        for est in (DFSEstimator(max_depth=1, n_estimators=50, random_state=0),
                    BaselineEstimator(n_estimators=50, random_state=0)):
            est.fit(db, task)
            scores[type(est).__name__] = evaluate(est, X_val, y_val, task.metric)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "skorch", "torch_frame", "matplotlib"})
        print(json.dumps({"scores": scores, "heavy": heavy}))
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert all(0.5 < s <= 1 for s in result["scores"].values()), result


@pytest.mark.parametrize("code, extra", [
    ("from skrel import RDLEstimator", "torch"),
    ("from skrel import RelGTEstimator", "torch"),
    ("from skrel import RelatronSelector", "torch"),
    ("import skrel.nn", "torch"),
    ("from skrel.estimators import TorchFrameLearner", "torch"),
    ("from skrel.estimators._tabular import prepare_learner; prepare_learner('mlp', 'binary')", "torch"),
    ("from skrel.data.relbench_io import _relbench_base; _relbench_base()", "relbench"),
])
def test_a_missing_extra_is_one_import_error_naming_it(code, extra):
    out = run(f"""
        try:
            {code}
        except ImportError as exc:
            print("ImportError:", exc)
        else:
            print("imported")
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f'pip install "skrel[{extra}]"' in out.stdout, out.stdout


def test_the_command_line_lists_its_commands_without_extras():
    out = run("""
        import sys
        from skrel.cli import main
        try:
            code = main(["--help"])
        except SystemExit as exc:
            code = exc.code
        print("exit", code)
    """)
    assert "exit 0" in out.stdout and "fit" in out.stdout, out.stdout + out.stderr[-2000:]
