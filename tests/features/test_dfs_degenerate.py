"""DFS on degenerate schemas and inputs: each a sensible model or one clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skrel.data import Database, RelationalDataset
from skrel.estimators.dfs import DFSEstimator
from skrel.features import DFSTransformer

FAST = dict(max_depth=2, windows=[30], n_estimators=20, random_state=0)
T0 = pd.Timestamp("2021-01-01")


def make(users_extra=None, orders_extra=None, order_start_day=0, n_users=40, seed=0):
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_id": np.arange(n_users), "joined": T0 - pd.Timedelta(days=10), **(users_extra or {})})
    n = 400
    orders = pd.DataFrame({"order_id": np.arange(n), "user_id": rng.integers(0, n_users - 5, n),  # 5 users: no history
                           "amount": rng.gamma(2.0, 5.0, n),
                           "at": T0 + pd.to_timedelta(rng.integers(order_start_day, order_start_day + 300, n), "D"),
                           **(orders_extra or {})})
    return Database({"users": users, "orders": orders}, primary_keys={"users": "user_id", "orders": "order_id"},
                    foreign_keys={"orders": {"user_id": "users"}}, time_columns={"users": "joined", "orders": "at"})


def xy(db, n_cutoffs=6, seed=0):
    rng = np.random.default_rng(seed)
    users = db["users"].df["user_id"].to_numpy()
    cuts = T0 + pd.to_timedelta(np.arange(1, n_cutoffs + 1) * 40, "D")
    ids = np.tile(users, n_cutoffs)
    cutoffs = np.repeat(cuts.to_numpy(), len(users))
    y = rng.integers(0, 2, len(ids))
    y[ids % 3 == 0] = 1
    return RelationalDataset(db, "users", ids, cutoffs), y


def test_entity_table_with_only_key_and_time_and_no_relations_gives_the_prior():
    users = pd.DataFrame({"user_id": np.arange(30), "joined": T0})
    db = Database({"users": users}, primary_keys={"users": "user_id"}, time_columns={"users": "joined"})
    X, y = xy(db)
    est = DFSEstimator(**FAST).fit(X, y)
    assert est.feature_names_ == []
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], est.predict_proba(X)[0, 1])


def test_entity_without_columns_learns_from_its_children():
    X, y = xy(make())
    est = DFSEstimator(**FAST).fit(X, y)
    assert "COUNT(orders)" in est.feature_names_
    assert est.predict_proba(X).shape == (len(X), 2)


def test_child_table_with_no_rows_before_the_first_cutoff_and_entities_without_history():
    db = make(order_start_day=100)  # no order before the first cutoff (day 40)
    X, y = xy(db)
    F = DFSTransformer(max_depth=1).fit_transform(X)
    first = X.cutoffs == X.cutoffs.min()
    assert (F.loc[first, "COUNT(orders)"] == 0).all() and F.loc[first, "MEAN(orders.amount)"].isna().all()
    no_history = np.isin(X.entity_ids, np.arange(35, 40))
    assert (F.loc[no_history, "COUNT(orders)"] == 0).all()
    assert np.isfinite(DFSEstimator(**FAST).fit(X, y).predict_proba(X)).all()


def test_all_missing_and_high_cardinality_columns():
    n = 40
    db = make(users_extra={"nothing": np.full(n, np.nan), "none_str": [None] * n,
                           "code": [f"c{i}" for i in range(n)]},
              orders_extra={"empty": np.nan, "ref": [f"r{i}" for i in range(400)]})
    X, y = xy(db)
    est = DFSEstimator(**FAST).fit(X, y)
    names = est.feature_names_
    # all-missing numbers are constant (pruned); all-missing and unique strings are not categories
    assert not any(k in c for c in names for k in ("nothing", "none_str", "code", "ref", "empty"))
    reasons = dict(zip(est.pruning_summary_.feature, est.pruning_summary_.reason))
    assert reasons["nothing"] == "constant" and reasons["MAX(orders.empty)"] == "constant"
    # max_categories lets a high-cardinality column in on purpose
    t = DFSTransformer(max_depth=1, max_categories=1000).fit(X)
    assert "code" in t.feature_names_out_


def test_duplicate_column_names_across_tables():
    db = make(users_extra={"amount": np.arange(40.0)})  # users.amount and orders.amount
    X, y = xy(db)
    F = DFSTransformer(max_depth=1).fit_transform(X)
    assert "amount" in F.columns and "MEAN(orders.amount)" in F.columns
    assert len(set(F.columns)) == F.shape[1]
    np.testing.assert_array_equal(F["amount"].to_numpy(), X.entity_ids.astype(float))


def test_table_referenced_by_two_foreign_keys_and_self_reference():
    rng = np.random.default_rng(0)
    users = pd.DataFrame({"user_id": np.arange(20), "referrer": [np.nan] + list(rng.integers(0, 10, 19)),
                          "score": rng.normal(size=20)})
    transfers = pd.DataFrame({"tid": np.arange(200), "sender": rng.integers(0, 20, 200),
                              "receiver": rng.integers(0, 20, 200), "value": rng.gamma(2.0, 1.0, 200),
                              "at": T0 + pd.to_timedelta(rng.integers(0, 300, 200), "D")})
    db = Database({"users": users, "transfers": transfers}, primary_keys={"users": "user_id", "transfers": "tid"},
                  foreign_keys={"users": {"referrer": "users"}, "transfers": {"sender": "users", "receiver": "users"}},
                  time_columns={"transfers": "at"})
    X, y = xy(db, n_cutoffs=4)
    est = DFSEstimator(**FAST).fit(X, y)
    F = est.transformer_.transform(X)
    assert {"COUNT(transfers[sender])", "COUNT(transfers[receiver])", "COUNT(users)"} <= set(F.columns)
    sent = transfers[(transfers.sender == 3) & (transfers["at"] <= X.cutoffs[3])].shape[0]
    assert F["COUNT(transfers[sender])"].iloc[3] == sent
    assert np.isfinite(est.predict_proba(X)).all()


def test_predict_on_another_database_is_a_clear_error():
    X, y = xy(make(orders_extra={"qty": 1.0}))
    est = DFSEstimator(**FAST).fit(X, y)
    other, _ = xy(make())
    with pytest.raises(Exception, match=r"orders\.qty"):
        est.predict(other)
