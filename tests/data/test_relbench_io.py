"""Conversions to and from relbench 3.x databases: keys re-indexed to 0..n-1, original keys kept,
round trips, no mutation of the inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from relbench.base import Database as RDatabase
from relbench.base import Table as RTable

from skrel.data import Database, DanglingForeignKeyWarning, SchemaError
from skrel.data.relbench_io import ORIG_SUFFIX, from_relbench, to_relbench


def small_db() -> Database:
    users = pd.DataFrame({"uid": ["u9", "u3", "u5"], "age": [30.0, 40.0, np.nan]})
    orders = pd.DataFrame(
        {
            "oid": [100, 7, 55, 3],
            "uid": ["u5", "u9", None, "u5"],
            "qty": [1, 2, 3, 4],
            "at": pd.to_datetime(["2020-01-04", "2020-01-01", "2020-01-02", "2020-01-03"]),
        }
    )
    log = pd.DataFrame({"uid": ["u3", "u3"], "what": ["a", "b"]})  # no primary key
    return Database(
        {"users": users, "orders": orders, "log": log},
        primary_keys={"users": "uid", "orders": "oid"},
        foreign_keys={"orders": {"uid": "users"}, "log": {"uid": "users"}},
        time_columns={"orders": "at"},
    )


def assert_same_db(a: Database, b: Database, check_dtype=True):
    assert a.table_names == b.table_names
    for name in a:
        ta, tb = a[name], b[name]
        assert (ta.pkey, ta.fkeys, ta.time_col) == (tb.pkey, tb.fkeys, tb.time_col)
        pd.testing.assert_frame_equal(ta.df.reset_index(drop=True), tb.df.reset_index(drop=True), check_dtype=check_dtype)


def test_to_relbench_reindexes_keys():
    db = small_db()
    rdb = to_relbench(db)
    assert isinstance(rdb, RDatabase) and set(rdb.table_dict) == {"users", "orders", "log"}
    users, orders, log = (rdb.table_dict[n] for n in ("users", "orders", "log"))
    assert isinstance(users, RTable)
    assert users.pkey_col == "uid" and orders.fkey_col_to_pkey_table == {"uid": "users"} and orders.time_col == "at"
    assert users.df["uid"].tolist() == [0, 1, 2] and users.df["uid"].dtype == np.int64
    assert users.df["uid__orig"].tolist() == ["u9", "u3", "u5"]
    assert list(users.df.columns) == ["uid", "uid__orig", "age"]
    assert orders.df["oid"].tolist() == [0, 1, 2, 3] and orders.df["oid__orig"].tolist() == [100, 7, 55, 3]
    fk = orders.df["uid"]
    assert str(fk.dtype) == "Int64" and fk.tolist()[:2] == [2, 0] and pd.isna(fk.iloc[2]) and fk.iloc[3] == 2
    assert log.pkey_col is None and log.df["uid"].tolist() == [1, 1] and log.df["uid"].dtype == np.int64
    # every foreign key points at the row holding the original key
    orig = users.df.set_index("uid")["uid__orig"]
    assert [orig[i] for i in fk.dropna()] == ["u5", "u9", "u5"]
    # relbench's own consumers accept it
    assert rdb.upto(pd.Timestamp("2020-01-02")).table_dict["orders"].df["oid__orig"].tolist() == [7, 55]
    assert rdb.min_timestamp == pd.Timestamp("2020-01-01")


def test_round_trip_restores_original_keys():
    db = small_db()
    back = from_relbench(to_relbench(db))
    assert_same_db(back, db, check_dtype=False)
    # keys without missing values keep their dtype exactly
    assert back["orders"].df["oid"].dtype == db["orders"].df["oid"].dtype
    assert back["users"].df["uid"].tolist() == ["u9", "u3", "u5"]
    assert back.fingerprint == from_relbench(to_relbench(db)).fingerprint
    assert_same_db(Database.from_relbench(db.to_relbench()), back)


def test_round_trip_shop_exact(shop_db):
    back = from_relbench(to_relbench(shop_db))
    assert_same_db(back, shop_db)
    assert back.fingerprint == shop_db.fingerprint


def test_round_trip_up_to_reindexing():
    db = small_db()
    back = from_relbench(to_relbench(db, keep_original_keys=False))
    assert "uid__orig" not in back["users"].df
    assert back["users"].df["uid"].tolist() == [0, 1, 2]
    # the same rows, joined the same way
    joined = back["orders"].df.merge(back["users"].df, on="uid", how="left")
    original = db["orders"].df.merge(db["users"].df, on="uid", how="left")
    pd.testing.assert_series_equal(joined["age"], original["age"])
    pd.testing.assert_series_equal(joined["qty"], original["qty"])
    # restore_keys=False keeps the __orig columns as data
    kept = from_relbench(to_relbench(db), restore_keys=False)
    assert kept["users"].df["uid__orig"].tolist() == ["u9", "u3", "u5"]


def test_inputs_never_mutated(shop_db):
    db = small_db()
    snapshot = {n: db[n].df.copy(deep=True) for n in db}
    rdb = to_relbench(db)
    for n in db:
        pd.testing.assert_frame_equal(db[n].df, snapshot[n])
    rsnap = {n: t.df.copy(deep=True) for n, t in rdb.table_dict.items()}
    back = from_relbench(rdb)
    for n, t in rdb.table_dict.items():
        pd.testing.assert_frame_equal(t.df, rsnap[n])
    # back holds its own read-only copies; relbench's frames stay writeable and apart
    with pytest.raises(ValueError, match="read-only"):
        back["users"].df.loc[0, "age"] = -1.0
    age = back["users"].df["age"].iloc[0]
    rdb.table_dict["users"].df.loc[0, "age"] = -1.0
    assert back["users"].df["age"].iloc[0] == age


def test_cut_database_dangling_keys_become_missing():
    users = pd.DataFrame({"uid": [1, 2], "joined": pd.to_datetime(["2020-01-01", "2020-03-01"])})
    orders = pd.DataFrame({"oid": [1, 2], "uid": [1, 2], "at": pd.to_datetime(["2020-01-05", "2020-01-06"])})
    db = Database(
        {"users": users, "orders": orders},
        primary_keys={"users": "uid", "orders": "oid"},
        foreign_keys={"orders": {"uid": "users"}},
        time_columns={"users": "joined", "orders": "at"},
    )
    cut = db.upto("2020-02-01")  # order 2's user joins after the cut
    with pytest.warns(DanglingForeignKeyWarning, match=r"orders\.uid: 1 value"):
        rdb = to_relbench(cut)
    assert rdb.table_dict["orders"].df["uid"].isna().tolist() == [False, True]


def test_relbench_style_database():
    """A database in relbench's own form (keys 0..n-1, float foreign keys with NaN)."""
    races = RTable(pd.DataFrame({"raceId": [0, 1, 2], "date": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01"])}),
                   {}, "raceId", "date")
    results = RTable(pd.DataFrame({"resultId": [0, 1], "raceId": [2.0, np.nan], "date": pd.to_datetime(["2020-03-01"] * 2)}),
                     {"raceId": "races"}, "resultId", "date")
    rdb = RDatabase({"races": races, "results": results})
    db = from_relbench(rdb)
    assert db["results"].fkeys == {"raceId": "races"} and db["results"].time_col == "date"
    assert db["results"].df["raceId"].isna().tolist() == [False, True]
    bad = RDatabase({"races": races, "results": RTable(results.df.assign(raceId=[5.0, 1.0]), {"raceId": "races"}, "resultId", "date")})
    with pytest.raises(SchemaError, match=r"results\.raceId has 1 value"):
        from_relbench(bad)
    with pytest.warns(DanglingForeignKeyWarning):
        assert from_relbench(bad, dangling="null")["results"].df["raceId"].isna().tolist() == [True, False]


def test_errors():
    with pytest.raises(TypeError, match="skrel Database"):
        to_relbench({"a": 1})
    with pytest.raises(TypeError, match="relbench.base.Database"):
        from_relbench(small_db())

    class FakeDataset:
        def get_db(self):  # pragma: no cover - never called
            raise AssertionError

    with pytest.raises(TypeError, match=r"Pass dataset\.get_db\(\)"):
        from_relbench(FakeDataset())
    users = pd.DataFrame({"uid": [1, 2], "uid__orig": [0, 0]})
    db = Database({"users": users}, primary_keys={"users": "uid"})
    with pytest.raises(SchemaError, match="already has a column 'uid__orig'"):
        to_relbench(db)
    assert "uid__orig" in to_relbench(db, keep_original_keys=False).table_dict["users"].df
    # an __orig column next to a key that is not 0..n-1 cannot be restored
    rdb = RDatabase({"users": RTable(users.assign(uid=[5, 6]), {}, "uid", None)})
    with pytest.raises(SchemaError, match="is not 0..n-1 in row order"):
        from_relbench(rdb)
    assert from_relbench(rdb, restore_keys=False)["users"].df["uid"].tolist() == [5, 6]
    assert ORIG_SUFFIX == "__orig"
