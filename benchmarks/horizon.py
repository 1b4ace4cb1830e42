"""The ``horizon`` choice on rel-f1, made on a stale validation and checked on test.

    python benchmarks/horizon.py [--path ../shared/data/f1] [--models dfs rdl relgt]
                                 [--tasks driver-dnf ...] [--threads 1] [--json]

Under RelBench's protocol test rows (cutoffs from the test timestamp on) see the database cut at
the test timestamp, so most of them lie past the end of their data; ``horizon`` decides whether
they are described at their cutoff ("cutoff", the anchor) or at the data's end ("data"). The
ordinary val split cannot tell the two apart (its rows see data up to their own cutoffs), so the
choice is made on a **stale validation**: the val rows over the database cut at the val timestamp,
the test protocol one period earlier. Each (model, task) is fitted once with ``random_state=0``
(no training row lies past its data, so the fitted model does not depend on ``horizon``; the
script checks it) and scored both ways. Results go to ``benchmarks/results/horizon.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machines_line, stamp_rows  # noqa: E402

TASKS = ["driver-dnf", "driver-top3", "driver-position"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default=str(ROOT.parent / "shared" / "data" / "f1"))
    parser.add_argument("--models", nargs="+", default=["dfs", "rdl", "relgt"])
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "horizon.json"))
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from f1 import machine
    from skrel.data import RelationalDataset
    from skrel.datasets import load_f1
    from skrel.estimators.registry import make_model
    from skrel.evaluation import evaluate

    torch.set_num_threads(args.threads)
    db, tasks = load_f1(args.path)
    out_path = Path(args.out)
    store = json.loads(out_path.read_text()) if out_path.exists() else {"runs": {}}
    here = machine()
    others = stamp_rows(store, here)
    if others:
        print(f"warning: {out_path} holds rows measured on {others}; this run is on {here!r}. Scores of the "
              "torch families differ between processors; the table will list both machines.", file=sys.stderr)
    for task_name in args.tasks:
        task = tasks[task_name]
        X, y = task.split(db, "train")
        X_val, y_val = task.split(db, "val")
        X_test, y_test = task.split(db, "test")
        stale = RelationalDataset(db.upto(task.val_timestamp), X_val.entity_table, X_val.entity_ids, X_val.cutoffs)
        assert (X.cutoffs <= np.datetime64(X.db.max_time, "ns")).all(), "a training row lies past its data"
        for model in args.models:
            t0 = time.perf_counter()
            est = make_model(model, random_state=0, horizon="cutoff").fit(X, y, X_val=X_val, y_val=y_val)
            fit_seconds = time.perf_counter() - t0
            r = {"model": model, "task": task_name, "metric": task.metric, "fit_seconds": round(fit_seconds, 1)}
            r["machine"] = here
            for horizon in ("cutoff", "data"):
                if model == "dfs":  # its feature transformer is built in fit
                    est = make_model(model, random_state=0, horizon=horizon).fit(X, y, X_val=X_val, y_val=y_val)
                else:
                    est.set_params(horizon=horizon)
                r[f"val_{horizon}"] = evaluate(est, X_val, y_val, task.metric)
                r[f"stale_val_{horizon}"] = evaluate(est, stale, y_val, task.metric)
                r[f"test_{horizon}"] = evaluate(est, X_test, y_test, task.metric)
            if r["val_cutoff"] != r["val_data"]:
                raise AssertionError(f"{model}/{task_name}: the ordinary val score depends on horizon")
            store["runs"][f"{model}/{task_name}"] = r
            print(f"{model:6s} {task_name:16s} stale val cutoff={r['stale_val_cutoff']:.4f} "
                  f"data={r['stale_val_data']:.4f}  test cutoff={r['test_cutoff']:.4f} data={r['test_data']:.4f}",
                  file=sys.stderr, flush=True)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(store, indent=1, sort_keys=True))
    store["machine"] = here
    store["command"] = shlex.join(["python", "benchmarks/horizon.py", *(argv if argv is not None else sys.argv[1:])])
    out_path.write_text(json.dumps(store, indent=1, sort_keys=True))
    out_path.with_suffix(".md").write_text(render(store))
    print(json.dumps(store["runs"]) if args.json else render(store))
    return 0


def render(store: dict) -> str:
    def fmt(metric, v):
        return f"{100 * v:.2f}" if metric == "roc_auc" else f"{v:.3f}"

    lines = [
        "# horizon on rel-f1: stale validation (val rows over the database cut at the val timestamp) and test",
        "",
        f"{machines_line(store)}. One fit per row, random_state=0; AUROC x100 or MAE.",
        "Ratio: data against the cutoff anchor, > 1 = better (AUROC data/cutoff, MAE cutoff/data).",
        "",
        "| model | task | stale val, cutoff | stale val, data | ratio | test, cutoff | test, data | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in sorted(store["runs"].items()):
        m = r["metric"]
        ratio = (lambda a, b: b / a) if m == "roc_auc" else (lambda a, b: a / b)
        lines.append(
            f"| {r['model']} | {r['task']} | {fmt(m, r['stale_val_cutoff'])} | {fmt(m, r['stale_val_data'])} | "
            f"{ratio(r['stale_val_cutoff'], r['stale_val_data']):.3f} | {fmt(m, r['test_cutoff'])} | "
            f"{fmt(m, r['test_data'])} | {ratio(r['test_cutoff'], r['test_data']):.3f} |"
        )
    lines += ["", f"Reproduce: `{store.get('command', 'python benchmarks/horizon.py')}`"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
