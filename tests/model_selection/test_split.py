"""TemporalSplit: expanding folds whose training label windows end before validation starts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import cross_val_score

from skrel.data import RelationalDataset
from skrel.model_selection import TemporalSplit


def dataset(shop_db, n_cutoffs=8, per=5, step="30D"):
    cutoffs = pd.date_range("2020-02-01", periods=n_cutoffs, freq=step)
    ids = np.tile(np.arange(per), n_cutoffs)
    times = np.repeat(cutoffs.to_numpy(), per)
    order = np.random.default_rng(0).permutation(len(ids))  # rows need not be sorted by time
    return RelationalDataset(shop_db, "users", ids[order], times[order])


@pytest.mark.parametrize("n_splits,gap", [(1, "30D"), (3, "30D"), (3, "60D"), (2, "45D")])
def test_training_cutoffs_end_gap_before_validation(shop_db, n_splits, gap):
    X = dataset(shop_db)
    cv = TemporalSplit(n_splits=n_splits, gap=gap)
    folds = list(cv.split(X))
    assert len(folds) == cv.get_n_splits() == n_splits
    previous_train, previous_val_end = None, None
    for train, val in folds:
        assert len(train) and len(val) and not set(train) & set(val)
        first_val = X.cutoffs[val].min()
        assert X.cutoffs[train].max() <= first_val - pd.Timedelta(gap)
        # every row that is far enough back is used
        np.testing.assert_array_equal(np.sort(train), np.flatnonzero(X.cutoffs <= first_val - pd.Timedelta(gap)))
        if previous_train is not None:  # expanding window, validation blocks move forward
            assert set(previous_train) <= set(train)
            assert first_val > previous_val_end
        previous_train, previous_val_end = train, X.cutoffs[val].max()
    # validation blocks are whole cutoffs: every row of a validation cutoff is in the block
    for _, val in folds:
        in_block = np.isin(X.cutoffs, np.unique(X.cutoffs[val]))
        np.testing.assert_array_equal(np.sort(val), np.flatnonzero(in_block))


def test_last_fold_validates_on_latest_cutoffs(shop_db):
    X = dataset(shop_db)
    _, val = list(TemporalSplit(3, gap="30D").split(X))[-1]
    assert X.cutoffs[val].max() == X.cutoffs.max()


def test_with_cross_val_score(shop_binary):
    from sklearn.dummy import DummyClassifier

    db, task = shop_binary
    X, y = task.split(db, "train")
    scores = cross_val_score(DummyClassifier(), X, y, cv=TemporalSplit(2, gap=task.window), scoring="accuracy")
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_errors(shop_db):
    X = dataset(shop_db)
    with pytest.raises(TypeError, match="RelationalDataset"):
        list(TemporalSplit(2, gap="30D").split(np.zeros((10, 2))))
    with pytest.raises(ValueError, match="needs gap="):
        list(TemporalSplit(2).split(X))
    with pytest.raises(ValueError, match="n_splits must be at least 1"):
        list(TemporalSplit(0, gap="30D").split(X))
    with pytest.raises(ValueError, match="needs at least 9 distinct cutoffs, X has 8"):
        list(TemporalSplit(8, gap="30D").split(X))
    with pytest.raises(ValueError, match="fold 0: no training cutoff is at least"):
        list(TemporalSplit(3, gap="400D").split(X))
