"""A many-candidate search keeps the database cache within its bound (issue 9: bounded caches).

RelGT caches its sampled contexts per (rows, settings, seed): a search over ``random_state``
creates a new entry per candidate. Unbounded, the cache grows with the number of candidates; the
bounded cache stays under its bound and evicts the oldest entries instead.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skrel.estimators.relgt import RelGTEstimator

from conftest import make_shop, shop_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(tokens=6, channels=4, heads=1, centroids=2, max_epochs=1, batch_size=1024, n_iter_no_change=None)


def _search(max_bytes: int, candidates: int) -> tuple[int, int, int]:
    db = make_shop()
    db.cache.max_bytes = max_bytes
    task = shop_task("binary")
    X, y = task.split(db, "train")
    cut = np.quantile(X.cutoffs.view(np.int64), 0.8)
    train = np.flatnonzero(X.cutoffs.view(np.int64) < cut)
    val = np.flatnonzero(X.cutoffs.view(np.int64) >= cut)
    search = GridSearchCV(RelGTEstimator(**TINY), {"random_state": list(range(candidates))}, cv=[(train, val)],
                          scoring="roc_auc", refit=False)
    search.fit(X, y)
    # X is over the database cut at the test timestamp: its entries live in the cut's part of the store
    contexts = sum(1 for k in X.db.cache if isinstance(k, tuple) and k and k[0] == "skrel.relgt.contexts")
    return db.cache.nbytes, contexts, db.cache.evictions


def test_fifty_candidate_search_keeps_the_cache_bounded():
    unbounded_10, contexts_10, _ = _search(1 << 40, 10)
    unbounded_50, contexts_50, _ = _search(1 << 40, 50)
    # unbounded, every candidate keeps its own contexts: the cache grows with the search
    assert contexts_10 >= 10 and contexts_50 >= 50 and unbounded_50 > 2 * unbounded_10
    bound = unbounded_10  # room for about ten candidates' entries
    bounded_50, kept, evictions = _search(bound, 50)
    assert bounded_50 <= bound and evictions > 0 and 0 < kept < contexts_50 // 2
