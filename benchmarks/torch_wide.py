"""The torch families with their defaults on ``wide`` (issue 10, item 3): parameters, seconds per
epoch and peak memory, against the LightGBM baseline as the anchor.

Each family runs in its own subprocess (peak RSS per family): it builds the graph and features of
the training database, trains ``--steps`` optimizer steps of one epoch with the default settings,
and predicts the val rows. Seconds per epoch are projected from the measured steps (steps per
epoch x seconds per step); everything else is measured.

    python benchmarks/torch_wide.py [--scale 1.0] [--task player-form] [--steps 20] [--threads 1] [--no-save]

Results: ``benchmarks/results/torch_wide.md`` and ``.json``, with the machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import ROOT, machine, standard_flags

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[4]))
from skrel.datasets import load_dataset
from skrel.estimators.registry import make_model
from skrel.metrics import evaluate
t0 = time.perf_counter()
db, tasks = load_dataset("wide", scale=float(sys.argv[1]))
task = tasks[sys.argv[2]]
X, y = task.split(db, "train")
X_val, y_val = task.split(db, "val")
load_s = time.perf_counter() - t0
model, steps = sys.argv[3], int(sys.argv[5])
params = {"random_state": 0}
if model != "baseline":
    params.update(max_epochs=1, max_steps_per_epoch=steps)
est = make_model(model, **params)
t0 = time.perf_counter()
est.fit(X, y, X_val=X_val, y_val=y_val)
fit_s = time.perf_counter() - t0
t0 = time.perf_counter()
score = evaluate(est, X_val, y_val, task.metric)
predict_s = time.perf_counter() - t0
out = {"model": model, "train_rows": len(X), "val_rows": len(X_val), "load_s": round(load_s, 1),
       "fit_s": round(fit_s, 1), "predict_val_s": round(predict_s, 1), "val": score,
       "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)}
if model != "baseline":
    h = est.history_[0]
    per_step = h["train_seconds"] / h["steps"]
    full = -(-len(X) // est.batch_size_) if est.max_steps_per_epoch else est.steps_per_epoch_
    out.update(n_params=est.n_params_, batch_size=est.batch_size_, steps=h["steps"],
               seconds_per_step=round(per_step, 3),
               steps_per_epoch=full, projected_seconds_per_epoch=round(per_step * full, 0))
print(json.dumps(out))
"""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--task", default="player-form")
    p.add_argument("--models", nargs="+", default=["baseline", "rdl", "relgt"])
    p.add_argument("--steps", type=int, default=20, help="optimizer steps measured per torch family")
    p.add_argument("--threads", type=int, default=1)
    standard_flags(p, "torch_wide", render=False)
    args = p.parse_args(argv)
    rows = []
    for model in args.models:
        res = subprocess.run([sys.executable, "-c", CHILD, str(args.scale), args.task, model, str(args.threads),
                              str(args.steps)], capture_output=True, text=True, cwd=str(ROOT),
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        if res.returncode != 0:
            print(f"{model}: failed\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    anchor = next((r for r in rows if r["model"] == "baseline"), None)
    lines = [f"# Torch families with their defaults on `wide` ({args.task}, scale {args.scale})", "",
             f"Machine: {machine()}; torch threads {args.threads}. "
             f"Command: `python benchmarks/torch_wide.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
             "", "| model | train rows | parameters | batch size | s/step | steps/epoch | projected s/epoch | fit s (measured) | "
             "predict val s | peak RSS MB | peak RSS / baseline |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['peak_rss_mb'] / anchor['peak_rss_mb']:.2f}" if anchor else ""
        lines.append(f"| {r['model']} | {r['train_rows']} | {r.get('n_params', '')} | {r.get('batch_size', '')} | "
                     f"{r.get('seconds_per_step', '')} | "
                     f"{r.get('steps_per_epoch', '')} | {r.get('projected_seconds_per_epoch', '')} | {r['fit_s']} | "
                     f"{r['predict_val_s']} | {r['peak_rss_mb']:.0f} | {ratio} |")
    if not args.no_save:
        out = Path(args.out)
        out.write_text(json.dumps({"machine": machine(), "settings": vars(args), "rows": rows}, indent=1))
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
