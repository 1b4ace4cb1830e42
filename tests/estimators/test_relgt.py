"""RelGTEstimator: point-in-time correctness, ablations, early stopping, resampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skrel.data import Database, RelationalDataset, Table
from skrel.estimators.relgt import RelGTEstimator

FAST = dict(tokens=12, channels=8, heads=2, centroids=8, max_epochs=2, batch_size=64, random_state=0)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fitted(shop_binary):
    db, task = shop_binary
    return RelGTEstimator(**FAST).fit(db, task)


def with_orders(db: Database, orders: pd.DataFrame) -> Database:
    tables = {n: db[n] for n in db.table_names}
    t = tables["orders"]
    tables["orders"] = Table(orders, t.pkey, dict(t.fkeys), t.time_col)
    return Database(tables)


@settings(max_examples=8, deadline=None)
@given(day=st.integers(0, 700), shift=st.integers(1, 5), n_new=st.integers(1, 30))
def test_rows_after_the_cutoff_change_no_prediction(fitted, shop_db, day, shift, n_new):
    cutoff = pd.Timestamp("2020-01-01") + pd.Timedelta(days=day)
    users = shop_db["users"].df["user_id"].to_numpy()
    X = RelationalDataset(shop_db, "users", users, [cutoff] * len(users))
    before = fitted.predict_proba(X)

    orders = shop_db["orders"].df.copy()
    later = orders["at"] > cutoff
    orders.loc[later, "qty"] = orders.loc[later, "qty"] + shift
    orders.loc[later, "user_id"] = (orders.loc[later, "user_id"] + shift) % len(users)
    rng = np.random.default_rng(day)
    new = pd.DataFrame({
        "order_id": np.arange(len(orders), len(orders) + n_new),
        "user_id": rng.choice(users, n_new),
        "item_id": rng.integers(0, 15, n_new),
        "qty": 9.0,
        "at": cutoff + pd.to_timedelta(rng.integers(1, 10**6, n_new), "s"),
    })
    db2 = with_orders(shop_db, pd.concat([new, orders], ignore_index=True))
    after = fitted.predict_proba(X.with_database(db2))
    np.testing.assert_array_equal(before, after)


def test_rows_at_the_cutoff_are_visible(fitted, shop_db):
    cutoff = pd.Timestamp("2020-06-01")
    X = RelationalDataset(shop_db, "users", [3], [cutoff])
    base = fitted.predict_proba(X)
    orders = shop_db["orders"].df
    extra = pd.DataFrame({"order_id": [10_000, 10_001, 10_002], "user_id": [3, 3, 3], "item_id": [1, 2, 4],
                          "qty": [4.0, 4.0, 4.0], "at": [cutoff] * 3})
    at_cutoff = fitted.predict_proba(X.with_database(with_orders(shop_db, pd.concat([orders, extra]))))
    extra["at"] = cutoff + pd.Timedelta(1, "ns")
    just_after = fitted.predict_proba(X.with_database(with_orders(shop_db, pd.concat([orders, extra]))))
    assert not np.array_equal(base, at_cutoff)
    np.testing.assert_array_equal(base, just_after)


def test_predictions_do_not_depend_on_the_other_rows(fitted, shop_binary):
    db, task = shop_binary
    X, _ = task.split(db, "test")
    np.testing.assert_allclose(fitted.predict_proba(X)[5:17], fitted.predict_proba(X[5:17]), rtol=1e-5, atol=1e-7)


def test_history_and_best_epoch_restore(shop_regression):
    db, task = shop_regression
    est = RelGTEstimator(**{**FAST, "max_epochs": 3}).fit(db, task)
    scores = [h["valid_score"] for h in est.history_]
    assert len(scores) == 3 and est.best_epoch_ == int(np.argmax(scores))
    X_val, y_val = task.split(db, "val")
    mae = float(np.mean(np.abs(est.predict(X_val) - y_val)))
    # the restored weights are the best epoch's: its validation score is minus the MAE of predict
    assert mae == pytest.approx(-scores[est.best_epoch_], rel=1e-6)
    assert est.best_score_ == scores[est.best_epoch_] == max(est.validation_scores_)


@pytest.mark.parametrize("ablate", ["time,hop", ["global"], ("structure", "features"), "none"])
def test_ablate_spellings(shop_binary, ablate):
    db, task = shop_binary
    X, y = task.split(db, "train")
    est = RelGTEstimator(**{**FAST, "max_epochs": 1, "ablate": ablate}).fit(X, y)
    elements = set(est.module_.elements) | ({"global"} if est.module_.use_global else set())
    removed = {"time", "hop", "global", "structure", "features"} - elements
    spelled = set() if ablate == "none" else set(ablate.split(",") if isinstance(ablate, str) else ablate)
    assert removed == spelled
    with pytest.raises(ValueError, match="unknown element"):
        RelGTEstimator(**{**FAST, "ablate": "colour"}).fit(X, y)


def test_ablation_changes_predictions(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    X_test, _ = task.split(db, "test")
    full = RelGTEstimator(**FAST).fit(X, y).predict_proba(X_test)
    no_time = RelGTEstimator(**{**FAST, "ablate": "time"}).fit(X, y).predict_proba(X_test)
    assert not np.allclose(full, no_time)


def test_time_encodings(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    X_test, _ = task.split(db, "test")
    sinus = RelGTEstimator(**FAST).fit(X, y)
    linear = RelGTEstimator(**{**FAST, "time_encoding": "linear"}).fit(X, y)
    assert linear.module_.times.encoding == "linear" and sinus.module_.times.encoding == "sinusoidal"
    assert not np.allclose(linear.predict_proba(X_test), sinus.predict_proba(X_test))


def test_resample_draws_new_contexts_deterministically(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    X_test, _ = task.split(db, "test")
    a = RelGTEstimator(**{**FAST, "resample": True}).fit(X, y).predict_proba(X_test)
    b = RelGTEstimator(**{**FAST, "resample": True}).fit(X, y).predict_proba(X_test)
    c = RelGTEstimator(**FAST).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_parameters(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    with pytest.raises(ValueError, match="multiple of heads"):
        RelGTEstimator(**{**FAST, "channels": 9}).fit(X, y)
    with pytest.raises(ValueError, match="tokens"):
        RelGTEstimator(**{**FAST, "tokens": 0}).fit(X, y)
