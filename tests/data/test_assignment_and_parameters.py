"""Table.df copies a frame assigned to it; tz-aware task timestamps, task-file windows and from_parquet's
memory_rows get the right behaviour or one clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import make_shop, shop_task
from skrel.data import Database, Table, Task
from skrel.data.directory import save_directory
from skrel.data.files import FileTable
from skrel.data.task_file import TaskFileError, parse_task
from test_task_file import SHOP_TOML


def test_a_frame_assigned_to_table_df_is_copied():
    db = make_shop()
    task = shop_task("binary")
    before = task.labels(db, "train")
    new = db["orders"].df.copy()
    new["qty"] = 1.0
    db["orders"].df = new
    assert db["orders"].df is not new
    new["qty"] = 0.0  # the caller's frame: replacing a column ...
    new.loc[0, "user_id"] = 59  # ... and writing a value in place
    assert (db["orders"].df["qty"] == 1.0).all()
    assert db["orders"].df.loc[0, "user_id"] == make_shop()["orders"].df.loc[0, "user_id"]
    # the database saw the new frame: caches cleared, and the table read-only again
    assert task.labels(db, "train") is not before
    with pytest.raises(ValueError, match="read-only"):
        db["orders"].df.loc[0, "qty"] = 5.0
    # a standalone Table copies too; its construction keeps the frame it is given
    frame = pd.DataFrame({"id": [1, 2]})
    t = Table(frame, "id")
    assert t.df is frame
    t.df = frame
    assert t.df is frame  # the same frame again: nothing to copy
    other = pd.DataFrame({"id": [3]})
    t.df = other
    other.loc[0, "id"] = 9
    assert t.df["id"].tolist() == [3]


def test_tz_aware_task_timestamps_are_converted_to_naive_utc(shop_db):
    naive = shop_task("binary")
    fields = {k: getattr(naive, k) for k in ("name", "entity_table", "entity_col", "target_col", "task_type", "window",
                                             "label_sql")}
    aware = Task(**fields, val_timestamp=pd.Timestamp("2021-03-01 01:00", tz="Europe/Paris"),
                 test_timestamp=pd.Timestamp("2021-06-30 20:00", tz="America/New_York"))
    assert aware.val_timestamp == pd.Timestamp("2021-03-01") and aware.val_timestamp.tzinfo is None
    assert aware.test_timestamp == pd.Timestamp("2021-07-01") and aware.test_timestamp.tzinfo is None
    assert aware == naive
    pd.testing.assert_frame_equal(aware.labels(shop_db, "val"), naive.labels(shop_db, "val"))
    X, y = aware.split(shop_db, "train")
    np.testing.assert_array_equal(y, naive.split(shop_db, "train")[1])
    # the task file path gives the same task
    text = SHOP_TOML.replace("val_timestamp = 2021-03-01", "val_timestamp = 2021-03-01T01:00:00+01:00")
    assert parse_task(text).val_timestamp == aware.val_timestamp


@pytest.mark.parametrize(
    "window, match",
    [
        ("100000000", r"window = 100000000 days is longer than the longest duration pandas holds \(106751 days"),
        ('"100000000"', r"window = '100000000' is a number without a unit\. Give a duration with its unit, such as "
                        r"\"30d\""),
        ('"30"', r"window = '30' is a number without a unit"),
        ("1.5", r"window = 1\.5 is a number without a unit"),
        ('"200000000d"', r"window = '200000000d' is longer than the longest duration pandas holds"),
        ("0", r"window must be a positive duration"),
    ],
)
def test_task_file_window_says_what_is_wrong(window, match):
    text = SHOP_TOML.replace('window = "60d"', f"window = {window}")
    with pytest.raises(TaskFileError, match=r"<task file> line 7: " + match):
        parse_task(text)


def test_task_file_window_with_a_unit_or_integer_days():
    for window, expected in (('"36h"', pd.Timedelta(hours=36)), ("14", pd.Timedelta(days=14)),
                             ('"P2D"', pd.Timedelta(days=2))):
        assert parse_task(SHOP_TOML.replace('window = "60d"', f"window = {window}")).window == expected


def test_from_parquet_memory_rows(tmp_path):
    mem = make_shop()
    root = save_directory(mem, tmp_path / "shop")
    db = Database.from_parquet(root, memory_rows=None)  # no bound: every table in memory
    assert not any(isinstance(db[n], FileTable) for n in db)
    for name in mem:
        pd.testing.assert_frame_equal(db[name].df, mem[name].df)
    assert isinstance(Database.from_parquet(root, memory_rows=100)["orders"], FileTable)
    assert isinstance(Database.from_parquet(root, memory_rows=np.int64(0))["users"], FileTable)
    for bad in (-1, 1.5, "100", True):
        with pytest.raises(ValueError, match=r"from_parquet: memory_rows must be a non-negative integer \(a row count\), "
                                             r"or None to read every table into memory; got"):
            Database.from_parquet(root, memory_rows=bad)
