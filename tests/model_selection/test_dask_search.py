"""A grid search over a skrel estimator runs on a dask.distributed cluster through joblib, with the
result of the in-process search.

Two local worker processes (so the estimator, X and y really are pickled and sent); X and y are
scattered once (``scatter=[X, y]``), so each worker deserializes one Database and its per-process
feature cache serves every fit that worker runs.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GridSearchCV, KFold

pytest.importorskip("distributed")


def test_grid_search_on_dask_equals_in_process(shop_binary):
    import joblib
    from dask.distributed import Client, LocalCluster

    from skrel.estimators.dfs import DFSEstimator

    db, task = shop_binary
    X, y = task.split(db, "train")
    est = DFSEstimator(max_depth=1, windows=[60], random_state=0, max_features=None, validation_fraction=None,
                       learner=HistGradientBoostingClassifier(max_iter=5, early_stopping=False), n_jobs=1)
    grid = {"learner__max_depth": [2, 3], "max_depth": [1]}
    here = GridSearchCV(est, grid, cv=KFold(2), scoring="roc_auc").fit(X, y)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="1GiB") as cluster, Client(cluster):
        with joblib.parallel_backend("dask", scatter=[X, y]):
            there = GridSearchCV(est, grid, cv=KFold(2), scoring="roc_auc", n_jobs=-1).fit(X, y)
    np.testing.assert_array_equal(here.cv_results_["mean_test_score"], there.cv_results_["mean_test_score"])
    assert here.best_params_ == there.best_params_
    np.testing.assert_array_equal(here.predict_proba(X), there.predict_proba(X))
    # what a fit sends: the estimator (small) and X, whose Database is most of it
    sent = len(pickle.dumps(X))
    assert len(pickle.dumps(est)) < 10_000 and sent >= len(pickle.dumps(db)) > 0
