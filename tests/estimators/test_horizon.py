"""``horizon`` means the same in every family: where ages are counted from, never what is visible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skrel.data import RelationalDataset, horizon_cutoffs
from skrel.estimators.registry import MODELS, get_model_class


def past_the_data(db, task):
    """Every user at two cutoffs past the end of a database cut at the test timestamp."""
    cut = db.upto(task.test_timestamp)
    end = cut.max_time
    users = cut["users"].df["user_id"].to_numpy()
    ids = np.concatenate([users, users])
    cutoffs = np.concatenate([np.full(len(users), end + pd.Timedelta(days=30)),
                              np.full(len(users), end + pd.Timedelta(days=400))])
    return RelationalDataset(cut, "users", ids, cutoffs), len(users)


def test_horizon_cutoffs(shop_binary):
    db, task = shop_binary
    X, n = past_the_data(db, task)
    np.testing.assert_array_equal(horizon_cutoffs(X, "cutoff"), X.cutoffs)
    data = horizon_cutoffs(X, "data")
    assert (data == np.datetime64(X.db.max_time, "ns")).all()
    early = X[np.arange(3)]
    early = RelationalDataset(db, "users", early.entity_ids, np.full(3, np.datetime64("2020-01-01", "ns")))
    np.testing.assert_array_equal(horizon_cutoffs(early, "data"), early.cutoffs)
    with pytest.raises(ValueError, match="horizon"):
        horizon_cutoffs(X, "later")


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("name", ["dfs", "rdl", "relgt"])
def test_rows_past_the_data_are_described_at_its_end(name, shop_binary):
    db, task = shop_binary
    X_train, y_train = task.split(db, "train")
    X, n = past_the_data(db, task)
    cls = get_model_class(name)
    params = {**MODELS[name].test_params, "random_state": 0}
    at_end = cls(**params, horizon="data").fit(X_train, y_train).predict_proba(X)[:, 1]
    at_cutoff = cls(**params, horizon="cutoff").fit(X_train, y_train).predict_proba(X)[:, 1]
    # the same visible rows seen from the same time: the same prediction, whatever the cutoff
    np.testing.assert_allclose(at_end[:n], at_end[n:], rtol=1e-6)  # batches differ: float rounding
    if name != "dfs":  # a small tree model may ignore the time features; a network cannot
        assert not np.allclose(at_cutoff[:n], at_cutoff[n:], rtol=1e-6)
