"""Read a :class:`~skrel.data.Task` from a TOML file (the command line's ``--task FILE``).

A task file holds :class:`~skrel.data.Task`'s own parameters, under the same names::

    name = "user-active"              # optional; the file name without .toml by default
    entity_table = "users"
    entity_col = "user_id"
    target_col = "active"
    task_type = "binary"              # "binary", "multiclass" or "regression"
    window = "30d"                    # a pandas Timedelta string, or an integer number of days
    metric = "roc_auc"                # optional; the task type's default otherwise
    val_timestamp = 2021-03-01        # a TOML date or date-time, or a string pandas parses
    test_timestamp = 2021-07-01
    num_eval_timestamps = 40          # optional
    description = "..."               # optional
    label_sql = '''
    SELECT t.timestamp, u.user_id, CAST(COUNT(o.order_id) > 0 AS INTEGER) AS active
    FROM timestamps t CROSS JOIN users u
    LEFT JOIN orders o ON o.user_id = u.user_id AND o.at > t.timestamp AND o.at <= t.timestamp + {window}
    GROUP BY t.timestamp, u.user_id
    '''

``label_sql`` is a DuckDB query that may reference every table of the database by name, the
table ``timestamps`` (one column ``timestamp``: the cutoffs) and ``{window}`` (an interval
literal). Errors name the file, the key and, when it can be found, the line.
"""

from __future__ import annotations

import datetime as _dt
import re
import tomllib
from pathlib import Path

import pandas as pd

from .task import TASK_TYPES, Task

__all__ = ["load_task", "parse_task", "TaskFileError", "TASK_FILE_KEYS"]

#: Keys a task file may hold, and whether each is required.
TASK_FILE_KEYS = {
    "name": False,
    "entity_table": True,
    "entity_col": True,
    "target_col": True,
    "task_type": True,
    "window": True,
    "label_sql": True,
    "val_timestamp": True,
    "test_timestamp": True,
    "metric": False,
    "num_eval_timestamps": False,
    "description": False,
}


class TaskFileError(ValueError):
    """A task file is not valid TOML, or a key is missing, unknown or has a bad value."""


def _line_of(text: str, key: str) -> int | None:
    match = re.search(rf"^\s*{re.escape(key)}\s*=", text, flags=re.MULTILINE)
    return None if match is None else text.count("\n", 0, match.start()) + 1


def load_task(path) -> Task:
    """Read a task file.

    Parameters
    ----------
    path : str or path-like
        A TOML file with the keys of the module notes.

    Returns
    -------
    Task

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    TaskFileError
        The file is not valid TOML (the message gives tomllib's line and column), or a key is
        missing, unknown or invalid (the message names the key, the file and its line).

    Examples
    --------
    >>> task = load_task("task.toml")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Task file {str(path)!r} does not exist.")
    return parse_task(path.read_text(encoding="utf-8"), source=str(path), default_name=path.stem)


def parse_task(text: str, *, source: str = "<task file>", default_name: str = "task") -> Task:
    """Build a :class:`Task` from the text of a task file (see :func:`load_task`)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TaskFileError(f"{source} is not valid TOML: {exc}.") from None

    def where(key: str) -> str:
        line = _line_of(text, key)
        return f"{source}" + (f" line {line}" if line else "")

    unknown = sorted(set(raw) - set(TASK_FILE_KEYS))
    if unknown:
        raise TaskFileError(
            f"{where(unknown[0])}: unknown key(s) {unknown}; a task file holds {sorted(TASK_FILE_KEYS)}."
        )
    missing = [k for k, required in TASK_FILE_KEYS.items() if required and k not in raw]
    if missing:
        raise TaskFileError(f"{source} lacks key(s) {missing}; add them (see `skrel fit --help`).")

    for key in ("name", "entity_table", "entity_col", "target_col", "task_type", "label_sql", "metric", "description"):
        if key in raw and (not isinstance(raw[key], str) or (key != "description" and not raw[key].strip())):
            raise TaskFileError(f"{where(key)}: {key} must be a non-empty string, got {raw[key]!r}.")
    if raw["task_type"] not in TASK_TYPES:
        raise TaskFileError(f"{where('task_type')}: task_type must be one of {list(TASK_TYPES)}, got {raw['task_type']!r}.")
    if "metric" in raw:
        from ..evaluation import METRICS

        if raw["metric"] not in METRICS:
            raise TaskFileError(f"{where('metric')}: metric must be one of {sorted(METRICS)}, got {raw['metric']!r}.")
    if "num_eval_timestamps" in raw and (
        isinstance(raw["num_eval_timestamps"], bool) or not isinstance(raw["num_eval_timestamps"], int)
        or raw["num_eval_timestamps"] < 1
    ):
        raise TaskFileError(
            f"{where('num_eval_timestamps')}: num_eval_timestamps must be a positive integer, "
            f"got {raw['num_eval_timestamps']!r}."
        )

    window = raw["window"]
    try:
        if isinstance(window, bool):
            raise ValueError
        window = pd.Timedelta(days=window) if isinstance(window, int) else pd.Timedelta(window)
        if pd.isna(window) or window <= pd.Timedelta(0):
            raise ValueError
    except (ValueError, TypeError):
        raise TaskFileError(
            f"{where('window')}: window must be a positive duration such as \"30d\" or \"12h\" "
            f"(or an integer number of days), got {raw['window']!r}."
        ) from None

    stamps = {}
    for key in ("val_timestamp", "test_timestamp"):
        value = raw[key]
        if isinstance(value, _dt.time) or isinstance(value, bool) or not isinstance(value, (str, _dt.date)):
            raise TaskFileError(f"{where(key)}: {key} must be a date such as 2021-03-01, got {value!r}.")
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            stamp = pd.NaT
        if pd.isna(stamp):
            raise TaskFileError(f"{where(key)}: {key} must be a date such as 2021-03-01, got {value!r}.")
        if stamp.tz is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        stamps[key] = stamp
    if stamps["val_timestamp"] >= stamps["test_timestamp"]:
        raise TaskFileError(
            f"{where('val_timestamp')}: val_timestamp ({stamps['val_timestamp']}) must come before "
            f"test_timestamp ({stamps['test_timestamp']})."
        )

    kwargs = {k: v for k, v in raw.items() if k not in ("window", "val_timestamp", "test_timestamp")}
    kwargs.setdefault("name", default_name)
    try:
        return Task(window=window, **stamps, **kwargs)
    except (ValueError, TypeError) as exc:
        raise TaskFileError(f"{source}: {exc}") from None
