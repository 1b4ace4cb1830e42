"""Batch scoring: seconds and peak memory of ``predict_frame`` for every entity at one time, against fitting.

    python benchmarks/predict.py [--datasets flights wide f1] [--models baseline dfs]
                                 [--set MODEL.KEY=VALUE ...] [--path ../shared/data/f1] [--json]

Per (dataset, model), in its own subprocess (so each peak is its own): load the dataset, fit the model
on the task's train split (val for early stopping; ``random_state=0``, the family's defaults unless
``--set`` says), then ``est.predict_frame(db, at=task.test_timestamp)``: every entity of the task's
entity table visible at the test timestamp, from the database cut there. Fitting is the anchor: each
row gives predict seconds / fit seconds. Peaks are the process's resident set sampled every 20 ms
during the step (``_machine.watch_peaks``); "over base" is the peak minus the resident set just
before the step (data, fitted model and caches already held).

Tasks: ``flights`` plane-cancel, ``wide`` player-form, ``f1`` driver-dnf. Results merge into
``benchmarks/results/predict.json`` and ``benchmarks/results/predict.md`` with the machine
description, one row per (dataset, model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import cpu_model, machines_line, stamp_rows, watch_peaks  # noqa: E402

TASKS = {"flights": "plane-cancel", "wide": "player-form", "f1": "driver-dnf"}
RESULT = "PREDICT-RESULT "
NOTES = (
    "Scoring every entity at one time costs a few percent of a fit or less: DFS computes only the features its "
    "pruning kept (the definitions column) for one row per entity, the baseline reads the entity rows. Neither "
    "grows the process's memory measurably beyond what the data and the fitted model already hold. `wide`'s DFS "
    "runs at `max_depth=1`: its default depth-2 fit takes about 3 minutes on a quiet machine "
    "(`dfs_wide.md`), too long for this benchmark's 10-minute budget on a shared 2-core machine. The graph "
    "families (`--models rdl relgt`) are supported but not measured here."
)


def machine() -> str:
    import psutil

    return (f"{cpu_model()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GB RAM, "
            f"Python {platform.python_version()}")


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(args) -> dict:
    """Fit and score one (dataset, model) in this process; what it measured."""
    import warnings

    import numpy as np

    from skrel.datasets import load_dataset
    from skrel.estimators.registry import make_model
    from skrel.evaluation import parse_params

    warnings.simplefilter("ignore")
    dataset, model = args.child
    t0 = time.perf_counter()
    db, tasks = load_dataset(dataset, path=args.path if dataset == "f1" else None)
    task = tasks[TASKS[dataset]]
    X, _ = task.split(db, "train")
    load_s = time.perf_counter() - t0
    params = {"random_state": 0, **parse_params(args.params)}
    est = make_model(model, **params)
    base = _rss_mb()
    with watch_peaks(rss=(_rss_mb, 0.02)) as fit_peak:
        t0 = time.perf_counter()
        est.fit(db, task)
        fit_s = time.perf_counter() - t0
    at = task.test_timestamp
    before = _rss_mb()
    with watch_peaks(rss=(_rss_mb, 0.02)) as predict_peak:
        t0 = time.perf_counter()
        frame = est.predict_frame(db, at)
        predict_s = time.perf_counter() - t0
    # a second call: the cut database and (DFS) the features come from the database's cache
    t0 = time.perf_counter()
    again = est.predict_frame(db, at)
    repeat_s = time.perf_counter() - t0
    assert frame.equals(again)
    out = {
        "dataset": dataset, "task": task.name, "model": model, "params": {k: v for k, v in params.items()
                                                                            if k != "random_state"},
        "at": str(at), "entities": int(len(frame)), "entity_table_rows": int(len(db[task.entity_table])),
        "train_rows": int(len(X)), "load_s": round(load_s, 2),
        "fit_s": round(fit_s, 2), "fit_peak_rss_mb": round(fit_peak["rss"], 1),
        "fit_over_base_mb": round(fit_peak["rss"] - base, 1),
        "predict_s": round(predict_s, 3), "predict_repeat_s": round(repeat_s, 3),
        "predict_peak_rss_mb": round(predict_peak["rss"], 1),
        "predict_over_base_mb": round(predict_peak["rss"] - before, 1),
        "predict_over_fit": round(predict_s / fit_s, 4),
        "positive_share": round(float(np.mean(frame["prediction"] == est.classes_[-1])), 3)
        if "proba_1" in frame else None,
    }
    transformer = getattr(est, "transformer_", None)
    if transformer is not None:  # DFS: the definitions built at fit, and the kept ones predict computes
        out["definitions"] = int(transformer.n_definitions_)
        out["features_computed"] = int(len(transformer.features_))
    return out


def run_child(dataset: str, model: str, params: list[str], args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", dataset, model, "--path", args.path,
           "--params", *params]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    raise RuntimeError(f"{dataset}/{model} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--models", nargs="+", default=["baseline", "dfs"])
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="MODEL.KEY=VALUE",
                        help="a parameter of one model, e.g. dfs.max_depth=1 (JSON values)")
    parser.add_argument("--path", default=str(ROOT.parent / "shared" / "data" / "f1"), help="the rel-f1 CSVs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the stored JSON, run nothing")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "predict.json"))
    parser.add_argument("--child", nargs=2, metavar=("DATASET", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--params", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(RESULT + json.dumps(child(args)), flush=True)
        return 0

    out_path = Path(args.out)
    store = json.loads(out_path.read_text()) if out_path.exists() else {"runs": {}}
    if args.render:
        out_path.with_suffix(".md").write_text(render(store))
        return 0
    here = machine()
    others = stamp_rows(store, here)
    if others:
        print(f"warning: {out_path} holds rows measured on {others}; this run is on {here!r}.", file=sys.stderr)
    command = shlex.join(["python", "benchmarks/predict.py", *(argv if argv is not None else sys.argv[1:])])
    for dataset in args.datasets:
        for model in args.models:
            params = [s.split(".", 1)[1] for s in args.set if s.split(".", 1)[0] == model]
            r = run_child(dataset, model, params, args)
            r["machine"] = here
            r["command"] = command
            r["load_average"] = [round(x, 2) for x in os.getloadavg()]
            store["runs"][f"{dataset}/{model}"] = r
            print(f"{dataset:8s} {model:8s} {r['entities']:>6d} entities: predict {r['predict_s']:.2f}s "
                  f"({r['predict_over_fit']:.3f} x fit {r['fit_s']:.1f}s), peak {r['predict_peak_rss_mb']:.0f} MB "
                  f"(+{r['predict_over_base_mb']:.0f})", file=sys.stderr, flush=True)
            out_path.write_text(json.dumps(store, indent=1, sort_keys=True))
    out_path.with_suffix(".md").write_text(render(store))
    print(json.dumps(store["runs"]) if args.json else render(store))
    return 0


def render(store: dict) -> str:
    lines = [
        "# Batch scoring: `predict_frame` for every entity at the test timestamp, against fitting",
        "",
        f"{machines_line(store)}. One fit per row, `random_state=0`, the family's defaults unless the parameters "
        "say. Fit (train split, val for early stopping) is the anchor; predict/fit is the ratio of seconds. "
        "Peaks: the process's resident set during the step; \"+\" is the growth over the resident set before it "
        "(data, fitted model and caches held). Repeat: the same call again (the database's cut and the features "
        "come from its cache).",
        "",
        "| dataset | task | model | parameters | entities | fit s | fit peak MB | predict s | predict / fit | "
        "predict peak MB (+) | repeat s | DFS features computed / defined |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for _, r in sorted(store["runs"].items()):
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "defaults"
        feats = f"{r['features_computed']} / {r['definitions']}" if "definitions" in r else "-"
        lines.append(
            f"| {r['dataset']} | {r['task']} | {r['model']} | {params} | {r['entities']:,} | {r['fit_s']:.1f} | "
            f"{r['fit_peak_rss_mb']:,.0f} | {r['predict_s']:.2f} | {r['predict_over_fit']:.3f} | "
            f"{r['predict_peak_rss_mb']:,.0f} (+{r['predict_over_base_mb']:,.0f}) | {r['predict_repeat_s']:.2f} | "
            f"{feats} |")
    commands = sorted({r["command"] for r in store["runs"].values()})
    loads = [x for r in store["runs"].values() for x in r.get("load_average", [])[:1]]
    if loads:
        lines += ["", f"Load average (1 min) when the rows were written: {min(loads):.1f} to {max(loads):.1f}: a "
                      "shared machine, seconds are pessimistic; the ratios compare steps "
                      "of the same process."]
    lines += ["", NOTES, "", "Reproduce: " + "; ".join(f"`{c}`" for c in commands)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
