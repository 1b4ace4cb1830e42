"""Database: validation of bad input (clear errors naming table and column), no mutation of the
caller's data, point-in-time cuts, fingerprints and pickling."""

from __future__ import annotations

import copy
import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import skrel.data.database as database_module
from skrel.data import Database, DanglingForeignKeyWarning, SchemaError, Table


def frames():
    users = pd.DataFrame({"user_id": [10, 20, 30], "name": ["a", "b", "c"]})
    orders = pd.DataFrame(
        {
            "order_id": [1, 2, 3, 4],
            "user_id": [10, 20, 20, 30],
            "qty": [1.0, 2.0, 3.0, 4.0],
            "at": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"]),
        }
    )
    return users, orders


def build(users=None, orders=None, **kw):
    u, o = frames()
    users = u if users is None else users
    orders = o if orders is None else orders
    kw.setdefault("primary_keys", {"users": "user_id", "orders": "order_id"})
    kw.setdefault("foreign_keys", {"orders": {"user_id": "users"}})
    kw.setdefault("time_columns", {"orders": "at"})
    return Database({"users": users, "orders": orders}, **kw)


def test_valid_database():
    db = build()
    assert db.table_names == ["users", "orders"]
    assert db["orders"].pkey == "order_id" and db["orders"].fkeys == {"user_id": "users"}
    assert db["orders"].df["at"].dtype == "datetime64[ns]"
    assert db.min_time == pd.Timestamp("2020-01-01") and db.max_time == pd.Timestamp("2020-01-04")
    assert "users" in db and "nope" not in db and list(db) == ["users", "orders"]
    schema = db.schema()
    json.dumps(schema)
    assert schema["orders"] == {
        "rows": 4,
        "columns": ["order_id", "user_id", "qty", "at"],
        "kinds": {"order_id": "numeric", "user_id": "numeric", "qty": "numeric", "at": "datetime"},
        "primary_key": "order_id",
        "foreign_keys": {"user_id": "users"},
        "time_column": "at",
    }


def test_table_objects_accepted():
    u, o = frames()
    db = Database({"users": Table(u, "user_id"), "orders": Table(o, "order_id", {"user_id": "users"}, "at")})
    assert db["orders"].time_col == "at"
    with pytest.raises(SchemaError, match="'users' is a Table with its own schema"):
        Database({"users": Table(u, "user_id")}, primary_keys={"users": "user_id"})


# ---------------------------------------------------------------------- schema errors
def test_unknown_table_lookup():
    with pytest.raises(KeyError, match="No table 'nope'; tables are \\['orders', 'users'\\]"):
        build()["nope"]


def test_fk_to_unknown_table():
    with pytest.raises(SchemaError, match=r"Foreign key orders\.user_id references unknown table 'people'"):
        build(foreign_keys={"orders": {"user_id": "people"}})


def test_fk_to_table_without_pkey():
    with pytest.raises(SchemaError, match=r"orders\.user_id references table 'users', which has no primary key"):
        build(primary_keys={"orders": "order_id"})


def test_fk_column_missing():
    with pytest.raises(SchemaError, match=r"Table 'orders' has no column 'customer' \(a foreign key\)"):
        build(foreign_keys={"orders": {"customer": "users"}})


def test_pkey_and_time_column_missing():
    with pytest.raises(SchemaError, match=r"Table 'users' has no column 'id' \(its primary key\)"):
        build(primary_keys={"users": "id", "orders": "order_id"})
    with pytest.raises(SchemaError, match=r"Table 'orders' has no column 'when' \(its time column\)"):
        build(time_columns={"orders": "when"})


def test_schema_mapping_names_unknown_table():
    with pytest.raises(SchemaError, match=r"time_columns names unknown table\(s\) \['events'\]"):
        build(time_columns={"events": "at"})


def test_duplicate_pkey():
    _, o = frames()
    o["order_id"] = [1, 2, 2, 3]
    with pytest.raises(SchemaError, match=r"Primary key orders\.order_id has 1 duplicate value\(s\) \(first: \[2\]\)"):
        build(orders=o)


def test_null_pkey():
    u, _ = frames()
    u["user_id"] = [10.0, np.nan, 30.0]
    with pytest.raises(SchemaError, match=r"Primary key users\.user_id has 1 null value\(s\) \(first at row positions \[1\]\)"):
        build(users=u, foreign_keys={})


def test_dangling_raise():
    _, o = frames()
    o["user_id"] = [10, 99, 98, 30]
    with pytest.raises(SchemaError, match=r"orders\.user_id has 2 value\(s\) with no matching users\.user_id .*\[99, 98\].*dangling='null'"):
        build(orders=o)


def test_dangling_null_sets_missing_and_counts():
    _, o = frames()
    o["user_id"] = [10, 99, 20, 98]
    with pytest.warns(DanglingForeignKeyWarning, match=r"orders\.user_id: 2 value\(s\) with no matching users\.user_id"):
        db = build(orders=o, dangling="null")
    fk = db["orders"].df["user_id"]
    assert str(fk.dtype) == "Int64"
    assert fk.isna().tolist() == [False, True, False, True]
    assert fk.dropna().tolist() == [10, 20]


def test_dangling_null_with_repeated_index_labels():
    _, o = frames()
    o["user_id"] = [10, 99, 20, 30]
    o.index = [0, 0, 1, 1]
    with pytest.warns(DanglingForeignKeyWarning, match="1 value"):
        db = build(orders=o, dangling="null")
    assert db["orders"].df["user_id"].isna().tolist() == [False, True, False, False]


def test_dangling_null_object_and_float_keys():
    u = pd.DataFrame({"code": ["a", "b"]})
    o = pd.DataFrame({"oid": [1, 2, 3], "code": ["a", "zz", None], "f": [1.0, np.nan, 7.0]})
    v = pd.DataFrame({"vid": [1.0, 2.0]})
    with pytest.warns(DanglingForeignKeyWarning) as record:
        db = Database(
            {"u": u, "o": o, "v": v},
            primary_keys={"u": "code", "o": "oid", "v": "vid"},
            foreign_keys={"o": {"code": "u", "f": "v"}},
            dangling="null",
        )
    assert len(record) == 2
    assert db["o"].df["code"].isna().tolist() == [False, True, True]
    assert db["o"].df["f"].isna().tolist() == [False, True, True]


def test_fk_dtype_mismatch_is_explained():
    _, o = frames()
    o["user_id"] = o["user_id"].astype(str)
    with pytest.raises(SchemaError, match=r"orders\.user_id is object and users\.user_id is int64; convert one"):
        build(orders=o)


def test_bad_dangling_option():
    with pytest.raises(ValueError, match="dangling must be 'raise' or 'null'"):
        build(dangling="drop")


def test_bad_tables_argument():
    with pytest.raises(SchemaError, match="non-empty dict"):
        Database({})
    with pytest.raises(SchemaError, match="Table 'users' must be a pandas DataFrame"):
        Database({"users": [1, 2]})
    with pytest.raises(SchemaError, match=r"non-string column name\(s\)"):
        Database({"t": pd.DataFrame({0: [1]})})


# ---------------------------------------------------------------------- time columns
@pytest.mark.parametrize("bad", [["2020-01-01", "abc", "2020-01-02", "2020-01-03"], ["x", "y", "z", "w"]])
def test_time_column_not_datetime(bad):
    _, o = frames()
    o["at"] = bad
    with pytest.raises(SchemaError, match=r"Time column orders\.at has \d value\(s\) that are not datetimes.*'(abc|x)'"):
        build(orders=o)


@pytest.mark.parametrize("values", [[1, 2, 3, 4], [1.5, 2.5, 3.5, 4.5], [True, False, True, True]])
def test_time_column_numbers(values):
    _, o = frames()
    o["at"] = values
    with pytest.raises(SchemaError, match=r"Time column orders\.at holds numbers .*pandas\.to_datetime"):
        build(orders=o)


def test_time_column_out_of_range():
    _, o = frames()
    o["at"] = ["2020-01-01", "3000-01-01", "2020-01-02", "2020-01-03"]
    with pytest.raises(SchemaError, match=r"orders\.at .*outside the range 1677-09-22\.\.2262-04-11.*3000-01-01"):
        build(orders=o)
    o["at"] = np.array(["2020-01-01", "3000-01-01", "2020-01-02", "2020-01-03"], dtype="datetime64[s]")
    with pytest.raises(SchemaError, match=r"orders\.at has values outside the range"):
        build(orders=o)


def test_time_strings_and_dates_are_parsed():
    _, o = frames()
    o["at"] = ["2020-01-01", "2020-01-02 10:30", None, "2020-01-04T00:00:00"]
    db = build(orders=o)
    assert db["orders"].df["at"].tolist()[:2] == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02 10:30")]
    assert pd.isna(db["orders"].df["at"].iloc[2])
    o["at"] = [pd.Timestamp("2020-01-01").date()] * 4
    assert build(orders=o)["orders"].df["at"].dtype == "datetime64[ns]"


@pytest.mark.parametrize(
    "values",
    [
        ["2020-01-01T00:00:00+01:00", "2020-01-02", "2020-01-03", "2020-01-04"],
        [pd.Timestamp("2020-01-01", tz="UTC"), pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03"), None],
    ],
)
def test_time_column_mixing_aware_and_naive(values):
    _, o = frames()
    o["at"] = values
    with pytest.raises(SchemaError, match=r"Time column orders\.at mixes timezone-aware and naive values"):
        build(orders=o)


def test_aware_times_become_naive_utc():
    _, o = frames()
    o["at"] = ["2020-01-01T01:00:00+01:00", "2020-01-01T02:00:00+02:00", "2020-01-01T00:00:00Z", None]
    db = build(orders=o)
    assert db["orders"].df["at"].dtype == "datetime64[ns]"
    assert db["orders"].df["at"].tolist()[:3] == [pd.Timestamp("2020-01-01")] * 3
    _, o = frames()
    o["at"] = o["at"].dt.tz_localize("Europe/Paris")
    db = build(orders=o)
    assert db["orders"].df["at"].iloc[0] == pd.Timestamp("2019-12-31 23:00")


def test_aware_and_naive_tables_mixed():
    u, o = frames()
    u["signup"] = pd.to_datetime(["2019-01-01"] * 3).tz_localize("UTC")
    with pytest.raises(SchemaError, match=r"mix timezone-aware tables \['users'\] and naive tables \['orders'\]"):
        build(users=u, time_columns={"orders": "at", "users": "signup"})
    o["at"] = o["at"].dt.tz_localize("UTC")
    db = build(users=u, orders=o, time_columns={"orders": "at", "users": "signup"})
    assert db["users"].df["signup"].dtype == "datetime64[ns]"


# ---------------------------------------------------------------------- other bad input
def test_empty_table():
    _, o = frames()
    with pytest.raises(SchemaError, match="Table 'orders' is empty"):
        build(orders=o.iloc[:0])


def test_table_names_clash_up_to_case():
    u, o = frames()
    with pytest.raises(SchemaError, match="Table names 'users' and 'Users' clash"):
        Database({"users": u, "Users": u.copy()})


def test_column_names_clash_up_to_case():
    u, _ = frames()
    u["Name"] = 1
    with pytest.raises(SchemaError, match="Table 'users' has clashing column names 'name' and 'Name'"):
        build(users=u)


# ---------------------------------------------------------------------- no mutation
@pytest.mark.parametrize("case", ["plain", "dangling", "time_strings", "time_aware"])
def test_caller_frames_never_mutated(case):
    u, o = frames()
    kw = {}
    if case == "dangling":
        o["user_id"] = [10, 99, 20, 98]
        kw["dangling"] = "null"
    elif case == "time_strings":
        o["at"] = ["2020-01-01", "2020-01-02", None, "2020-01-04 12:00"]
    elif case == "time_aware":
        o["at"] = o["at"].dt.tz_localize("Europe/Paris")
    o.index = [5, 5, 6, 7]
    before_u, before_o = u.copy(deep=True), o.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DanglingForeignKeyWarning)
        db = build(users=u, orders=o, **kw)
    pd.testing.assert_frame_equal(u, before_u)
    pd.testing.assert_frame_equal(o, before_o)
    # The database holds read-only copies; the caller's frames stay writeable and their own.
    assert db["orders"].df is not o
    with pytest.raises(ValueError, match="read-only"):
        db["orders"].df.loc[db["orders"].df.index[0], "qty"] = -1.0
    with pytest.raises(ValueError, match="read-only"):
        db["users"].df.loc[0, "name"] = "changed"
    pd.testing.assert_frame_equal(u, before_u)
    pd.testing.assert_frame_equal(o, before_o)
    o.loc[o.index[0], "qty"] = -1.0
    u.loc[0, "name"] = "changed"
    assert db["orders"].df["qty"].iloc[0] == 1.0 and db["users"].df["name"].iloc[0] == "a"


def test_caller_tables_never_mutated():
    u, o = frames()
    o["user_id"] = [10, 99, 20, 98]
    o["at"] = o["at"].astype(str)
    t = Table(o, "order_id", {"user_id": "users"}, "at")
    snapshot = copy.deepcopy(t)
    with pytest.warns(DanglingForeignKeyWarning):
        Database({"users": Table(u, "user_id"), "orders": t}, dangling="null")
    pd.testing.assert_frame_equal(t.df, snapshot.df)
    assert (t.pkey, t.fkeys, t.time_col) == (snapshot.pkey, snapshot.fkeys, snapshot.time_col)


# ---------------------------------------------------------------------- upto
def test_upto_semantics():
    db = build()
    cut = db.upto(pd.Timestamp("2020-01-02"))
    assert cut["orders"].df["order_id"].tolist() == [1, 2]  # the row exactly at t is visible
    assert len(cut["users"]) == 3  # no time column: whole
    assert db.upto("2020-01-01 23:59:59.999999999")["orders"].df["order_id"].tolist() == [1]
    assert len(db.upto("2019-12-31")["orders"]) == 0
    assert len(db.upto("2021-01-01")["orders"]) == 4
    assert len(db["orders"]) == 4  # the original is untouched
    assert db.upto("2020-01-02") is cut  # cached per database
    assert cut["orders"].time_col == "at" and cut["orders"].fkeys == {"user_id": "users"}


def test_upto_aware_time_and_missing_times():
    _, o = frames()
    o["at"] = ["2020-01-01", None, "2020-01-03", "2020-01-04"]
    db = build(orders=o)
    # An aware cutoff is compared in UTC, like the stored (naive UTC) times.
    assert db.upto(pd.Timestamp("2020-01-03 01:00", tz="Europe/Paris"))["orders"].df["order_id"].tolist() == [1, 3]
    # A row without a time is never visible in a cut database.
    assert 2 not in db.upto("2030-01-01")["orders"].df["order_id"].tolist()
    with pytest.raises(ValueError, match="NaT"):
        db.upto(pd.NaT)


# ---------------------------------------------------------------------- fingerprint and pickling
def test_fingerprint_stable_and_sensitive():
    a, b = build(), build()
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 32
    _, o = frames()
    o.loc[2, "qty"] = 3.5
    assert build(orders=o).fingerprint != a.fingerprint
    _, o = frames()
    assert build(orders=o.iloc[[1, 0, 2, 3]]).fingerprint != a.fingerprint  # row order
    assert build(time_columns={}).fingerprint != a.fingerprint  # schema
    _, o = frames()
    assert build(orders=o.rename(columns={"qty": "quantity"})).fingerprint != a.fingerprint
    assert build(orders=o.astype({"qty": "float32"})).fingerprint != a.fingerprint
    assert a.upto("2020-01-02").fingerprint != a.fingerprint


@pytest.mark.parametrize("compress", [False, True])
def test_pickle_round_trip(monkeypatch, compress):
    if compress:
        monkeypatch.setattr(database_module, "_COMPRESS_MIN_BYTES", 0)
    db = build()
    db.cache["x"] = 1
    fp = db.fingerprint
    blob = pickle.dumps(db)
    assert (b"_tables_zstd" in blob) == compress
    back = pickle.loads(blob)
    assert back.cache == {} and db.cache == {"x": 1}
    assert back.fingerprint == fp
    for name in db:
        pd.testing.assert_frame_equal(back[name].df, db[name].df)
        assert (back[name].pkey, back[name].fkeys, back[name].time_col) == (
            db[name].pkey,
            db[name].fkeys,
            db[name].time_col,
        )
    assert back.dangling == db.dangling


def test_large_database_pickles_compressed():
    from conftest import make_shop

    db = make_shop(n_orders=60_000)
    plain = pickle.dumps(db.tables)
    assert len(plain) >= database_module._COMPRESS_MIN_BYTES
    blob = pickle.dumps(db)
    assert len(blob) < len(plain) / 2
    back = pickle.loads(blob)
    assert back.fingerprint == db.fingerprint
    pd.testing.assert_frame_equal(back["orders"].df, db["orders"].df)


# ---------------------------------------------------------------------- degenerate schemas (issue 10)
def test_empty_column_name_is_rejected():
    u, o = frames()
    with pytest.raises(SchemaError, match=r"Table 'orders' has a column named '' \(the empty string\) at position 2"):
        build(orders=o.rename(columns={"qty": ""}))


def test_non_string_column_names_are_rejected():
    u, o = frames()
    o[7] = 1.0
    with pytest.raises(SchemaError, match=r"Table 'orders' has 1 non-string column name\(s\) \(first: \[7\]\)"):
        build(orders=o)


def people():
    """A self-referencing table (manager) and a table with two keys to it (sender, receiver)."""
    persons = pd.DataFrame({"pid": [1, 2, 3, 4], "manager": pd.array([pd.NA, 1, 1, 2], dtype="Int64"),
                            "name": ["a", "b", "c", "d"],
                            "joined": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01"])})
    messages = pd.DataFrame({"mid": [10, 11, 12], "sender": [1, 2, 3], "receiver": [2, 3, 1],
                             "name": ["hi", "yo", "ok"],  # a column name shared with persons
                             "at": pd.to_datetime(["2020-03-05", "2020-04-02", "2020-04-03"])})
    return Database({"persons": persons, "messages": messages}, primary_keys={"persons": "pid", "messages": "mid"},
                    foreign_keys={"persons": {"manager": "persons"},
                                  "messages": {"sender": "persons", "receiver": "persons"}},
                    time_columns={"persons": "joined", "messages": "at"})


def test_self_reference_and_two_keys_to_one_table_are_accepted():
    db = people()
    assert db["persons"].fkeys == {"manager": "persons"}
    assert db["messages"].fkeys == {"sender": "persons", "receiver": "persons"}
    cut = db.upto("2020-03-10")
    assert cut["persons"].df["pid"].tolist() == [1, 2, 3] and cut["messages"].df["mid"].tolist() == [10]
    with pytest.raises(SchemaError, match=r"Foreign key persons\.manager has 1 value\(s\) with no matching "
                                          r"persons\.pid \(first: \[9\]\)"):
        Database({"persons": people()["persons"].df.assign(manager=pd.array([pd.NA, 1, 9, 2], dtype="Int64"))},
                 primary_keys={"persons": "pid"}, foreign_keys={"persons": {"manager": "persons"}})


def test_duplicate_column_names_across_tables_survive_cuts_and_round_trips(tmp_path):
    db = people()
    assert "name" in db["persons"].df.columns and "name" in db["messages"].df.columns
    cut = db.upto("2020-04-02")
    assert cut["messages"].df["name"].tolist() == ["hi", "yo"] and cut["persons"].df["name"].tolist() == list("abcd")
    from skrel.data import from_relbench, to_relbench

    back = from_relbench(to_relbench(db))
    for n in db:
        pd.testing.assert_frame_equal(back[n].df, db[n].df, check_dtype=False)
        assert back[n].fkeys == db[n].fkeys
    sa = pytest.importorskip("sqlalchemy")
    from skrel.data import from_sql

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'people.db'}")
    with engine.begin() as con:
        con.exec_driver_sql("CREATE TABLE persons (pid INTEGER PRIMARY KEY, manager INTEGER REFERENCES persons(pid), "
                            "name TEXT, joined TIMESTAMP)")
        con.exec_driver_sql("CREATE TABLE messages (mid INTEGER PRIMARY KEY, sender INTEGER REFERENCES persons(pid), "
                            "receiver INTEGER REFERENCES persons(pid), name TEXT, at TIMESTAMP)")
        for n in ("persons", "messages"):
            df = db[n].df.copy()
            df[db[n].time_col] = df[db[n].time_col].astype(str)
            df.astype(object).where(df.notna(), None).to_sql(n, con, if_exists="append", index=False)
    read = from_sql(engine, time_columns={"persons": "joined", "messages": "at"})
    assert read["messages"].fkeys == {"sender": "persons", "receiver": "persons"}
    assert read["persons"].fkeys == {"manager": "persons"}
    for n in db:
        pd.testing.assert_frame_equal(read[n].df[db[n].df.columns], db[n].df, check_dtype=False)


def test_list_and_timedelta_columns_are_allowed_and_reported():
    u, o = frames()
    o["tags"] = [["a"], ["b", "c"], [], ["d"]]
    o["wait"] = pd.to_timedelta([1, 2, 3, 4], unit="h")
    o["flag"] = [True, False, True, True]
    o["kind"] = pd.Categorical(["x", "y", "x", "y"])
    o["nothing"] = None
    o["mixed"] = [1, "a", 2.0, None]
    db = build(orders=o)
    kinds = db.schema()["orders"]["kinds"]
    assert kinds == {"order_id": "numeric", "user_id": "numeric", "qty": "numeric", "at": "datetime",
                     "tags": "list", "wait": "timedelta", "flag": "boolean", "kind": "categorical",
                     "nothing": "empty", "mixed": "other"}
    assert db.schema()["users"]["kinds"]["name"] == "text"
    json.dumps(db.schema())
    assert db.upto("2020-01-02")["orders"].df["tags"].tolist() == [["a"], ["b", "c"]]
