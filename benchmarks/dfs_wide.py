"""DFSEstimator with its defaults on the synthetic ``wide`` database: fit, then predict val and test.

Prints rows, feature definitions, kept features, seconds and peak RSS (MB) of the whole process.
Reproduce: ``/usr/bin/time -v python benchmarks/dfs_wide.py [--task player-form] [--set key=value ...]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time

import _common  # noqa: F401  (this checkout's skrel first on the path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", default="player-form")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--set", action="append", default=[], help="estimator parameter key=value (Python literal)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(relativeCreated)8.0f %(name)s %(message)s")
    import ast

    from skrel.datasets import make_wide
    from skrel.estimators.dfs import DFSEstimator

    params = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    t0 = time.perf_counter()
    db, tasks = make_wide(scale=args.scale)
    task = tasks[args.task]
    X, y = task.split(db, "train")
    Xv, yv = task.split(db, "val")
    Xt, yt = task.split(db, "test")
    t_data = time.perf_counter() - t0
    est = DFSEstimator(random_state=0, **params)
    t1 = time.perf_counter()
    est.fit(X, y, X_val=Xv, y_val=yv)
    t_fit = time.perf_counter() - t1
    t2 = time.perf_counter()
    pv, pt = est.predict(Xv), est.predict(Xt)
    t_pred = time.perf_counter() - t2
    from skrel.metrics import evaluate

    out = {
        "task": args.task, "train_rows": len(X), "val_rows": len(Xv), "test_rows": len(Xt),
        "definitions": est.transformer_.n_definitions_, "kept": len(est.feature_names_),
        "pruned": est.pruning_summary_["reason"].value_counts().to_dict(),
        "data_seconds": round(t_data, 1), "fit_seconds": round(t_fit, 1), "predict_seconds": round(t_pred, 1),
        "metric": task.metric, "val": evaluate(est, Xv, yv, task.metric), "test": evaluate(est, Xt, yt, task.metric),
        "params": params,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
