"""from_sql: keys from the database's own constraints, time columns given or inferred (and
reported), on SQLite files and on PostgreSQL (SKREL_TEST_POSTGRES_URL)."""

from __future__ import annotations

import logging
import sqlite3
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import postgres_schema
import sqlalchemy as sa

from skrel.data import Database, DanglingForeignKeyWarning, SchemaError
from skrel.data.sql import SQLSchemaWarning, TimeColumnInferenceWarning, from_sql

SHOP_DDL = """
CREATE TABLE users (user_id INTEGER PRIMARY KEY, name TEXT NOT NULL, signup DATE);
CREATE TABLE items (item_id INTEGER PRIMARY KEY, price REAL);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (user_id),
    item_id INTEGER REFERENCES items (item_id),
    qty NUMERIC(10, 2),
    ordered_at TIMESTAMP NOT NULL,
    shipped_at TIMESTAMP
);
"""

USERS = [(3, "c", "2019-03-01"), (1, "a", "2019-01-01"), (2, "b", None)]
ITEMS = [(1, 9.5), (2, 20.0)]
ORDERS = [
    (12, 3, 2, 1.5, "2020-01-03 10:00:00", None),
    (10, 1, 1, 1.0, "2020-01-01 08:30:00", "2020-01-02 00:00:00"),
    (11, 2, None, 2.0, "2020-01-02 00:00:00", "2020-01-05 00:00:00"),
]
TIMES = {"users": "signup", "items": None, "orders": "ordered_at"}


def fill_sqlite(path, extra: str = ""):
    con = sqlite3.connect(path)
    con.executescript(SHOP_DDL + extra)
    con.executemany("INSERT INTO users VALUES (?, ?, ?)", USERS)
    con.executemany("INSERT INTO items VALUES (?, ?)", ITEMS)
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", ORDERS)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


@pytest.fixture
def shop_sqlite(tmp_path):
    return fill_sqlite(tmp_path / "shop.db")


def check_shop(db: Database):
    assert sorted(db.table_names) == ["items", "orders", "users"]
    assert db["users"].pkey == "user_id" and db["items"].pkey == "item_id" and db["orders"].pkey == "order_id"
    assert db["orders"].fkeys == {"user_id": "users", "item_id": "items"}
    assert db["users"].fkeys == {} and db["items"].fkeys == {}
    orders = db["orders"].df
    assert orders["order_id"].tolist() == [10, 11, 12]  # ordered by primary key
    assert orders["ordered_at"].dtype == "datetime64[ns]"
    expected = [pd.Timestamp("2020-01-01 08:30"), pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03 10:00")]
    assert orders["ordered_at"].tolist() == expected
    assert pd.api.types.is_datetime64_any_dtype(orders["shipped_at"]) and pd.isna(orders["shipped_at"].iloc[2])
    assert str(orders["item_id"].dtype) == "Int64" and orders["item_id"].isna().tolist() == [False, True, False]
    assert orders["qty"].dtype == np.float64 and orders["qty"].tolist() == [1.0, 2.0, 1.5]
    assert db["users"].df["user_id"].tolist() == [1, 2, 3] and db["users"].df["name"].tolist() == ["a", "b", "c"]
    assert db["users"].df["signup"].dtype == "datetime64[ns]"


# ---------------------------------------------------------------------- SQLite
def test_sqlite_keys_and_types_silent_with_time_columns(shop_sqlite):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        db = from_sql(shop_sqlite, time_columns=TIMES)
    check_shop(db)
    assert {n: db[n].time_col for n in db} == TIMES


def test_sqlite_time_column_inference_is_reported(shop_sqlite, caplog):
    with caplog.at_level(logging.INFO, logger="skrel.data.sql"):
        with pytest.warns(TimeColumnInferenceWarning) as record:
            db = from_sql(shop_sqlite)
    assert len(record) == 1
    message = str(record[0].message)
    assert "inferred time column(s) users.signup" in message
    assert "orders (ordered_at, shipped_at)" in message and "time_columns=" in message
    assert db["users"].time_col == "signup" and db["orders"].time_col is None and db["items"].time_col is None
    assert db.schema()["users"]["time_column"] == "signup"  # the choice is visible afterwards
    assert any("users.signup" in r.getMessage() for r in caplog.records)
    # Giving the ambiguous table only: users is still inferred, nothing is ambiguous any more.
    with pytest.warns(TimeColumnInferenceWarning, match="users.signup") as record:
        db = from_sql(shop_sqlite, time_columns={"orders": "shipped_at"})
    assert "several" not in str(record[0].message)
    assert db["orders"].time_col == "shipped_at"


def test_engine_connection_and_classmethod(shop_sqlite):
    engine = sa.create_engine(shop_sqlite)
    check_shop(from_sql(engine, time_columns=TIMES))
    with engine.connect() as conn:  # the caller's engine is not disposed of
        check_shop(from_sql(conn, time_columns=TIMES))
    check_shop(Database.from_sql(shop_sqlite, time_columns=TIMES))
    engine.dispose()


def test_tables_subset_skips_keys_to_tables_not_read(shop_sqlite):
    with pytest.warns(SQLSchemaWarning, match=r"foreign key orders\(item_id\) -> items\(item_id\) references table 'items', which is not read"):
        db = from_sql(shop_sqlite, tables=["users", "orders"], time_columns={"users": None, "orders": "ordered_at"})
    assert db.table_names == ["users", "orders"]
    assert db["orders"].fkeys == {"user_id": "users"}


MESSY_DDL = """
CREATE TABLE order_items (order_id INTEGER REFERENCES orders (order_id), item_id INTEGER REFERENCES items (item_id),
                          n INTEGER, PRIMARY KEY (order_id, item_id));
CREATE TABLE returns (rid INTEGER PRIMARY KEY, order_id INTEGER, item_id INTEGER,
                      FOREIGN KEY (order_id, item_id) REFERENCES order_items (order_id, item_id));
CREATE TABLE coupons (cid INTEGER PRIMARY KEY, code TEXT UNIQUE);
CREATE TABLE redemptions (id INTEGER PRIMARY KEY, code TEXT REFERENCES coupons (code));
CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT);
INSERT INTO order_items VALUES (10, 1, 2), (11, 2, 1);
INSERT INTO returns VALUES (1, 10, 1);
INSERT INTO coupons VALUES (1, 'X'), (2, 'Y');
INSERT INTO redemptions VALUES (1, 'X');
CREATE VIEW big_orders AS SELECT order_id, qty FROM orders WHERE qty > 1;
"""


def test_sqlite_composite_and_non_primary_keys(tmp_path):
    url = fill_sqlite(tmp_path / "messy.db", MESSY_DDL)
    with pytest.warns(SQLSchemaWarning) as record:
        db = from_sql(url, time_columns=TIMES)
    message = " ".join(str(r.message) for r in record)
    assert "table 'order_items' has a composite primary key ('order_id', 'item_id')" in message
    assert "foreign key returns(order_id, item_id) -> order_items(order_id, item_id) is composite" in message
    assert "foreign key redemptions(code) -> coupons(code) does not reference the primary key of 'coupons'" in message
    assert "table 'audit' is empty" in message
    assert "audit" not in db and "big_orders" not in db  # empty tables and views are not read by default
    assert db["order_items"].pkey is None
    assert db["order_items"].fkeys == {"order_id": "orders", "item_id": "items"}
    assert db["returns"].fkeys == {} and db["redemptions"].fkeys == {}
    view = from_sql(url, tables=["big_orders"])
    assert view["big_orders"].df["order_id"].tolist() == [11, 12] or sorted(view["big_orders"].df["order_id"]) == [11, 12]
    with pytest.raises(SchemaError, match="Table 'audit' is empty"):
        from_sql(url, tables=["audit"])


def test_sqlite_bad_arguments(shop_sqlite, tmp_path):
    with pytest.raises(SchemaError, match=r"No table\(s\) \['customers'\]; tables are \['items', 'orders', 'users'\]"):
        from_sql(shop_sqlite, tables=["users", "customers"])
    with pytest.raises(SchemaError, match=r"time_columns names table\(s\) \['customers'\]"):
        from_sql(shop_sqlite, time_columns={"customers": "at"})
    with pytest.raises(SchemaError, match=r"time_columns gives orders\.when, but table 'orders' has no column 'when'"):
        from_sql(shop_sqlite, time_columns={**TIMES, "orders": "when"})
    with pytest.raises(TypeError, match="url_or_engine must be"):
        from_sql(42)
    with pytest.raises(TypeError, match="list of table names"):
        from_sql(shop_sqlite, tables="users")
    with pytest.raises(ValueError, match="dangling must be"):
        from_sql(shop_sqlite, dangling="drop")
    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(SchemaError, match="has no tables"):
        from_sql(f"sqlite:///{tmp_path / 'empty.db'}")


def test_sqlite_dangling_and_bad_times(tmp_path):
    # SQLite does not enforce foreign keys unless asked: the data can break them.
    extra = "INSERT INTO orders VALUES (13, 99, 1, 1.0, '2020-01-04 00:00:00', NULL);"
    url = fill_sqlite(tmp_path / "dangling.db", extra)
    with pytest.raises(SchemaError, match=r"orders\.user_id has 1 value\(s\) with no matching users\.user_id"):
        from_sql(url, time_columns=TIMES)
    with pytest.warns(DanglingForeignKeyWarning, match="1 value"):
        db = from_sql(url, time_columns=TIMES, dangling="null")
    assert db["orders"].df["user_id"].isna().sum() == 1
    extra = "INSERT INTO orders VALUES (13, 1, 1, 1.0, 'not a time', NULL);"
    url = fill_sqlite(tmp_path / "badtime.db", extra)
    with pytest.raises(SchemaError, match=r"Time column orders\.ordered_at has 1 value\(s\) that are not datetimes.*'not a time'"):
        from_sql(url, time_columns=TIMES)


def test_sqlite_read_does_not_write(shop_sqlite):
    path = shop_sqlite.removeprefix("sqlite:///")
    before = open(path, "rb").read()
    from_sql(shop_sqlite, time_columns=TIMES)
    assert open(path, "rb").read() == before


# ---------------------------------------------------------------------- PostgreSQL
@pytest.fixture
def pg_schema():
    with postgres_schema("skrel_test") as (engine, url, schema):
        yield engine, schema


PG_DDL = """
CREATE TABLE {s}.users (user_id INTEGER PRIMARY KEY, name TEXT NOT NULL, signup DATE);
CREATE TABLE {s}.items (item_id BIGINT PRIMARY KEY, price DOUBLE PRECISION);
CREATE TABLE {s}.orders (
    order_id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES {s}.users (user_id),
    item_id BIGINT REFERENCES {s}.items (item_id),
    qty NUMERIC(10, 2),
    ordered_at TIMESTAMP WITH TIME ZONE NOT NULL,
    shipped_at TIMESTAMP
);
CREATE TABLE {s}.order_items (order_id INTEGER REFERENCES {s}.orders (order_id), item_id BIGINT REFERENCES {s}.items (item_id),
                              PRIMARY KEY (order_id, item_id));
CREATE TABLE {s}.events (event_id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES {s}.users (user_id), at TIMESTAMP);
INSERT INTO {s}.users VALUES (3, 'c', '2019-03-01'), (1, 'a', '2019-01-01'), (2, 'b', NULL);
INSERT INTO {s}.items VALUES (1, 9.5), (2, 20.0);
INSERT INTO {s}.orders VALUES
    (12, 3, 2, 1.5, '2020-01-03 11:00:00+01:00', NULL),
    (10, 1, 1, 1.0, '2020-01-01 08:30:00+00:00', '2020-01-02 00:00:00'),
    (11, 2, NULL, 2.0, '2020-01-01 19:00:00-05:00', '2020-01-05 00:00:00');
INSERT INTO {s}.order_items VALUES (10, 1), (12, 2);
INSERT INTO {s}.events VALUES (1, 1, '2020-01-01 12:00:00'), (2, 3, NULL);
"""


@pytest.mark.postgres
def test_postgres_keys_types_and_times(pg_schema):
    engine, schema = pg_schema
    with engine.begin() as conn:
        for statement in PG_DDL.format(s=schema).split(";"):
            if statement.strip():
                conn.execute(sa.text(statement))
    url = engine.url.render_as_string(hide_password=False)
    with pytest.warns(SQLSchemaWarning, match="table 'order_items' has a composite primary key") as record:
        db = from_sql(url, schema=schema, time_columns=TIMES | {"order_items": None, "events": "at"})
    assert "time columns ['orders.ordered_at'] hold times with a time zone (converted to UTC) and ['events.at']" in str(
        record[0].message
    )
    assert db["events"].fkeys == {"user_id": "users"} and db["events"].df["at"].dtype == "datetime64[ns]"
    check_shop(db.__class__({n: db[n] for n in ("users", "items", "orders")}))
    assert db["order_items"].fkeys == {"order_id": "orders", "item_id": "items"}
    # TIMESTAMP WITH TIME ZONE comes back as naive UTC
    assert db["orders"].df["ordered_at"].tolist() == pd.to_datetime(
        ["2020-01-01 08:30", "2020-01-02 00:00", "2020-01-03 10:00"]
    ).tolist()
    with pytest.warns(TimeColumnInferenceWarning, match=r"users\.signup.*orders \(ordered_at, shipped_at\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SQLSchemaWarning)
            inferred = from_sql(engine, schema=schema)
    assert inferred["users"].time_col == "signup" and inferred["orders"].time_col is None
    assert inferred["events"].time_col == "at"
    with pytest.raises(SchemaError, match=f"No table\\(s\\) \\['nope'\\] in schema '{schema}'"):
        from_sql(engine, schema=schema, tables=["nope"])


@pytest.mark.postgres
def test_postgres_dangling_and_upto(pg_schema):
    engine, schema = pg_schema
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {schema}.a (id INTEGER PRIMARY KEY, at TIMESTAMP NOT NULL)"))
        conn.execute(sa.text(f"CREATE TABLE {schema}.b (id INTEGER PRIMARY KEY, a_id INTEGER, at TIMESTAMP)"))
        conn.execute(sa.text(f"INSERT INTO {schema}.a VALUES (1, '2020-01-01'), (2, '2020-02-01')"))
        conn.execute(sa.text(f"INSERT INTO {schema}.b VALUES (1, 1, '2020-01-05'), (2, 7, '2020-02-05'), (3, NULL, NULL)"))
        # NOT VALID: the constraint exists (and is reflected) without checking the existing rows
        conn.execute(sa.text(f"ALTER TABLE {schema}.b ADD FOREIGN KEY (a_id) REFERENCES {schema}.a (id) NOT VALID"))
    with pytest.raises(SchemaError, match=r"b\.a_id has 1 value\(s\) with no matching a\.id \(first: \[7\]\)"):
        from_sql(engine, schema=schema, time_columns={"a": "at", "b": "at"})
    with pytest.warns(DanglingForeignKeyWarning):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TimeColumnInferenceWarning)
            db = from_sql(engine, schema=schema, dangling="null")
    assert db["b"].time_col == "at" and str(db["b"].df["a_id"].dtype) == "Int64"
    assert db["b"].df["a_id"].isna().tolist() == [False, True, True]
    assert db.upto("2020-01-31")["b"].df["id"].tolist() == [1]
