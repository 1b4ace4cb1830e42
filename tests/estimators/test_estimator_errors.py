"""The shared estimator contract and the baseline on bad input: a clear error, or the right behaviour."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from skrel import BaselineEstimator
from skrel.data import Database, Task
from skrel.estimators._tabular import FrameEncoder

FAST = dict(n_estimators=20, random_state=0)


def _with_users(db: Database, users: pd.DataFrame) -> Database:
    return Database({"users": users, "items": db["items"].df, "orders": db["orders"].df},
                    primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
                    foreign_keys={"orders": {"user_id": "users", "item_id": "items"}}, time_columns={"orders": "at"})


# ------------------------------------------------------------------ timezone-aware datetime columns
def test_baseline_reads_a_timezone_aware_column_as_its_utc_instant(shop_binary):
    db, task = shop_binary
    users = db["users"].df
    aware = users.assign(signup=users["signup"].dt.tz_localize("Europe/Paris"))
    utc = users.assign(signup=aware["signup"].dt.tz_convert("UTC").dt.tz_localize(None))
    db_aware, db_utc = _with_users(db, aware), _with_users(db, utc)
    est = BaselineEstimator(**FAST).fit(db_aware, task)  # was: pandas TypeError (tz-aware to naive astype)
    assert "signup" in est.feature_names_
    X, _ = task.split(db_aware, "test")
    reference = BaselineEstimator(**FAST).fit(db_utc, task)
    np.testing.assert_array_equal(est.predict_proba(X), reference.predict_proba(X.with_database(db_utc)))
    assert isinstance(db_aware["users"].df["signup"].dtype, pd.DatetimeTZDtype)  # the user's data is untouched


def test_frame_encoder_reads_a_timezone_aware_column_as_its_utc_instant():
    stamps = pd.Series(pd.to_datetime(["2021-01-01 00:30", "2021-06-01 12:00", None]))
    aware = pd.DataFrame({"t": stamps.dt.tz_localize("America/New_York")})
    naive = pd.DataFrame({"t": aware["t"].dt.tz_convert("UTC").dt.tz_localize(None)})
    out = FrameEncoder().fit(aware).transform(aware)  # was: pandas TypeError
    np.testing.assert_array_equal(out, FrameEncoder().fit(naive).transform(naive))
    assert np.isnan(out[2, 0]) and out[0, 0] == pytest.approx((pd.Timestamp("2021-01-01 05:30").value / 86_400e9))


# ------------------------------------------------------------------ missing labels
NULL_SQL = "SELECT t.timestamp, u.user_id, CAST(NULL AS INTEGER) AS outcome FROM timestamps t CROSS JOIN users u"


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_an_all_null_target_names_the_task_and_its_column(kind, shop_binary):
    db, base = shop_binary
    task = Task(name="all-null", entity_table="users", entity_col="user_id", target_col="outcome", task_type=kind,
                window=base.window, val_timestamp=base.val_timestamp, test_timestamp=base.test_timestamp,
                label_sql=NULL_SQL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the LabelWarning counting the rows dropped
        # was: LightGBM's "Found array with 0 sample(s)" (regression), "a single class []" (binary)
        with pytest.raises(ValueError, match="Task 'all-null' has no training rows: .* non-missing label in 'outcome'"):
            BaselineEstimator(**FAST).fit(db, task)


def test_missing_class_labels_are_counted(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    y = y.astype(object)
    y[[3, 7]] = None
    with pytest.raises(ValueError, match=r"y has 2 missing label\(s\) of \d+ \(first rows: \[3, 7\]\)"):
        BaselineEstimator(task_type="binary", **FAST).fit(X, y)
    X_val, y_val = task.split(db, "val")
    y_val = y_val.astype(float)
    y_val[0] = np.nan
    with pytest.raises(ValueError, match=r"y_val has 1 missing label"):
        BaselineEstimator(task_type="binary", **FAST).fit(X, task.split(db, "train")[1], X_val=X_val, y_val=y_val)


# ------------------------------------------------------------------ not fitted
def test_predict_proba_before_fit_raises_not_fitted(shop_binary):
    db, task = shop_binary
    X, _ = task.split(db, "test")
    with pytest.raises(NotFittedError):  # was: AttributeError, no attribute 'predict_proba' (task_type="auto")
        BaselineEstimator().predict_proba(X)
    assert not hasattr(BaselineEstimator(task_type="regression"), "predict_proba")
