"""Searches on a Dask cluster through joblib: seconds, and the bytes the workers receive.

    python benchmarks/dask_search.py [--cases flights synthetic] [--workers 2] [--no-save] [--render]

Per case (a database and task), the same ``GridSearchCV`` over ``DFSEstimator`` (four
configurations x three folds: 12 fits) runs

- in this process, ``n_jobs=1`` (the anchor);
- on joblib's default process pool (loky), ``n_jobs=--workers``;
- on a Dask ``LocalCluster`` of ``--workers`` worker processes (one thread each), under
  ``joblib.parallel_backend("dask")``, as skrel ships: the rows ``X`` (and so the database) report
  their size, joblib's Dask backend scatters them once, each worker fetches them once;
- the same with the size hidden (``RelationalDataset.__sizeof__`` reporting the bare object, as
  before skrel defined it): joblib then pickles ``X`` and its database into every fit's task;

and ``RelatronSelector(budget=4)`` fits the task in this process and on the cluster. Measured: wall
seconds (cluster start-up excluded, reported apart), the bytes every worker process received over
TCP (every frame Dask's TCP comm decoded in a worker, counted there), how many times each worker
unpickled a database, and whether the scores (and the selector's choice and predictions) equal the
anchor's. Each Dask run gets a fresh cluster. Results merge into
``benchmarks/results/dask_search.json`` and ``dask_search.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import pickle
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
# last on the path: this directory's distributed.py must not shadow the dask.distributed package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
import distributed  # noqa: E402, F401  (dask's, imported before this directory's can shadow it)
from _common import F1_PATH, ResultStore, machine, machines_line, standard_flags  # noqa: E402

CASES = {
    "flights": dict(dataset="flights", kwargs={}, task="plane-cancel"),
    "synthetic": dict(dataset="synthetic", kwargs={"n_entities": 2000, "n_rows": 400_000, "random_state": 0},
                      task="synthetic"),
    "f1": dict(dataset="f1", kwargs={"path": str(F1_PATH)}, task="driver-top3"),
}
GRID = {"max_depth": [1, 2], "num_leaves": [15, 31]}


# ------------------------------------------------------------------ run in the workers
def _count():
    """In a worker: count the bytes of every message its TCP comms decode, and database unpicklings."""
    import distributed.comm.tcp as tcp

    from skrel.data import database

    if hasattr(tcp, "_skrel_received"):
        return
    tcp._skrel_received = [0]
    decode = tcp.from_frames

    async def counting_from_frames(frames, *args, **kwargs):
        tcp._skrel_received[0] += sum(memoryview(f).nbytes for f in frames)
        return await decode(frames, *args, **kwargs)

    tcp.from_frames = counting_from_frames
    database.Database._unpickled = 0
    setstate = database.Database.__setstate__

    def counting_setstate(self, state):
        type(self)._unpickled += 1
        setstate(self, state)

    database.Database.__setstate__ = counting_setstate


def _read_counts():
    import distributed.comm.tcp as tcp

    from skrel.data import database

    return tcp._skrel_received[0], database.Database._unpickled


@contextlib.contextmanager
def cluster(workers: int):
    """A fresh LocalCluster with counting workers, as the joblib backend; yields a dict that gets
    ``startup_seconds`` and, on exit, ``received_mb`` and ``unpickled`` per worker."""
    import joblib
    from distributed import Client, LocalCluster

    info = {}
    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as lc, Client(lc) as client:
        client.run(_count)
        info["startup_seconds"] = time.perf_counter() - t0
        before = client.run(_read_counts)
        with joblib.parallel_backend("dask"):
            yield info
        after = client.run(_read_counts)
        info["received_mb"] = [round((after[w][0] - before[w][0]) / 1e6, 3) for w in sorted(after)]
        info["unpickled"] = [after[w][1] - before[w][1] for w in sorted(after)]


# ------------------------------------------------------------------ the runs
def run_case(name: str, workers: int) -> dict:
    import joblib
    import numpy as np
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, KFold

    from skrel import DFSEstimator, RelationalDataset
    from skrel.datasets import load_dataset
    from skrel.metrics import make_scorer
    from skrel.relatron import RelatronSelector

    spec = CASES[name]
    db, tasks = load_dataset(spec["dataset"], **spec["kwargs"])
    task = tasks[spec["task"]]
    X, y = task.split(db, "train")
    out = {"case": f"{name}/{spec['task']}", "train_rows": len(X), "database_mb": round(sys.getsizeof(db) / 1e6, 1),
           "pickled_mb": round(len(pickle.dumps(X)) / 1e6, 2), "fits": 12, "runs": {}}
    search = GridSearchCV(DFSEstimator(random_state=0, n_jobs=1), GRID, cv=KFold(3), scoring=make_scorer(task.metric),
                          refit=False)

    def timed(fn):
        t0 = time.perf_counter()
        res = fn()
        return res, time.perf_counter() - t0

    anchor, seconds = timed(lambda: clone(search).set_params(n_jobs=1).fit(X, y))
    scores = anchor.cv_results_["mean_test_score"]
    out["runs"]["in-process (anchor)"] = {"seconds": seconds}
    res, seconds = timed(lambda: clone(search).set_params(n_jobs=workers).fit(X, y))
    out["runs"]["loky"] = {"seconds": seconds, "same": bool(np.array_equal(res.cv_results_["mean_test_score"], scores))}
    with cluster(workers) as info:
        res, seconds = timed(lambda: clone(search).fit(X, y))
    out["runs"]["dask"] = {"seconds": seconds, **info,
                           "same": bool(np.array_equal(res.cv_results_["mean_test_score"], scores))}
    sizeof = RelationalDataset.__sizeof__
    RelationalDataset.__sizeof__ = object.__sizeof__
    try:
        with cluster(workers) as info:
            res, seconds = timed(lambda: clone(search).fit(X, y))
    finally:
        RelationalDataset.__sizeof__ = sizeof
    out["runs"]["dask, size hidden (X in every task)"] = {
        "seconds": seconds, **info, "same": bool(np.array_equal(res.cv_results_["mean_test_score"], scores))}

    params = dict(budget=4, random_state=0)
    X_test = task.split(db, "test")[0]
    local, seconds = timed(lambda: RelatronSelector(**params).fit(db, task))
    out["runs"]["selector in-process (anchor)"] = {"seconds": seconds, "family": local.selected_family_}
    with cluster(workers) as info:
        remote, seconds = timed(lambda: RelatronSelector(**params).fit(db, task))
    same = (remote.selected_family_ == local.selected_family_ and remote.best_params_ == local.best_params_
            and np.array_equal(remote.predict(X_test), local.predict(X_test)))
    out["runs"]["selector on dask"] = {"seconds": seconds, **info, "same": bool(same), "family": remote.selected_family_}
    return out


def table(results: dict) -> list[str]:
    lines = []
    for key, r in results.items():
        lines += [f"### {r['case']}: {r['train_rows']} training rows, database {r['database_mb']} MB in memory, "
                  f"X pickled {r['pickled_mb']} MB; search: {r['fits']} fits", "",
                  "| run | seconds | / anchor | cluster start s | MB received per worker | database unpickled per worker | same result |",
                  "|---|---|---|---|---|---|---|"]
        for run, v in r["runs"].items():
            anchor = r["runs"]["selector in-process (anchor)" if run.startswith("selector") else "in-process (anchor)"]
            recv = " / ".join(f"{m:.2f}" for m in v["received_mb"]) if "received_mb" in v else "-"
            unp = " / ".join(str(n) for n in v["unpickled"]) if "unpickled" in v else "-"
            start = f"{v['startup_seconds']:.1f}" if "startup_seconds" in v else "-"
            same = "-" if "same" not in v else ("yes" if v["same"] else "NO")
            fam = f" (chose {v['family']})" if "family" in v else ""
            lines.append(f"| {run}{fam} | {v['seconds']:.1f} | {v['seconds'] / anchor['seconds']:.2f} | {start} | "
                         f"{recv} | {unp} | {same} |")
        lines.append("")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=["flights", "synthetic"])
    parser.add_argument("--workers", type=int, default=2)
    standard_flags(parser, "dask_search")
    args = parser.parse_args(argv)
    store = ResultStore(args.out, save=not args.no_save)
    if args.render:
        store.write_markdown(render)
        return 0
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    desc = machine("dask", "distributed", "joblib", memory=True)
    print(f"machine: {desc}", flush=True)
    results = {}
    for name in args.cases:
        r = run_case(name, args.workers)
        r["machine"] = desc
        r["date"] = time.strftime("%Y-%m-%d %H:%M")
        results[name] = r
        print("\n".join(table({name: r})), flush=True)
    store.runs.update(results)
    store.stamp(desc)
    store.write(render)
    return 0


def render(store: dict) -> str:
    md = ["# Searches on a Dask cluster (joblib backend)", "",
          f"{machines_line(store)}. `GridSearchCV` over `DFSEstimator` (max_depth 1-2 x num_leaves 15/31, "
          "KFold(3)); `RelatronSelector(budget=4, random_state=0)`. Dask: a fresh `LocalCluster` of worker "
          "processes (one thread each) per run, start-up not timed. MB received: every frame a worker's TCP comms "
          "decoded (tasks, scattered data, results fetched from peers). 'size hidden': joblib sees the bare "
          "object size of `X` (as before `RelationalDataset.__sizeof__`), so it pickles `X` and its database "
          "into each task. Two shared cores: seconds are noisy. "
          "Command: `python benchmarks/dask_search.py`.", ""]
    for name in store["runs"]:
        md += table({name: store["runs"][name]})
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
