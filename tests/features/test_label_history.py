"""Label history features: equal to a brute-force computation, point in time, refused where meaningless."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import make_shop, with_changes_after
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skrel.data import Database, RelationalDataset
from skrel.features.label_history import LABEL_HISTORY_FEATURES, label_history_features


def _all_labels(db: Database, task) -> pd.DataFrame:
    """Every label of the task's three splits (train and val on the cut database, test on the full one)."""
    return pd.concat([task.labels(db, s) for s in ("train", "val", "test")], ignore_index=True)


def _brute_force(X: RelationalDataset, labels: pd.DataFrame, task, horizon: str = "cutoff") -> pd.DataFrame:
    """One row at a time: the entity's labels whose windows closed by the row's cutoff and by X.db's end."""
    end = X.db.max_time
    rows = []
    for entity, t in zip(X.entity_ids, pd.DatetimeIndex(X.cutoffs)):
        limit = min(t, end)
        mine = labels[(labels[task.entity_col] == entity) & (labels["timestamp"] + task.window <= limit)]
        mine = mine.sort_values("timestamp")
        y = mine[task.target_col].to_numpy(dtype=float)
        described = limit if horizon == "data" else t
        if len(y) == 0:
            rows.append([0.0, np.nan, np.nan, np.nan, np.nan])
            continue
        closes = mine["timestamp"].iloc[-1] + task.window
        rows.append([len(y), y.mean(), y[-1], y[-3:].mean(), (described - closes) / pd.Timedelta(days=1)])
    return pd.DataFrame(rows, columns=list(LABEL_HISTORY_FEATURES), dtype=np.float32)


@pytest.mark.parametrize("fixture", ["shop_binary", "shop_regression"])
@pytest.mark.parametrize("split", ["train", "val", "test", "test_asof"])
def test_equal_to_brute_force(fixture, split, request):
    db, task = request.getfixturevalue(fixture)
    X, _ = task.split(db, split)
    labels = _all_labels(db, task)
    got = label_history_features(X, task)
    assert list(got.columns) == list(LABEL_HISTORY_FEATURES) and got.dtypes.eq(np.float32).all()
    pd.testing.assert_frame_equal(got, _brute_force(X, labels, task), rtol=1e-5)
    assert (got[LABEL_HISTORY_FEATURES[0]] > 0).any()


def test_horizon_data_counts_days_from_the_end_of_the_data(shop_regression):
    db, task = shop_regression
    X, _ = task.split(db, "test")  # RelBench's protocol: cutoffs after the end of X's database
    got = label_history_features(X, task, horizon="data")
    pd.testing.assert_frame_equal(got, _brute_force(X, _all_labels(db, task), task, "data"), rtol=1e-5)
    cutoff = label_history_features(X, task, horizon="cutoff")
    pd.testing.assert_frame_equal(got.iloc[:, :4], cutoff.iloc[:, :4])  # the same labels are used


def test_relbench_protocol_uses_no_test_label(shop_binary):
    db, task = shop_binary
    X, _ = task.split(db, "test")
    X_asof, _ = task.split(db, "test_asof")
    count = LABEL_HISTORY_FEATURES[0]
    protocol, asof = label_history_features(X, task)[count], label_history_features(X_asof, task)[count]
    # over the cut database every test row sees the labels closed by its end, whatever its cutoff
    at_end = RelationalDataset(X.db, X.entity_table, X.entity_ids, [X.db.max_time] * len(X))
    pd.testing.assert_series_equal(protocol, label_history_features(at_end, task)[count])
    # as of their cutoffs, the later test rows also see the test labels closed by then
    assert (asof >= protocol).all() and (asof > protocol).any()


def test_a_window_that_has_not_closed_is_not_used(shop_binary):
    db, task = shop_binary
    labels = task.labels(db, "train")
    c = labels["timestamp"].max()
    entity = labels.loc[labels["timestamp"] == c, task.entity_col].iloc[0]
    closes = c + task.window
    X = RelationalDataset(db, "users", [entity, entity], [closes - pd.Timedelta(seconds=1), closes])
    got = label_history_features(X, task)
    count, days = LABEL_HISTORY_FEATURES[0], LABEL_HISTORY_FEATURES[4]
    assert got[count].iloc[1] == got[count].iloc[0] + 1  # the label of c counts from c + window on
    assert got[days].iloc[1] == 0.0


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(day=st.integers(30, 700), seed=st.integers(0, 1000), kind=st.sampled_from(["shop_binary", "shop_regression"]),
       horizon=st.sampled_from(["cutoff", "data"]))
def test_rows_after_the_cutoff_change_nothing(request, day, seed, kind, horizon):
    db, task = request.getfixturevalue(kind)
    t = pd.Timestamp("2020-01-01") + pd.Timedelta(days=day)
    ids = db["users"].df["user_id"].to_numpy()
    X = RelationalDataset(db, "users", ids, [t] * len(ids))
    before = label_history_features(X, task, horizon=horizon)
    after = label_history_features(X.with_database(with_changes_after(db, t, np.random.default_rng(seed))), task,
                                   horizon=horizon)
    pd.testing.assert_frame_equal(after, before)


def test_labels_reaching_past_the_database_are_not_used(shop_binary):
    """X over a database cut at t: labels whose windows close after its last row are not used, even
    for rows with later cutoffs (the label would be computed on a partial window)."""
    db, task = shop_binary
    t = pd.Timestamp("2020-11-15")
    cut = db.upto(t)
    ids = db["users"].df["user_id"].to_numpy()
    later = RelationalDataset(cut, "users", ids, [t + pd.Timedelta(days=300)] * len(ids))
    at_cut = RelationalDataset(cut, "users", ids, [cut.max_time] * len(ids))
    full_at_cut = RelationalDataset(db, "users", ids, [cut.max_time] * len(ids))
    a, b = label_history_features(later, task), label_history_features(at_cut, task)
    pd.testing.assert_frame_equal(a.iloc[:, :4], b.iloc[:, :4])
    pd.testing.assert_frame_equal(b, label_history_features(full_at_cut, task))


def test_binary_labels_that_are_not_zero_one(shop_binary):
    db, task = shop_binary
    sql = task.label_sql.replace("CAST(COUNT(o.order_id) >= 2 AS INTEGER)",
                                 "CASE WHEN COUNT(o.order_id) >= 2 THEN 'yes' ELSE 'no' END")
    named = dataclasses.replace(task, name="user-active-yes-no", label_sql=sql)
    X, _ = task.split(db, "val")
    with pytest.raises(ValueError, match="not 0/1"):
        label_history_features(X, named)
    pd.testing.assert_frame_equal(label_history_features(X, named, classes=np.array(["no", "yes"])),
                                  label_history_features(X, task))


def test_refused_for_multiclass_and_supplied_labels(shop_multiclass, shop_binary):
    db, task = shop_multiclass
    X, _ = task.split(db, "val")
    with pytest.raises(ValueError, match="multiclass"):
        label_history_features(X, task)
    db, task = shop_binary
    tables = {s: task.labels(db, s) for s in ("train", "val", "test")}
    supplied = dataclasses.replace(task, label_sql=None, tables=tables)
    with pytest.raises(ValueError, match="supplied label tables"):
        label_history_features(X, supplied)


def test_entities_without_history(shop_binary):
    db, task = shop_binary
    X = RelationalDataset(make_shop(), "users", [0, 1], [pd.Timestamp("2020-01-02")] * 2)  # before any window closes
    got = label_history_features(X, task)
    assert (got[LABEL_HISTORY_FEATURES[0]] == 0).all() and got.iloc[:, 1:].isna().all().all()
