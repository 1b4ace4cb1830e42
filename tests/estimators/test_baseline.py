"""BaselineEstimator: LightGBM on the entity's own columns; degenerate entity tables; X's database checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_shop, shop_task, with_changes_after

from skrel.data import Database, RelationalDataset, SchemaError
from skrel.estimators.baseline import BaselineEstimator

FAST = dict(n_estimators=20, random_state=0)


def _db_with_users(users: pd.DataFrame, time_col: str | None = None) -> Database:
    shop = make_shop()
    return Database({"users": users, "orders": shop["orders"].df, "items": shop["items"].df},
                    primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
                    foreign_keys={"orders": {"user_id": "users", "item_id": "items"}},
                    time_columns={"orders": "at", **({"users": time_col} if time_col else {})})


def test_vocabulary_and_importances_series(shop_binary):
    db, task = shop_binary
    est = BaselineEstimator(**FAST, lr=0.1, n_iter_no_change=None).fit(db, task)
    imp = est.feature_importances_
    assert isinstance(imp, pd.Series) and imp.index.name == "feature" and list(imp.index) == est.feature_names_
    # the signup date is an age in days, and the entity table's columns are all used
    assert set(est.feature_names_) == {"age", "country", "signup"}
    with pytest.raises(TypeError, match="learning_rate"):
        BaselineEstimator(learning_rate=0.1)


def test_same_seed_same_predictions(shop_regression):
    db, task = shop_regression
    X, _ = task.split(db, "test")
    a = BaselineEstimator(**FAST).fit(db, task).predict(X)
    b = BaselineEstimator(**FAST).fit(db, task).predict(X)
    np.testing.assert_array_equal(a, b)


def test_validation_fraction_holds_out_the_latest_cutoffs(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    est = BaselineEstimator(n_estimators=400, lr=0.3, n_iter_no_change=5, random_state=0).fit(X, y)
    assert est.learner_.best_iteration_ < 400  # early-stopped on the held-out cutoffs
    est = BaselineEstimator(n_estimators=30, validation_fraction=None, random_state=0).fit(X, y)
    assert est.learner_.best_iteration_ in (0, None) or est.learner_.n_estimators_ == 30


def test_entity_table_with_only_a_key_and_a_time_column_uses_the_age(shop_binary):
    db0, task = shop_binary
    users = pd.DataFrame({"user_id": db0["users"].df["user_id"], "created": db0["users"].df["signup"]})
    db = _db_with_users(users, time_col="created")
    est = BaselineEstimator(**FAST).fit(db, task)  # was: "Found array with 0 sample(s) (shape=(0, 0))"
    assert est.feature_names_ == ["created"]
    X, _ = task.split(db, "test")
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.isfinite(proba).all()


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_entity_table_with_only_a_key_gives_the_prior(kind):
    task = shop_task(kind)
    users = pd.DataFrame({"user_id": make_shop()["users"].df["user_id"]})
    db = _db_with_users(users)
    est = BaselineEstimator(**FAST).fit(db, task)
    X, y = task.split(db, "test")
    Xtr, ytr = task.split(db, "train")
    if kind == "binary":
        np.testing.assert_allclose(est.predict_proba(X)[:, 1], np.mean(ytr))
    else:
        np.testing.assert_allclose(est.predict(X), np.median(ytr))  # MAE: the median
    assert est.feature_importances_.empty


def test_all_missing_and_high_cardinality_columns(shop_binary):
    db0, task = shop_binary
    users = db0["users"].df.assign(empty=np.nan, code=[f"id{i}" for i in range(len(db0["users"].df))])
    db = _db_with_users(users)
    est = BaselineEstimator(**FAST).fit(db, task)
    X, _ = task.split(db, "test")
    assert np.isfinite(est.predict_proba(X)).all()


def test_predict_checks_x_database(shop_binary):
    db, task = shop_binary
    est = BaselineEstimator(**FAST).fit(db, task)
    X, _ = task.split(db, "test")
    # a column whose dtype changed
    users = db["users"].df.assign(age=db["users"].df["age"].astype(str))
    bad = _db_with_users(users)
    with pytest.raises(SchemaError, match=r"users\.age"):
        est.predict(RelationalDataset(bad, "users", X.entity_ids, X.cutoffs))
    # an unrelated entity table (same name, other columns)
    other = _db_with_users(pd.DataFrame({"user_id": users["user_id"], "height": 1.0}))
    with pytest.raises(SchemaError, match=r"users\.(age|country|signup)"):
        est.predict(RelationalDataset(other, "users", X.entity_ids, X.cutoffs))
    # another entity table
    with pytest.raises(SchemaError, match="entity table 'items'"):
        est.predict(RelationalDataset(db, "items", np.arange(3), X.cutoffs[:3]))


def test_does_not_mutate_the_database(shop_binary):
    db, task = shop_binary
    before = {t: db[t].df.copy() for t in db.table_names}
    BaselineEstimator(**FAST).fit(db, task).predict(task.split(db, "test")[0])
    for t in db.table_names:
        pd.testing.assert_frame_equal(db[t].df, before[t])


# ---------------------------------------------------------------- label history
def test_label_history_features_are_appended(shop_regression):
    from skrel.features.label_history import LABEL_HISTORY_FEATURES, label_history_features

    db, task = shop_regression
    est = BaselineEstimator(**FAST, label_history=True).fit(db, task)
    assert est.feature_names_ == ["age", "country", "signup", *LABEL_HISTORY_FEATURES]
    assert est.feature_importances_[list(LABEL_HISTORY_FEATURES)].sum() > 0
    X, _ = task.split(db, "test_asof")
    history = label_history_features(X, task, horizon=est.horizon).to_numpy()
    np.testing.assert_array_equal(est._matrix(X)[:, 3:], history)
    assert np.isfinite(est.predict(X)).all()


def test_label_history_needs_the_task(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    with pytest.raises(ValueError, match=r"label_history=True\) needs the task: call fit\(db, task\)"):
        BaselineEstimator(**FAST, label_history=True).fit(X, y)
    with pytest.raises(ValueError, match="label_history"):
        BaselineEstimator(label_history="yes").fit(db, task)


def test_label_history_predictions_ignore_rows_after_the_cutoff(shop_binary):
    db, task = shop_binary
    est = BaselineEstimator(**FAST, label_history=True).fit(db, task)
    ids = db["users"].df["user_id"].to_numpy()
    for day, seed in ((200, 0), (450, 1), (650, 2)):
        t = pd.Timestamp("2020-01-01") + pd.Timedelta(days=day)
        X = RelationalDataset(db, "users", ids, [t] * len(ids))
        changed = with_changes_after(db, t, np.random.default_rng(seed))
        np.testing.assert_array_equal(est.predict_proba(X.with_database(changed)), est.predict_proba(X))
