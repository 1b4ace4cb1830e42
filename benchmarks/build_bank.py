"""Build skrel's performance bank: every family's configurations on every task we can run.

    python benchmarks/build_bank.py [--jobs 2] [--only synthetic] [--out benchmarks/results/bank]
                                    [--backend dask [--scheduler tcp://host:8786]]

Tasks: rel-f1 (driver-dnf, driver-top3, driver-position; from ../shared/data/f1), nycflights13
(plane-delay, plane-cancel) and 24 variants of the synthetic family (homophily 0, 0.2, ..., 1 x
depth 1 and 2 x binary and regression; sizes and generator seeds vary with the variant). Per task:
:data:`skrel.relatron.bank.BANK_CONFIGS` configurations per family (the defaults, then draws from
the registry's search space, torch ones capped by ``BANK_BUDGET``), one seed, landscape metrics
where the learner has a loss surface.

Resumable: each record is appended, one JSON line per fit, to ``<out>/<task>.jsonl`` as it
finishes (by this process: workers need no shared file system), and a rerun skips the fits
already there. Parallel over fits with joblib (``--jobs`` processes, one torch thread per fit),
or on a Dask cluster (``--backend dask [--scheduler ADDRESS]``; without an address a
``LocalCluster`` of ``--jobs`` workers): each job carries its task's description, not its
database; a worker loads a database once and keeps its last three (rel-f1's CSV directory must
exist at the same path on every worker). At the end every record is written to
``skrel/relatron/bank.parquet`` (the bank that ships) unless ``--no-install``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# this directory holds benchmarks/distributed.py, which would shadow the dask.distributed package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

HOMOPHILY = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


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


def task_specs(f1_path: str | None) -> list[dict]:
    """Every task: the synthetic family first (many small tasks), then the real ones."""
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
                              kwargs={"path": f1_path}, task=name))
    return specs


def _file(out: Path, task_id: str) -> Path:
    return out / (task_id.replace("/", "__") + ".jsonl")


_LOADED: dict = {}  # per worker process: the last few datasets it loaded


def _load(spec: dict):
    """The spec's (database, task), loaded once per worker process (not sent with each fit)."""
    from skrel.datasets import load_dataset

    key = json.dumps([spec["dataset"], spec["kwargs"]], sort_keys=True)
    if key not in _LOADED:
        while len(_LOADED) >= 3:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_dataset(spec["dataset"], **spec["kwargs"])
    db, tasks = _LOADED[key]
    return db, tasks[spec["task"]]


def embed_task(spec: dict) -> tuple[str, dict]:
    """One task's embedding (the ``emb:`` columns of its records)."""
    import warnings

    import torch

    from skrel.relatron import task_embedding

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        db, task = _load(spec)
        return spec["task_id"], dict(task_embedding(db, task, random_state=0, n_jobs=1))


def run_fit(spec: dict, embedding: dict, family: str, index: int, params: dict) -> dict:
    """One configuration of one family on one task: its bank record."""
    import warnings

    import torch

    from skrel.relatron.bank import fit_records

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        db, task = _load(spec)
        (rec,) = fit_records(db, task, task_id=spec["task_id"], group=spec["group"], source=spec["source"],
                             embedding=embedding, configs={family: [params]}, seed=0, n_jobs=1)
    rec["config"] = index  # its position in the family's configurations, as resuming expects
    return rec


def on_file(out: Path, task_id: str) -> tuple[set, dict | None]:
    """The (family, config) pairs of ``task_id`` already on file, and its embedding if any."""
    done, emb = set(), None
    path = _file(out, task_id)
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done.add((rec["family"], rec["config"]))
                emb = {k[4:]: v for k, v in rec.items() if k.startswith("emb:")}
    return done, emb


def backend(args):
    """The joblib backend context: processes on this machine, or a Dask cluster."""
    import contextlib

    if args.backend == "loky":
        return contextlib.nullcontext()
    import joblib
    from distributed import Client, LocalCluster

    stack = contextlib.ExitStack()
    if args.scheduler:
        client = stack.enter_context(Client(args.scheduler))
    else:
        cluster = stack.enter_context(LocalCluster(n_workers=args.jobs, threads_per_worker=1,
                                                   dashboard_address=None))
        client = stack.enter_context(Client(cluster))
    print(f"dask: {client}", flush=True)
    stack.enter_context(joblib.parallel_backend("dask"))
    return stack


def collect(out: Path) -> pd.DataFrame:
    rows = []
    for f in sorted(out.glob("*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from skrel.relatron.bank import BANK_CONFIGS, BANK_PATH, bank_configurations

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--f1", default=str(ROOT.parent / "shared" / "data" / "f1"), help="rel-f1 CSV directory")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bank"))
    parser.add_argument("--jobs", type=int, default=2, help="fits in parallel (processes; Dask: local workers)")
    parser.add_argument("--backend", choices=("loky", "dask"), default="loky",
                        help="joblib backend: loky (processes here) or dask (a cluster)")
    parser.add_argument("--scheduler", default=None,
                        help="with --backend dask: the scheduler's address (default: a LocalCluster of --jobs workers)")
    parser.add_argument("--only", nargs="+", default=None, help="task id prefixes to run (e.g. synthetic f1)")
    parser.add_argument("--families", nargs="+", default=list(BANK_CONFIGS))
    parser.add_argument("--no-install", action="store_true", help="do not write skrel/relatron/bank.parquet")
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = {f: bank_configurations(f, BANK_CONFIGS[f], random_state=0) for f in args.families}
    specs = task_specs(args.f1)
    if args.only:
        specs = [s for s in specs if any(s["task_id"].startswith(p) for p in args.only)]
    state = {s["task_id"]: on_file(out, s["task_id"]) for s in specs}
    todo = [(s, f, i, p) for s in specs for f, plist in configs.items() for i, p in enumerate(plist)
            if (f, i) not in state[s["task_id"]][0]]
    t0 = time.perf_counter()
    with backend(args):
        n_jobs = None if args.backend == "dask" else args.jobs
        need = [s for s in specs if state[s["task_id"]][1] is None and any(j[0] is s for j in todo)]
        embeddings = {tid: emb for tid, (_, emb) in state.items() if emb is not None}
        embeddings.update(Parallel(n_jobs=n_jobs)(delayed(embed_task)(s) for s in need))
        results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(run_fit)(s, embeddings[s["task_id"]], f, i, p) for s, f, i, p in todo)
        for rec in tqdm(results, total=len(todo), desc="bank fits", disable=not args.verbose):
            # the parent writes every record: workers need no shared file system, and a rerun
            # resumes after the last finished fit
            with _file(out, rec["task_id"]).open("a") as fh:
                fh.write(json.dumps(rec, default=float) + "\n")
            if args.verbose:
                print(f"{rec['task_id']} {rec['family']}#{rec['config']}: val {rec['val']:.4f} "
                      f"({rec['fit_seconds']:.0f}s)", flush=True)
    frame = collect(out)
    print(f"bank: {frame['task_id'].nunique()} tasks, {len(frame)} fits, {time.perf_counter() - t0:.0f}s")
    if not args.no_install and len(frame):
        from skrel.relatron.bank import PerformanceBank

        PerformanceBank(frame).save(BANK_PATH)
        print(f"wrote {BANK_PATH} ({BANK_PATH.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
