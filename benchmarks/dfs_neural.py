"""DFS's learners on rel-f1 driver-top3: LightGBM (the default) against the pytorch-frame MLP and ResNet.

Each learner over the same DFS features (the estimator's defaults), seeds 0-2; AUROC on the task's
val and test splits. Results: ``benchmarks/results/dfs_neural.md``. FT-Transformer is left out: over
rel-f1's 807 columns (451 features and their missing indicators) its attention needs about 40 GiB at
the default batch size, and a training step of 32 rows takes about 5 s on 2 cores.

Usage: ``python benchmarks/dfs_neural.py [--path ../shared/data/f1] [--seeds 0 1 2]``; it prints one JSON line
per fit (the table in the results file was written from them).
"""

from __future__ import annotations

import argparse
import json
import logging

from _common import F1_PATH
from sklearn.metrics import roc_auc_score

from skrel.datasets import load_f1  # noqa: E402  (after _common: this checkout's skrel)
from skrel.estimators.dfs import DFSEstimator  # noqa: E402

logger = logging.getLogger("skrel.benchmarks")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=str(F1_PATH))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    db, tasks = load_f1(args.path)
    task = tasks["driver-top3"]
    X_val, y_val = task.split(db, "val")
    X_test, y_test = task.split(db, "test")
    rows = []
    for learner in (None, "mlp", "resnet"):
        for seed in args.seeds:
            est = DFSEstimator(learner=learner, random_state=seed).fit(db, task)
            row = dict(learner=learner or "lightgbm", seed=seed,
                       val=roc_auc_score(y_val, est.predict_proba(X_val)[:, 1]),
                       test=roc_auc_score(y_test, est.predict_proba(X_test)[:, 1]))
            logger.info(json.dumps(row))
            rows.append(row)
    return rows


if __name__ == "__main__":
    main()
