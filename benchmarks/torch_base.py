"""Before/after check of a change to the torch families' training loop, on rel-f1.

Runs the same RDL and RelGT fits on the code at ``--before`` (a git revision, checked out in a
temporary worktree) and on the checkout this script is in ("after"), alternating the two in fresh
subprocesses so that both see the same machine load, and reports per fit: whether test
predictions are identical, the test metric of each, and the training seconds per epoch (wall and
process CPU, best of ``--repeats``) with their ratio after / before.

    python benchmarks/torch_base.py --before afcd7dd --tasks driver-dnf driver-top3 driver-position \
        --models rdl relgt --max-epochs 2 --max-steps 40 --repeats 2

Parameter names follow this checkout's vocabulary and are mapped to the old names for the
``--before`` revision (the skorch migration's renames: ``max_epochs`` was ``epochs``,
``n_iter_no_change`` was ``patience``, RelGT's ``num_layers`` was ``layers``).
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
                  "train_seconds_per_epoch": sum(r["train_seconds"] for r in h) / len(h),
                  "train_cpu_seconds_per_epoch": sum(r["train_cpu_seconds"] for r in h) / len(h),
                  "epochs": len(h)}))
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
    p.add_argument("--repeats", type=int, default=1, help="fits of each version, alternated; the best time counts")
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
                    olds, news = [], []
                    for _ in range(args.repeats):  # alternate, so both see the same machine load
                        olds.append(run(before, args.path, task, old_params(params, model), args.threads))
                        news.append(run(ROOT, args.path, task, dict(params), args.threads))
                    old, new = olds[0], news[0]
                    same = all(o["pred"] == old["pred"] for o in olds + news)
                    wall = [min(r["train_seconds_per_epoch"] for r in rs) for rs in (olds, news)]
                    cpu = [min(r["train_cpu_seconds_per_epoch"] for r in rs) for rs in (olds, news)]
                    rows.append({"task": task, "model": model, "identical_predictions": same,
                                 "test_before": old["test"], "test_after": new["test"],
                                 "train_s_per_epoch_before": round(wall[0], 2),
                                 "train_s_per_epoch_after": round(wall[1], 2),
                                 "train_cpu_s_per_epoch_before": round(cpu[0], 2),
                                 "train_cpu_s_per_epoch_after": round(cpu[1], 2),
                                 "ratio_after_before": round(wall[1] / wall[0], 3),
                                 "cpu_ratio_after_before": round(cpu[1] / cpu[0], 3)})
                    print(f"{task:16s} {model:6s} identical={same} test {old['test']:.4f} -> {new['test']:.4f} "
                          f"train s/epoch (best of {args.repeats}) {wall[0]:.2f} -> {wall[1]:.2f} "
                          f"(x{wall[1] / wall[0]:.3f}), CPU s/epoch {cpu[0]:.2f} -> {cpu[1]:.2f} "
                          f"(x{cpu[1] / cpu[0]:.3f})", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    result = {"machine": f"{cpu_model()}, {os.cpu_count()} cores", "before": args.before, "settings": vars(args),
              "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2))
    ratios = sorted(r["ratio_after_before"] for r in rows)
    cpu = sorted(r["cpu_ratio_after_before"] for r in rows)
    print(f"identical: {sum(r['identical_predictions'] for r in rows)}/{len(rows)}; seconds per epoch after/before: "
          f"median x{ratios[len(ratios) // 2]:.3f} wall, x{cpu[len(cpu) // 2]:.3f} CPU")


if __name__ == "__main__":
    main()
