"""Task files: a TOML file gives the same Task as Python, and bad files name the key, file and line."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import SHOP_LABEL_SQL, shop_task
from skrel.data import Task
from skrel.data.task_file import TaskFileError, load_task, parse_task

SHOP_TOML = f'''
name = "user-active"
entity_table = "users"
entity_col = "user_id"
target_col = "churn_free"
task_type = "binary"
window = "60d"
val_timestamp = 2021-03-01
test_timestamp = "2021-07-01"
label_sql = """{SHOP_LABEL_SQL}"""
'''


def write(tmp_path, text, name="task.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_task_file_gives_the_python_task(tmp_path, shop_db):
    task = load_task(write(tmp_path, SHOP_TOML))
    expected = shop_task("binary")
    assert isinstance(task, Task)
    for attr in ("name", "entity_table", "entity_col", "target_col", "task_type", "window", "metric",
                 "val_timestamp", "test_timestamp", "num_eval_timestamps"):
        assert getattr(task, attr) == getattr(expected, attr), attr
    assert task.sizes(shop_db) == expected.sizes(shop_db)


def test_optional_keys_and_defaults(tmp_path):
    text = SHOP_TOML.replace('name = "user-active"\n', "").replace('window = "60d"', "window = 14")
    text += 'metric = "log_loss"\nnum_eval_timestamps = 5\ndescription = "active users"\n'
    task = load_task(write(tmp_path, text, "my-task.toml"))
    assert task.name == "my-task"  # the file name
    assert task.window == pd.Timedelta(days=14)
    assert task.metric == "log_loss" and task.num_eval_timestamps == 5 and task.description == "active users"
    dated = parse_task(SHOP_TOML.replace("val_timestamp = 2021-03-01", "val_timestamp = 2021-03-01T12:00:00Z"))
    assert dated.val_timestamp == pd.Timestamp("2021-03-01 12:00")  # aware times become naive UTC


def test_toml_syntax_error_gives_the_line(tmp_path):
    path = write(tmp_path, SHOP_TOML.replace('task_type = "binary"', "task_type = binary"))
    with pytest.raises(TaskFileError, match=r"task\.toml is not valid TOML: .*line 6"):
        load_task(path)


@pytest.mark.parametrize(
    "old, new, match",
    [
        ('target_col = "churn_free"\n', "", r"task\.toml lacks key\(s\) \['target_col'\]"),
        ('task_type = "binary"', 'task_type = "binary"\nhorizon = "cutoff"', r"task\.toml line 7: unknown key\(s\) \['horizon'\]"),
        ('task_type = "binary"', 'task_type = "classification"', r"task\.toml line 6: task_type must be one of"),
        ('window = "60d"', 'window = "sixty days"', r"task\.toml line 7: window must be a positive duration"),
        ('window = "60d"', "window = -3", r"line 7: window must be a positive duration"),
        ('window = "60d"', "window = true", r"line 7: window must be a positive duration"),
        ("val_timestamp = 2021-03-01", 'val_timestamp = "soon"', r"line 8: val_timestamp must be a date"),
        ("val_timestamp = 2021-03-01", "val_timestamp = 12:00:00", r"line 8: val_timestamp must be a date"),
        ("val_timestamp = 2021-03-01", "val_timestamp = 2022-03-01", r"line 8: val_timestamp .* must come before"),
        ('entity_table = "users"', "entity_table = 3", r"line 3: entity_table must be a non-empty string"),
        ('entity_col = "user_id"', 'entity_col = ""', r"line 4: entity_col must be a non-empty string"),
        ('task_type = "binary"', 'task_type = "binary"\nmetric = "auc"', r"line 7: metric must be one of"),
        ('task_type = "binary"', 'task_type = "binary"\nnum_eval_timestamps = 0', r"line 7: num_eval_timestamps"),
    ],
)
def test_bad_keys_are_named_with_file_and_line(tmp_path, old, new, match):
    assert old in SHOP_TOML
    with pytest.raises(TaskFileError, match=match):
        load_task(write(tmp_path, SHOP_TOML.replace(old, new)))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no-such.toml"):
        load_task("no-such.toml")
