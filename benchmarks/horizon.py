"""The ``horizon`` choice on rel-f1, made on a stale validation and checked on test.

    python benchmarks/horizon.py [--path ../shared/data/f1] [--models dfs rdl relgt]
                                 [--tasks driver-dnf ...] [--threads 1] [--json] [--render] [--no-save]

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
import sys
import time

from _common import F1_PATH, ResultStore, command_line, machine, machines_line, standard_flags

TASKS = ["driver-dnf", "driver-top3", "driver-position"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default=str(F1_PATH))
    parser.add_argument("--models", nargs="+", default=["dfs", "rdl", "relgt"])
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--json", action="store_true")
    standard_flags(parser, "horizon")
    args = parser.parse_args(argv)
    store = ResultStore(args.out, save=not args.no_save, sort_keys=True)
    if args.render:
        store.write_markdown(render)
        return 0

    import numpy as np
    import torch

    from skrel.data import RelationalDataset
    from skrel.datasets import load_f1
    from skrel.estimators.registry import make_model
    from skrel.metrics import evaluate

    torch.set_num_threads(args.threads)
    db, tasks = load_f1(args.path)
    here = machine("torch", torch_threads=True)
    store.stamp(here)
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
            store.runs[f"{model}/{task_name}"] = r
            print(f"{model:6s} {task_name:16s} stale val cutoff={r['stale_val_cutoff']:.4f} "
                  f"data={r['stale_val_data']:.4f}  test cutoff={r['test_cutoff']:.4f} data={r['test_data']:.4f}",
                  file=sys.stderr, flush=True)
            store.write()  # a killed run keeps its rows
    store.data["machine"] = here
    store.add_command(command_line("horizon.py", argv))
    store.write(render)
    print(json.dumps(store.runs) if args.json else render(store.data))
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
    commands = store.get("commands") or [store.get("command", "python benchmarks/horizon.py")]
    lines += ["", "Reproduce: " + ", ".join(f"`{c}`" for c in commands)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
