"""Point in time at training: no registered family's fitted model depends on rows dated after its
latest training cutoff (and, for ``fit(db, task)``, after its latest validation cutoff).

Prediction-time tests (``tests/estimators/test_*``) check that a *fitted* model ignores rows after
each row's cutoff. These check the fit itself: every statistic a family learns from the database
(normalisation, vocabularies, quantiles, clamp ranges, imputation values, type inference) must
come from rows visible at the latest cutoff the fit may see. Two databases that differ only after
that cutoff (values changed, including a numerical outlier and a category never seen before; rows
appended) must give identical predictions. The families are read from the registry, so a family
registered later is checked the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_classifier

from conftest import make_shop, shop_task
from skrel.data import Database
from skrel.estimators import registry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KEYS = dict(primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
            foreign_keys={"orders": {"user_id": "users", "item_id": "items"}}, time_columns={"orders": "at"})


def _shop_with_channel() -> Database:
    """The shop database with a categorical column on its timed table (orders.channel)."""
    db = make_shop(seed=3, n_users=40, n_orders=400)
    orders = db["orders"].df.copy()
    orders["channel"] = np.where(np.arange(len(orders)) % 3 == 0, "web", "shop")
    return Database({"users": db["users"].df, "items": db["items"].df, "orders": orders}, **KEYS)


def _changed_after(db: Database, t: pd.Timestamp, window: pd.Timedelta, seed: int = 0) -> Database:
    """``db`` with every order dated after ``t`` rewritten (an outlier quantity, a category never
    seen before) and, past the label windows that the fit reads (``t + window``), orders moved to
    other users and 100 orders appended. The labels the fit sees stay the same, so any difference
    in predictions comes from the rows themselves."""
    rng = np.random.default_rng(seed)
    orders = db["orders"].df.copy()
    later = (orders["at"] > t).to_numpy()
    past_labels = (orders["at"] > t + window).to_numpy()
    assert later.any() and past_labels.any(), "the test needs rows after the cutoff"
    orders.loc[later, "qty"] = -50.0
    orders.loc[later, "channel"] = "only-after-the-cutoff"
    orders.loc[past_labels, "user_id"] = rng.integers(0, 40, int(past_labels.sum()))
    new = pd.DataFrame({
        "order_id": np.arange(100) + 50_000,
        "user_id": rng.integers(0, 40, 100),
        "item_id": rng.integers(0, 15, 100),
        "qty": rng.normal(1000, 300, 100),
        "at": t + window + pd.to_timedelta(rng.integers(1, 300, 100), "D"),
        "channel": rng.choice(["late-a", "late-b", "web"], 100),
    })
    return Database({"users": db["users"].df, "items": db["items"].df,
                     "orders": pd.concat([orders, new], ignore_index=True)}, **KEYS)


def _make(name):
    spec = registry.FAMILIES[name]
    return spec.get_class()(**{**spec.test_params, "random_state": 0})


def _outputs(est, X):
    return est.predict_proba(X) if is_classifier(est) else est.predict(X)


@pytest.fixture(scope="module")
def shop():
    return _shop_with_channel(), shop_task("binary")


@pytest.mark.parametrize("name", registry.family_names())
def test_training_ignores_rows_after_the_latest_training_cutoff(name, shop):
    db, task = shop
    X, y = task.split(db, "train")
    t = pd.Timestamp(X.cutoffs.max())
    changed = _changed_after(db, t, task.window)
    X2, y2 = task.split(changed, "train")
    np.testing.assert_array_equal(X2.entity_ids, X.entity_ids)
    np.testing.assert_array_equal(y2, y)
    a = _outputs(_make(name).fit(X, y), X)
    b = _outputs(_make(name).fit(X2, y2), X2)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", registry.family_names())
def test_fit_on_a_task_ignores_rows_after_the_latest_validation_cutoff(name, shop):
    db, task = shop
    X_val, y_val = task.split(db, "val")
    t = pd.Timestamp(X_val.cutoffs.max())
    changed = _changed_after(db, t, task.window, seed=1)
    X_val2, y_val2 = task.split(changed, "val")
    np.testing.assert_array_equal(y_val2, y_val)
    a = _make(name).fit(db, task)
    b = _make(name).fit(changed, task)
    # the validation rows see the same rows (all dated at or before their cutoffs) in both databases
    np.testing.assert_array_equal(_outputs(a, X_val), _outputs(b, X_val2))


def _shifted(db: Database, offset: pd.DateOffset) -> Database:
    users = db["users"].df.copy()
    users["signup"] = users["signup"] + offset
    orders = db["orders"].df.copy()
    orders["at"] = orders["at"] + offset
    return Database({"users": users, "items": db["items"].df, "orders": orders}, **KEYS)


@pytest.mark.parametrize("name", registry.family_names())
def test_shifting_every_time_by_whole_calendar_cycles_changes_nothing(name, shop):
    """28 years keep every date's weekday and leap-year pattern: a model that reads only times
    relative to the cutoff and calendar features must predict exactly the same. (The graph
    families used to hash the absolute cutoff into their neighbour draws.)"""
    import dataclasses

    db, task = shop
    offset = pd.DateOffset(years=28)
    moved_db = _shifted(db, offset)
    moved = dataclasses.replace(task, val_timestamp=task.val_timestamp + offset,
                                test_timestamp=task.test_timestamp + offset)
    X, y = task.split(db, "train")
    X2, y2 = moved.split(moved_db, "train")
    np.testing.assert_array_equal(y2, y)
    X_test, _ = task.split(db, "test")
    X_test2, _ = moved.split(moved_db, "test")
    a = _outputs(_make(name).fit(X, y), X_test)
    b = _outputs(_make(name).fit(X2, y2), X_test2)
    np.testing.assert_array_equal(a, b)
