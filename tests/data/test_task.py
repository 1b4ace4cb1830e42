"""Task: RelBench's cutoff rules, labels on (t, t + window], point-in-time splits, supplied label
tables, and errors for bad task definitions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from conftest import SHOP_LABEL_SQL, make_shop, shop_task
from skrel.data import Database, LabelWarning, SchemaError, Task

VAL, TEST, WINDOW = pd.Timestamp("2021-03-01"), pd.Timestamp("2021-07-01"), pd.Timedelta(days=60)


def expected_active(db: Database, stamps) -> pd.DataFrame:
    """The binary shop label recomputed in pandas: >= 2 orders in (t, t + window]."""
    orders = db["orders"].df
    rows = []
    for t in stamps:
        in_window = orders[(orders["at"] > t) & (orders["at"] <= t + WINDOW)]
        counts = in_window.groupby("user_id").size()
        for u in db["users"].df["user_id"]:
            rows.append((pd.Timestamp(t), u, int(counts.get(u, 0) >= 2)))
    return pd.DataFrame(rows, columns=["timestamp", "user_id", "churn_free"])


# ---------------------------------------------------------------------- cutoffs
def test_train_cutoffs_step_back_from_val_minus_window(shop_binary):
    db, task = shop_binary
    stamps = task.cutoffs(db, "train")
    assert stamps[0] == VAL - WINDOW
    assert (np.diff(stamps.asi8) == -WINDOW.value).all()
    earliest = db.upto(TEST).min_time
    assert stamps[-1] >= earliest and stamps[-1] - WINDOW < earliest
    assert len(stamps) >= 3


def test_val_cutoffs(shop_binary):
    db, task = shop_binary
    stamps = task.cutoffs(db, "val")
    assert stamps[0] == VAL
    assert (np.diff(stamps.asi8) == WINDOW.value).all()
    assert len(stamps) <= task.num_eval_timestamps
    assert stamps[-1] <= TEST - WINDOW  # never past the test boundary minus the window
    assert stamps[-1] + WINDOW > TEST - WINDOW  # and every allowed cutoff is used
    one = dataclasses.replace(task, num_eval_timestamps=1)
    assert list(one.cutoffs(db, "val")) == [VAL]


def test_test_cutoffs(shop_binary):
    db, task = shop_binary
    stamps = task.cutoffs(db, "test")
    assert stamps[0] == TEST
    assert (np.diff(stamps.asi8) == WINDOW.value).all()
    assert stamps[-1] <= db.max_time - WINDOW
    assert stamps[-1] + WINDOW > db.max_time - WINDOW
    assert len(dataclasses.replace(task, num_eval_timestamps=2).cutoffs(db, "test")) == 2
    assert list(task.cutoffs(db, "test_asof")) == list(stamps)


# ---------------------------------------------------------------------- labels
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_labels_match_pandas_recomputation(shop_binary, split):
    db, task = shop_binary
    label_db = db if split == "test" else db.upto(TEST)
    expected = expected_active(label_db, task.cutoffs(db, split))
    got = task.labels(db, split)
    assert list(got.columns) == ["timestamp", "user_id", "churn_free"]
    expected = expected.sort_values(["timestamp", "user_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.astype({"churn_free": int}), expected, check_dtype=False)
    assert 0 < got["churn_free"].mean() < 1


def test_label_window_is_left_open_right_closed():
    t = pd.Timestamp("2020-03-01")
    users = pd.DataFrame({"user_id": [0, 1]})
    orders = pd.DataFrame(
        {
            "order_id": [0, 1, 2, 3, 4],
            "user_id": [0, 0, 0, 1, 1],
            # at t (excluded), at t + window (included), just after (excluded); user 1: inside twice
            "at": [t, t + WINDOW, t + WINDOW + pd.Timedelta(seconds=1), t + pd.Timedelta(days=1), t + WINDOW],
        }
    )
    db = Database(
        {"users": users, "orders": orders},
        primary_keys={"users": "user_id", "orders": "order_id"},
        foreign_keys={"orders": {"user_id": "users"}},
        time_columns={"orders": "at"},
    )
    sql = """SELECT t.timestamp, u.user_id, COUNT(o.order_id) AS n FROM timestamps t CROSS JOIN users u
             LEFT JOIN orders o ON o.user_id = u.user_id AND o.at > t.timestamp AND o.at <= t.timestamp + {window}
             GROUP BY t.timestamp, u.user_id ORDER BY u.user_id"""
    task = Task(name="n", entity_table="users", entity_col="user_id", target_col="n", task_type="regression",
                window=WINDOW, label_sql=sql, val_timestamp=t, test_timestamp=t + 3 * WINDOW)
    out = task.make_labels(db, [t])
    assert out["n"].tolist() == [1, 2]


def test_point_in_time_splits_ignore_data_after_test_timestamp():
    db = make_shop()
    orders = db["orders"].df.copy()
    late = orders["at"] > TEST
    orders.loc[late, "user_id"] = orders.loc[late, "user_id"].to_numpy()[::-1]
    orders.loc[late, "qty"] = 99.0
    changed = Database(
        {"users": db["users"].df, "items": db["items"].df, "orders": orders},
        primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
        foreign_keys={"orders": {"user_id": "users", "item_id": "items"}},
        time_columns={"orders": "at"},
    )
    task = shop_task("binary")
    for split in ("train", "val"):
        pd.testing.assert_frame_equal(task.labels(db, split), task.labels(changed, split))
        X_a, _ = task.split(db, split)
        X_b, _ = task.split(changed, split)
        assert X_a.key == X_b.key  # the same rows over the same (cut) data
    assert not task.labels(db, "test").equals(task.labels(changed, "test"))


def test_split_databases_and_dtypes(shop_binary, shop_regression):
    db, task = shop_binary
    for split in ("train", "val", "test"):
        X, y = task.split(db, split)
        assert X.db.max_time <= TEST
        assert X.db is db.upto(TEST)
        assert y.dtype == np.int64 and len(y) == len(X)
        assert set(np.unique(X.cutoffs)) == set(task.cutoffs(db, split).to_numpy())
    X, y = task.split(db, "test_asof")
    assert X.db is db
    np.testing.assert_array_equal(X.entity_ids, task.split(db, "test")[0].entity_ids)
    db_r, task_r = shop_regression
    X, y = task_r.split(db_r, "train")
    assert y.dtype == np.float64 and (y > 0).all()  # inner join: only users who ordered in the window
    assert set(task.sizes(db)) == {"train", "val", "test"}


def test_labels_are_cached_per_database(shop_binary):
    db, task = shop_binary
    assert task.labels(db, "val") is task.labels(db, "val")


# ---------------------------------------------------------------------- supplied label tables
def supplied_task(**overrides):
    tables = {
        "train": pd.DataFrame(
            {"timestamp": ["2020-06-01", "2020-06-01", "2020-03-01", "2020-03-01"],
             "user_id": [1, 999, 2, 3], "y": [1.0, 0.0, np.nan, 0.0]}
        ),
        "val": pd.DataFrame({"timestamp": ["2021-01-01"], "user_id": [4], "y": [1.0]}),
        "test": pd.DataFrame({"timestamp": ["2021-08-01"], "user_id": [5], "y": [0.0]}),
    }
    kw = dict(name="sup", entity_table="users", entity_col="user_id", target_col="y", task_type="binary",
              window="30D", tables=tables, test_timestamp="2021-07-01")
    kw.update(overrides)
    return Task(**kw)


def test_supplied_tables(shop_db):
    task = supplied_task()
    with pytest.warns(LabelWarning, match=r"split 'train': dropped 1 row\(s\) with a missing 'y' \(first entities: "
                      r"\[2\]\); 1 row\(s\) whose 'user_id' is not a key of 'users' \(first: \[999\]\)"):
        labels = task.labels(shop_db, "train")
    # unknown entity 999 and the missing target are dropped; sorted by (timestamp, entity)
    assert labels["user_id"].tolist() == [3, 1]
    assert labels["timestamp"].dtype == "datetime64[ns]"
    with pytest.warns(LabelWarning):
        X, y = task.split(shop_db, "train")
    assert y.tolist() == [0, 1] and y.dtype == np.int64
    assert X.db.max_time <= pd.Timestamp("2021-07-01")
    with pytest.raises(ValueError, match="supplied label tables"):
        task.cutoffs(shop_db, "train")


def test_supplied_tables_errors(shop_db):
    with pytest.raises(ValueError, match=r"lack split\(s\) \['test'\]"):
        supplied_task(tables={"train": pd.DataFrame(), "val": pd.DataFrame()})
    bad = supplied_task(target_col="label")
    with pytest.raises(SchemaError, match=r"supplied 'train' table lacks column\(s\) \['label'\]"):
        bad.labels(shop_db, "train")


# ---------------------------------------------------------------------- bad task definitions
def test_bad_task_definitions(shop_db):
    base = dict(name="t", entity_table="users", entity_col="user_id", target_col="churn_free",
                task_type="binary", window=WINDOW, label_sql=SHOP_LABEL_SQL, val_timestamp=VAL, test_timestamp=TEST)
    with pytest.raises(ValueError, match="task_type must be one of"):
        Task(**{**base, "task_type": "ranking"})
    with pytest.raises(ValueError, match="window must be positive"):
        Task(**{**base, "window": pd.Timedelta(0)})
    with pytest.raises(ValueError, match="exactly one of label_sql and tables"):
        Task(**{**base, "tables": {"train": None, "val": None, "test": None}})
    with pytest.raises(ValueError, match="exactly one of label_sql and tables"):
        Task(**{**base, "label_sql": None})
    with pytest.raises(ValueError, match="need val_timestamp and test_timestamp"):
        Task(**{**base, "val_timestamp": None})
    task = Task(**base)
    with pytest.raises(ValueError, match="split must be one of"):
        task.labels(shop_db, "holdout")
    with pytest.raises(ValueError, match="split must be one of"):
        task.cutoffs(shop_db, "holdout")
    wrong = Task(**{**base, "label_sql": "SELECT timestamp, 1 AS user_id FROM timestamps"})
    with pytest.raises(SchemaError, match=r"label_sql returned no column\(s\) \['churn_free'\]"):
        wrong.labels(shop_db, "val")
    early = Task(**{**base, "val_timestamp": pd.Timestamp("2020-03-01")})
    with pytest.raises(SchemaError, match="only 1 training cutoffs"):
        early.cutoffs(shop_db, "train")
    late = Task(**{**base, "val_timestamp": pd.Timestamp("2022-06-01"), "test_timestamp": pd.Timestamp("2023-01-01")})
    with pytest.raises(SchemaError, match="before the first validation window closes"):
        late.cutoffs(shop_db, "val")
    assert Task(**base).metric == "roc_auc"
    assert Task(**{**base, "task_type": "regression"}).metric == "mae"


# ---------------------------------------------------------------------- defects found by probing (issue 10)
def shop_with(users=None, orders=None, time_columns=None, extra=None):
    db = make_shop()
    tables = {"users": db["users"].df.copy() if users is None else users, "items": db["items"].df,
              "orders": db["orders"].df.copy() if orders is None else orders, **(extra or {})}
    return Database(tables, primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
                    foreign_keys={"orders": {"user_id": "users", "item_id": "items"}},
                    time_columns=time_columns or {"orders": "at"})


def sql_task(sql, target="y", task_type="binary", **kw):
    base = dict(name="probe", entity_table="users", entity_col="user_id", target_col=target, task_type=task_type,
                window=WINDOW, label_sql=sql, val_timestamp=VAL, test_timestamp=TEST)
    base.update(kw)
    return Task(**base)


SPEND_BUCKET = """
SELECT t.timestamp, u.user_id, CASE WHEN COUNT(o.order_id) >= 2 THEN {hi} ELSE {lo} END AS y
FROM timestamps t CROSS JOIN users u
LEFT JOIN orders o ON o.user_id = u.user_id AND o.at > t.timestamp AND o.at <= t.timestamp + {{window}}
GROUP BY t.timestamp, u.user_id
"""


@pytest.mark.parametrize("lo, hi", [("0.2", "0.7"), ("'no'", "'yes'"), ("FALSE", "TRUE"), ("0.0", "1.0")])
def test_binary_labels_keep_their_values(shop_db, lo, hi):
    reference = shop_task("binary").split(shop_db, "train")[1]
    X, y = sql_task(SPEND_BUCKET.format(lo=lo, hi=hi)).split(shop_db, "train")
    if lo == "0.2":
        assert set(np.unique(y)) == {0.2, 0.7} and y.dtype == np.float64
        np.testing.assert_array_equal(y == 0.7, reference == 1)
    elif lo == "'no'":
        assert set(y) == {"yes", "no"}
        np.testing.assert_array_equal(y == "yes", reference == 1)
    else:  # booleans and 0/1 floats are the usual 0/1 int64 labels
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, reference)


def test_binary_labels_with_three_values_raise(shop_db):
    sql = SHOP_LABEL_SQL.replace("CAST(COUNT(o.order_id) >= 2 AS INTEGER)", "LEAST(COUNT(o.order_id), 2)")
    with pytest.raises(SchemaError, match=r"binary task needs at most two distinct 'churn_free' values, found 3 "
                                          r"\(first: \[0, 1, 2\]\)"):
        sql_task(sql, target="churn_free").labels(shop_db, "train")


def test_regression_target_must_be_numeric(shop_db):
    sql = "SELECT timestamp, 0 AS user_id, 'x' AS y FROM timestamps"
    with pytest.raises(SchemaError, match="regression target must be numeric"):
        sql_task(sql, task_type="regression").labels(shop_db, "train")


def test_test_timestamp_after_the_data_warns(shop_db):
    task = sql_task(SHOP_LABEL_SQL, target="churn_free", test_timestamp=pd.Timestamp("2023-06-01"))
    with pytest.warns(LabelWarning, match=r"7 of 13 validation cutoffs \(first: 2022-02-24.*\) are at or after "
                                          r"the data's last time 2021-12-30.*2023-06-01.*windows hold no data"):
        task.labels(shop_db, "val")
    with pytest.warns(LabelWarning, match=r"test split is empty: test_timestamp 2023-06-01.*data range "
                                          r"2020-01-01 00:00:00..2021-12-30"):
        assert len(task.labels(shop_db, "test")) == 0


@pytest.mark.parametrize("val, test, message", [
    ("2018-01-01", "2019-01-01", r"test_timestamp 2019-01-01 00:00:00 is before the data \(times range over "
                                 r"2020-01-01 00:00:00..2021-12-30"),
    ("2019-06-01", "2021-07-01", r"val_timestamp 2019-06-01 00:00:00 leaves no training cutoff"),
])
def test_split_timestamps_before_the_data_raise(shop_db, val, test, message):
    task = sql_task(SHOP_LABEL_SQL, target="churn_free", val_timestamp=val, test_timestamp=test)
    for split in ("train", "val", "test"):
        with pytest.raises(SchemaError, match=message):
            task.labels(shop_db, split)


def test_val_timestamp_must_precede_test_timestamp():
    with pytest.raises(ValueError, match="val_timestamp 2021-07-01 00:00:00 must be before test_timestamp"):
        sql_task(SHOP_LABEL_SQL, val_timestamp=TEST)


def test_duplicates_and_missing_targets_are_counted(shop_db):
    dup = f"SELECT * FROM ({SHOP_LABEL_SQL}) UNION ALL SELECT * FROM ({SHOP_LABEL_SQL}) WHERE user_id < 5"
    task = sql_task(dup, target="churn_free")
    with pytest.warns(LabelWarning, match=r"split 'val': dropped \d+ duplicate row\(s\) \(same timestamp, user_id and "
                                          r"churn_free\), kept once"):
        labels = task.labels(shop_db, "val")
    pd.testing.assert_frame_equal(labels, shop_task("binary").labels(shop_db, "val"))
    conflict = (f"SELECT * FROM ({SHOP_LABEL_SQL}) UNION ALL "
                f"SELECT timestamp, user_id, 1 - churn_free FROM ({SHOP_LABEL_SQL}) WHERE user_id = 3")
    with pytest.raises(SchemaError, match=r"pair\(s\) have several different targets \(first: user_id=3 at "
                                          r"2021-03-01 00:00:00 with churn_free values \[[01], [01]\]\)"):
        sql_task(conflict, target="churn_free").labels(shop_db, "val")
    nulls = SHOP_LABEL_SQL.replace("CAST(COUNT(o.order_id) >= 2 AS INTEGER)",
                                   "CASE WHEN u.user_id % 10 = 0 THEN NULL ELSE CAST(COUNT(o.order_id) >= 2 AS INTEGER) END")
    with pytest.warns(LabelWarning, match=r"dropped 12 row\(s\) with a missing 'churn_free' \(first entities: "
                                          r"\[0, 10, 20, 30, 40\]\)"):
        labels = sql_task(nulls, target="churn_free").labels(shop_db, "val")
    assert not (labels["user_id"] % 10 == 0).any() and len(labels)


@pytest.mark.parametrize("name", ["timestamps", "Timestamps"])
def test_a_table_named_timestamps_is_not_shadowed(name):
    events = pd.DataFrame({"eid": [0, 1], "user_id": [1, 2], "note": ["a", "b"]})
    db = shop_with(extra={name: events})
    db = Database({n: db[n].df for n in db}, primary_keys={"users": "user_id", "items": "item_id",
                                                           "orders": "order_id", name: "eid"},
                  foreign_keys={"orders": {"user_id": "users", "item_id": "items"}, name: {"user_id": "users"}},
                  time_columns={"orders": "at"})
    plain = shop_task("binary")
    # `timestamps` is the cutoffs; the database's table is db.timestamps
    pd.testing.assert_frame_equal(plain.labels(db, "val"), plain.labels(make_shop(), "val"))
    sql = f"""
    SELECT t.timestamp, u.user_id, CAST(COUNT(e.eid) AS INTEGER) AS y
    FROM timestamps t CROSS JOIN users u LEFT JOIN db."{name}" e ON e.user_id = u.user_id
    GROUP BY t.timestamp, u.user_id
    """
    labels = sql_task(sql).labels(db, "val")
    assert set(labels.loc[labels["user_id"].isin([1, 2]), "y"]) == {1}
    assert set(labels.loc[~labels["user_id"].isin([1, 2]), "y"]) == {0}
    # every table is also reachable as db.<name>
    qualified = SHOP_LABEL_SQL.replace("CROSS JOIN users", "CROSS JOIN db.users").replace("JOIN orders", "JOIN db.orders")
    pd.testing.assert_frame_equal(sql_task(qualified, target="churn_free").labels(db, "val"), plain.labels(db, "val"))


def users_with_signup(late=(), missing=()):
    users = make_shop()["users"].df.copy()
    for u in late:
        users.loc[users["user_id"] == u, "signup"] = pd.Timestamp("2021-09-15")  # after TEST, before some test cutoffs
    for u in missing:
        users.loc[users["user_id"] == u, "signup"] = pd.NaT
    return users


# the three users who signed up last: changing their signup keeps the database's first time
LAST = make_shop()["users"].df.sort_values("signup", kind="stable")["user_id"].tolist()[-3:]


def test_entities_are_labelled_only_when_visible_at_the_cutoff():
    times = {"orders": "at", "users": "signup"}
    db = shop_with(users=users_with_signup(late=LAST[:2], missing=LAST[2:]), time_columns=times)
    task = shop_task("binary")
    signup = db["users"].df.set_index("user_id")["signup"]
    for split in ("train", "val", "test", "test_asof"):
        labels = task.labels(db, split)
        born = signup.reindex(labels["user_id"]).to_numpy()
        assert (born <= labels["timestamp"].to_numpy()).all()  # never labelled before they exist (NaT: never)
        assert not labels["user_id"].isin(LAST).any()  # two join after the test timestamp, one never
        X, _ = task.split(db, split)
        assert set(X.entity_ids) <= set(X.db["users"].df["user_id"])  # every row's entity is in X's database
    # the other users keep every row at which they exist
    base = shop_with(time_columns=times)
    full = task.labels(base, "train")
    born = base["users"].df.set_index("user_id")["signup"].reindex(full["user_id"]).to_numpy()
    expected = full[~full["user_id"].isin(LAST) & (born <= full["timestamp"].to_numpy())].reset_index(drop=True)
    pd.testing.assert_frame_equal(task.labels(db, "train"), expected)
    # without an entity time column every user is labelled at every cutoff
    no_time = shop_task("binary").labels(make_shop(), "train")
    assert len(no_time) == 60 * no_time["timestamp"].nunique()


def test_entities_with_an_entity_time_fit_and_predict():
    est_module = pytest.importorskip("skrel.estimators.baseline")
    db = shop_with(users=users_with_signup(late=LAST[:2], missing=LAST[2:]),
                   time_columns={"orders": "at", "users": "signup"})
    task = shop_task("binary")
    est = est_module.BaselineEstimator().fit(db, task)
    for split in ("test", "test_asof"):
        X, y = task.split(db, split)
        proba = est.predict_proba(X)
        assert proba.shape == (len(X), 2) and np.isfinite(proba).all()


def test_supplied_aware_timestamps_become_naive_utc(shop_db):
    tables = {s: pd.DataFrame({"timestamp": pd.to_datetime(["2020-06-01 02:00"]).tz_localize("Europe/Paris"),
                               "user_id": [1], "y": [1]}) for s in ("train", "val", "test")}
    task = supplied_task(tables=tables)
    labels = task.labels(shop_db, "train")
    assert labels["timestamp"].tolist() == [pd.Timestamp("2020-06-01 00:00")]
    assert labels["timestamp"].dtype == "datetime64[ns]"
