"""A directory of Parquet/CSV files with a schema.toml reads into the same Database; bad schemas are named."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from conftest import make_shop
from skrel.data import SchemaError
from skrel.data.directory import display_source, load_directory, open_database

SCHEMA = """\
[tables.users]
primary_key = "user_id"

[tables.items]
primary_key = "item_id"
file = "catalogue.csv"

[tables.orders]
primary_key = "order_id"
time_column = "at"
foreign_keys = { user_id = "users", item_id = "items" }
"""


@pytest.fixture
def shop_dir(tmp_path):
    db = make_shop()
    db["users"].df.to_parquet(tmp_path / "users.parquet", index=False)
    db["items"].df.to_csv(tmp_path / "catalogue.csv", index=False)
    db["orders"].df.to_csv(tmp_path / "orders.csv", index=False)  # times as text
    (tmp_path / "notes.csv").write_text("not,a,table\n")  # not in the schema: not read
    (tmp_path / "schema.toml").write_text(SCHEMA)
    return tmp_path


def test_directory_reads_the_same_database(shop_dir):
    expected = make_shop()
    db = load_directory(shop_dir)
    assert db.schema() == expected.schema()
    for name in expected.tables:
        pd.testing.assert_frame_equal(db[name].df, expected[name].df, check_dtype=False)
    assert db["orders"].df["at"].dtype == "datetime64[ns]"
    assert db.fingerprint == load_directory(str(shop_dir)).fingerprint


def test_parse_dates_and_dangling(shop_dir):
    text = SCHEMA.replace('primary_key = "user_id"', 'primary_key = "user_id"\nfile = "users.csv"\nparse_dates = ["signup"]')
    make_shop()["users"].df.to_csv(shop_dir / "users.csv", index=False)
    (shop_dir / "schema.toml").write_text(text)
    assert load_directory(shop_dir)["users"].df["signup"].dtype == "datetime64[ns]"

    orders = pd.read_csv(shop_dir / "orders.csv")
    orders.loc[0, "user_id"] = 999
    orders.to_csv(shop_dir / "orders.csv", index=False)
    with pytest.raises(SchemaError, match="user_id"):
        load_directory(shop_dir)
    (shop_dir / "schema.toml").write_text('dangling = "null"\n' + text)
    with pytest.warns(UserWarning, match="set to missing"):
        assert load_directory(shop_dir)["orders"].df["user_id"].isna().sum() == 1


@pytest.mark.parametrize(
    "old, new, error, match",
    [
        ('time_column = "at"', 'time_column = "at"\nkeys = 1', SchemaError,
         r"schema\.toml line 11, table 'orders': unknown key\(s\) \['keys'\]"),
        ('time_column = "at"', 'time_column = "when"', SchemaError,
         r"line 10, table 'orders': time_column names column\(s\) \['when'\] that orders\.csv lacks"),
        ('item_id = "items"', 'item_id = "products"', SchemaError,
         r"line 11, table 'orders': foreign key orders\.item_id references 'products'"),
        ('primary_key = "user_id"', "primary_key = 7", SchemaError, r"line 2, table 'users': primary_key must be"),
        ('file = "catalogue.csv"', 'file = "missing.csv"', FileNotFoundError, r"line 6, table 'items': file .*missing\.csv"),
        ('file = "catalogue.csv"', 'file = "schema.toml"', SchemaError, r"neither Parquet"),
        ('[tables.users]', 'version = 2\n[tables.users]', SchemaError, r"unknown top-level key\(s\) \['version'\]"),
        ('[tables.users]', 'dangling = "drop"\n[tables.users]', SchemaError, r"line 1: dangling must be"),
        ('foreign_keys = {', 'foreign_keys = [', SchemaError, r"schema\.toml is not valid TOML: .*line 11"),
        ('[tables.orders]', '[tables.events]\nprimary_key = "event_id"\n\n[tables.orders]', FileNotFoundError,
         r"table 'events': no file events\.parquet"),
    ],
)
def test_bad_schema_names_the_table_key_and_line(shop_dir, old, new, error, match):
    assert old in SCHEMA
    (shop_dir / "schema.toml").write_text(SCHEMA.replace(old, new))
    with pytest.raises(error, match=match):
        load_directory(shop_dir)


def test_ambiguous_file_and_missing_schema(shop_dir, tmp_path_factory):
    make_shop()["users"].df.to_csv(shop_dir / "users.csv", index=False)
    with pytest.raises(SchemaError, match=r"several files \['users.parquet', 'users.csv'\]"):
        load_directory(shop_dir)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="has no schema.toml"):
        load_directory(empty)
    (empty / "schema.toml").write_text("")
    with pytest.raises(SchemaError, match="describes no table"):
        load_directory(empty)


def test_open_database_dispatches_on_the_source(shop_dir, tmp_path):
    assert open_database(shop_dir).schema() == make_shop().schema()
    path = tmp_path / "tiny.sqlite"
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL); INSERT INTO t VALUES (1, 0.5), (2, 1.5);")
    con.close()
    for source in (path, f"sqlite:///{path}"):
        db = open_database(source)
        assert db["t"].pkey == "id" and len(db["t"]) == 2
    with pytest.raises(FileNotFoundError, match="neither a database URL"):
        open_database(tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="sql_schema"):
        open_database(shop_dir, sql_schema="public")


def test_display_source_hides_passwords():
    assert display_source("postgresql://skrel:secret@localhost:5432/db") == "postgresql://skrel:***@localhost:5432/db"
    assert display_source("data/shop") == "data/shop"


def test_save_directory_round_trips_with_awkward_names(tmp_path):
    from skrel.data import Database
    from skrel.data.directory import save_directory

    users = pd.DataFrame({"user id": [1, 2]})
    orders = pd.DataFrame({"oid": [1, 2, 3], 'us"er': [1, 2, 2],
                           "at.time": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"])})
    db = Database({"the users": users, "orders.v2": orders}, primary_keys={"the users": "user id", "orders.v2": "oid"},
                  foreign_keys={"orders.v2": {'us"er': "the users"}}, time_columns={"orders.v2": "at.time"})
    back = load_directory(save_directory(db, tmp_path / "out"))
    assert back.table_names == db.table_names
    for name in db:
        assert (back[name].pkey, back[name].fkeys, back[name].time_col) == (db[name].pkey, db[name].fkeys,
                                                                              db[name].time_col)
        pd.testing.assert_frame_equal(back[name].df, db[name].df)
    files = Database.from_parquet(tmp_path / "out", memory_rows=0)
    assert files["orders.v2"].fkeys == db["orders.v2"].fkeys and len(files["orders.v2"]) == 3
