"""Point-in-time correctness: a row's features depend only on rows visible at its cutoff.

Convention (skrel's, RelBench's, featuretools' with ``include_cutoff_time=True``): a row dated
at or before the cutoff (time <= cutoff) is visible; rows of tables without a time column are
always visible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dfs_cases import assert_frames_equal, make_market
from hypothesis import given, settings
from hypothesis import strategies as st

from skrel.data import Database, RelationalDataset, Table
from skrel.features import DFSTransformer


def rebuild(db: Database, tables: dict[str, pd.DataFrame]) -> Database:
    return Database({n: Table(tables.get(n, t.df), t.pkey, dict(t.fkeys), t.time_col) for n, t in db.tables.items()})


def scramble_future(db: Database, cutoff: pd.Timestamp, rng: np.random.Generator) -> Database:
    """Change every value of every row dated after ``cutoff`` and add new rows after it."""
    out = {}
    for name, t in db.tables.items():
        if t.time_col is None:
            continue
        df = t.df.copy()
        future = (df[t.time_col] > cutoff).to_numpy()
        n_new = int(rng.integers(1, 6))
        new = df.sample(n_new, replace=True, random_state=int(rng.integers(2**31))).copy()
        if df[t.pkey].dtype.kind in "iu":
            new[t.pkey] = df[t.pkey].max() + 1 + np.arange(n_new)
        else:
            new[t.pkey] = [f"new-{name}-{i}" for i in range(n_new)]
        new[t.time_col] = cutoff + pd.to_timedelta(rng.integers(1, 200 * 86_400, n_new), "s")
        df = pd.concat([df, new], ignore_index=True)
        future = np.concatenate([future, np.ones(n_new, dtype=bool)])
        idx = np.flatnonzero(future)
        for col in df.columns:
            if col in (t.pkey, t.time_col):
                continue
            s = df[col]
            if col in t.fkeys:
                targets = db[t.fkeys[col]].df[db[t.fkeys[col]].pkey].to_numpy()
                df.loc[idx, col] = rng.choice(targets, len(idx))
            elif pd.api.types.is_bool_dtype(s.dtype):
                df.loc[idx, col] = rng.random(len(idx)) < 0.5
            elif pd.api.types.is_numeric_dtype(s.dtype):
                df.loc[idx, col] = rng.normal(size=len(idx)) * 100
            elif pd.api.types.is_datetime64_any_dtype(s.dtype):
                continue
            else:
                df.loc[idx, col] = rng.choice(["zz", "yy", None], len(idx))
        out[name] = df
    return rebuild(db, out)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), day=st.integers(0, 364), exact=st.booleans())
def test_rows_after_the_cutoff_change_nothing(seed, day, exact):
    db = make_market(seed=seed % 7, n_users=6, n_orders=50, n_reviews=40)
    if exact:  # a cutoff exactly at an order's time: that order is visible, and stays so
        cutoff = pd.Timestamp(db["orders"].df["at"].dropna().iloc[day % 40])
    else:
        cutoff = pd.Timestamp("2021-01-01") + pd.Timedelta(days=day, hours=7)
    users = db["users"].df["user_id"].to_numpy()
    X = RelationalDataset(db, "users", users, np.full(len(users), cutoff.to_datetime64()))
    t = DFSTransformer(max_depth=2, windows=[30]).fit(X)
    before = t.transform(X)
    changed = scramble_future(db, cutoff, np.random.default_rng(seed))
    after = t.transform(X.with_database(changed))
    assert_frames_equal(before, after, rtol=1e-12)


@pytest.fixture
def tiny():
    users = pd.DataFrame({"uid": [1, 2], "joined": pd.to_datetime(["2021-01-01", "2021-03-01"]), "age": [30.0, 40.0]})
    items = pd.DataFrame({"iid": [0, 1], "price": [10.0, 20.0]})  # no time column: always visible
    orders = pd.DataFrame(
        {
            "oid": [0, 1, 2],
            "uid": [1, 1, 2],
            "iid": [0, 1, 1],
            "qty": [1.0, 2.0, 4.0],
            "at": pd.to_datetime(["2021-01-10", "2021-02-01", "2021-03-05"]),
        }
    )
    return {"users": users, "items": items, "orders": orders}


def tiny_db(frames):
    return Database(
        frames,
        primary_keys={"users": "uid", "items": "iid", "orders": "oid"},
        foreign_keys={"orders": {"uid": "users", "iid": "items"}},
        time_columns={"users": "joined", "orders": "at"},
    )


def features(frames, uid, cutoff, **params):
    X = RelationalDataset(tiny_db(frames), "users", [uid], [pd.Timestamp(cutoff)])
    return DFSTransformer(**params).fit(X).transform(X).iloc[0]


def test_a_row_dated_exactly_at_the_cutoff_is_visible(tiny):
    f = features(tiny, 1, "2021-02-01")
    assert f["COUNT(orders)"] == 2 and f["SUM(orders.qty)"] == 3.0 and f["TIME_SINCE_LAST(orders.at)"] == 0.0
    f = features(tiny, 1, pd.Timestamp("2021-02-01") - pd.Timedelta(1, "ns"))
    assert f["COUNT(orders)"] == 1
    assert f["TIME_SINCE_LAST(orders.at)"] == ((22 * 86400 * 10**9 - 1) // 1000) / 1e6  # pandas: whole microseconds


def test_entity_row_visible_from_its_own_time(tiny):
    assert features(tiny, 2, "2021-03-01")["age"] == 40.0
    f = features(tiny, 2, pd.Timestamp("2021-03-01") - pd.Timedelta(1, "ns"))
    assert np.isnan(f["age"]) and f["COUNT(orders)"] == 0 and f["SUM(orders.qty)"] == 0.0


def test_window_bounds_are_inclusive(tiny):
    # [cutoff - 22 days, cutoff] holds the orders of 2021-01-10 and 2021-02-01
    f = features(tiny, 1, "2021-02-01", windows=[22])
    assert f["COUNT(orders, Last 22 Days)"] == 2
    f = features(tiny, 1, pd.Timestamp("2021-02-01") + pd.Timedelta(1, "ns"), windows=[22])
    assert f["COUNT(orders, Last 22 Days)"] == 1


def test_tables_without_time_are_always_visible(tiny):
    before = features(tiny, 1, "2021-02-01")["MEAN(orders.items.price)"]
    tiny["items"] = tiny["items"].assign(price=[100.0, 200.0])
    after = features(tiny, 1, "2021-02-01")["MEAN(orders.items.price)"]
    assert before == 15.0 and after == 150.0


def test_each_cutoff_sees_only_its_own_history(tiny):
    X = RelationalDataset(tiny_db(tiny), "users", [1, 1, 1], pd.to_datetime(["2021-01-09", "2021-01-10", "2021-12-31"]))
    F = DFSTransformer(max_depth=1).fit(X).transform(X)
    assert F["COUNT(orders)"].tolist() == [0, 1, 2]
    assert np.isnan(F["MEAN(orders.qty)"].iloc[0]) and F["MEAN(orders.qty)"].iloc[1:].tolist() == [1.0, 1.5]
