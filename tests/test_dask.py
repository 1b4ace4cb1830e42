"""Searches on a Dask cluster through joblib: the same results as in-process, the database sent
once per worker rather than once per fit.

One local cluster of two worker *processes* (so every argument really is pickled and sent) for the
module. Skipped without ``dask.distributed`` (the ``dask`` extra; the test extra installs it).
"""

from __future__ import annotations

import logging
import sys
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold

from skrel import DFSEstimator
from skrel.relatron import RelatronSelector

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def client():
    import cloudpickle

    # the workers import skrel, not this module: the helpers below travel by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # without the active memory manager, which may drop an idle worker's copy of X (fetched again
    # later): the count of databases sent is then exact
    with dask.config.set({"distributed.scheduler.active-memory-manager.start": False}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                     silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as c:
        c.run(_count_database_unpickling)
        yield c
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _count_database_unpickling():
    """In a worker: count the databases unpickled there (``Database.__setstate__`` calls)."""
    from skrel.data import database

    if hasattr(database.Database, "_unpickled"):
        return
    original = database.Database.__setstate__

    def counting(self, state):
        type(self)._unpickled += 1
        original(self, state)

    database.Database._unpickled = 0
    database.Database.__setstate__ = counting


def _unpickled(client) -> dict:
    return client.run(lambda: __import__("skrel.data.database").data.database.Database._unpickled)


@pytest.fixture(scope="module")
def task_data(make_tiny_task):
    db, task = make_tiny_task(1.0, "binary", seed=3)
    X, y = task.split(db, "train")
    return db, task, X, y


def test_sizeof_reports_the_database():
    # joblib's Dask backend scatters an argument once only when dask.sizeof says it is over 1 kB
    from dask.sizeof import sizeof

    from skrel.datasets import make_synthetic

    db, tasks = make_synthetic(n_entities=100, n_rows=2000, random_state=0)
    X = tasks["synthetic"].split(db, "train")[0]
    assert sizeof(db) > sum(len(t.df) for t in db.tables.values()) * 8
    assert sizeof(X) > sizeof(db) and sizeof(X[:5]) > sizeof(db)


def test_grid_search_on_dask_matches_in_process_and_sends_the_database_once(client, task_data):
    _, _, X, y = task_data
    search = GridSearchCV(DFSEstimator(n_estimators=30, random_state=0), {"max_depth": [1, 2], "num_leaves": [7, 15]},
                          cv=KFold(3), scoring="roc_auc", refit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = clone(search).set_params(n_jobs=1).fit(X, y)
        before = _unpickled(client)
        with joblib.parallel_backend("dask"):
            remote = clone(search).fit(X, y)
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    after = _unpickled(client)
    received = {w: after[w] - before[w] for w in after}
    # 12 fits over two workers; the database arrives once per worker that ran one (pickled per
    # fit it would arrive 12 times)
    assert sum(received.values()) <= len(received), received


@pytest.mark.parametrize("extra", [{}, {"macro": "val", "ensemble": True}], ids=["meta", "val-ensemble"])
def test_selector_on_dask_matches_in_process(client, tiny_bank, task_data, extra):
    # meta: the micro search runs on the cluster; val-ensemble: so do the one-fit-per-family choice
    # and the runner-up's fit
    db, task, _, _ = task_data
    params = dict(candidates=["baseline", "dfs"], budget=3, post_selection=None, bank=tiny_bank, random_state=0,
                  embedding_params={"components": ("homophily", "temporal", "scale")}, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = RelatronSelector(**params).fit(db, task)
        with joblib.parallel_backend("dask"):
            remote = RelatronSelector(**params).fit(db, task)
    assert remote.selected_family_ == local.selected_family_ and remote.macro_reason_ == local.macro_reason_
    assert remote.n_fits_ == local.n_fits_
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote.search_results_["val"], local.search_results_["val"])
    X_test = task.split(db, "test")[0]
    np.testing.assert_array_equal(remote.predict_proba(X_test), local.predict_proba(X_test))
