"""Before/after check of a change to the torch families' training loop, on rel-f1.

Runs the same RDL and RelGT fits on the code at ``--before`` (a git revision, checked out in a
temporary worktree) and on the working tree, alternating the two in fresh subprocesses so that
both see the same machine load, and reports per fit: whether test predictions are identical,
the test metric of each, and the ratio of training seconds per epoch (after / before).

    python benchmarks/torch_base.py --before afcd7dd --tasks driver-dnf driver-top3 driver-position \
        --models rdl relgt --max-epochs 2 --max-steps 40

Parameter names follow the working tree's vocabulary; ``--rename old=new`` maps them for the old
revision (default: the renames of the skorch migration, ``max_epochs=epochs``, ``num_layers=layers``
for RelGT, ``n_iter_no_change=patience``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import cpu_model  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[4]))
from skrel.datasets import load_f1
from skrel.estimators.rdl import RDLEstimator
from skrel.estimators.relgt import RelGTEstimator
from skrel.metrics import evaluate
db, tasks = load_f1(sys.argv[1])
task = tasks[sys.argv[2]]
params = json.loads(sys.argv[3])
cls = RDLEstimator if params.pop("__model") == "rdl" else RelGTEstimator
est = cls(**params).fit(db, task)
X, y = task.split(db, "test")
pred = est.predict_proba(X)[:, 1] if task.task_type == "binary" else est.predict(X)
h = est.history_
print(json.dumps({"test": evaluate(est, X, y, task.metric), "pred": pred.tolist(),
                  "train_seconds_per_epoch": sum(r["train_seconds"] for r in h) / len(h), "epochs": len(h)}))
"""

OLD_NAMES = {"max_epochs": "epochs", "n_iter_no_change": "patience"}
OLD_RELGT_NAMES = {"num_layers": "layers"}


def run(pythonpath: Path, data: str, task: str, params: dict, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run([sys.executable, "-c", CHILD, data, task, json.dumps(params), str(threads)],
                         capture_output=True, text=True, env=env, cwd=str(pythonpath), check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def old_params(params: dict, model: str) -> dict:
    names = {**OLD_NAMES, **(OLD_RELGT_NAMES if model == "relgt" else {})}
    return {names.get(k, k): v for k, v in params.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, help="git revision of the code before the change")
    p.add_argument("--path", default=str(ROOT.parent / "shared" / "data" / "f1"))
    p.add_argument("--tasks", nargs="+", default=["driver-dnf", "driver-top3", "driver-position"])
    p.add_argument("--models", nargs="+", default=["rdl", "relgt"])
    p.add_argument("--max-epochs", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=40, help="RDL's max_steps_per_epoch (0: all batches)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "torch_base.json"))
    args = p.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.before],
                       check=True)
        try:
            for task in args.tasks:
                for model in args.models:
                    params = {"__model": model, "max_epochs": args.max_epochs, "random_state": args.seed}
                    if model == "rdl":  # RelGT had no max_steps_per_epoch before the torch base
                        params["max_steps_per_epoch"] = args.max_steps or None
                    old = run(before, args.path, task, old_params(params, model), args.threads)
                    new = run(ROOT, args.path, task, dict(params), args.threads)
                    same = old["pred"] == new["pred"]
                    ratio = new["train_seconds_per_epoch"] / old["train_seconds_per_epoch"]
                    rows.append({"task": task, "model": model, "identical_predictions": same,
                                 "test_before": old["test"], "test_after": new["test"],
                                 "train_s_per_epoch_before": round(old["train_seconds_per_epoch"], 2),
                                 "train_s_per_epoch_after": round(new["train_seconds_per_epoch"], 2),
                                 "ratio_after_before": round(ratio, 3)})
                    print(f"{task:16s} {model:6s} identical={same} test {old['test']:.4f} -> {new['test']:.4f} "
                          f"train s/epoch {old['train_seconds_per_epoch']:.2f} -> {new['train_seconds_per_epoch']:.2f}"
                          f" (x{ratio:.3f})", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    result = {"machine": f"{cpu_model()}, {os.cpu_count()} cores", "before": args.before, "settings": vars(args),
              "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2))
    ratios = [r["ratio_after_before"] for r in rows]
    print(f"identical: {sum(r['identical_predictions'] for r in rows)}/{len(rows)}; "
          f"seconds per epoch after/before: median x{sorted(ratios)[len(ratios) // 2]:.3f}")


if __name__ == "__main__":
    main()
