"""Read a :class:`~skrel.data.Task` from a TOML file (the command line's ``--task FILE``).

A task file holds :class:`~skrel.data.Task`'s own parameters, under the same names::

    name = "user-active"              # optional; the file name without .toml by default
    entity_table = "users"
    entity_col = "user_id"
    target_col = "active"
    task_type = "binary"              # "binary", "multiclass" or "regression"
    window = "30d"                    # a duration with its unit (a pandas Timedelta string), or integer days
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
literal). It must be exactly one ``SELECT`` (or ``WITH ... SELECT``) statement, and it runs on a
connection that reads the database's tables and nothing else: no file, URL, ``COPY``,
``ATTACH``, ``SET``, ``PRAGMA``, ``INSTALL`` or ``LOAD`` (see :class:`~skrel.data.Task`). A task
file may thus come from someone else without reaching beyond the database it is run on.

``window`` needs a unit (``"30d"``, ``"12h"``); a bare integer is a number of days, and a bare
number in a string (``"30"``) or a float is refused. Errors name the file, the key and, when it
can be found, the line.
"""

from __future__ import annotations

import datetime as _dt
import re
import tomllib
from pathlib import Path

import pandas as pd

from ..metrics import METRICS
from .task import TASK_TYPES, LabelQueryError, Task

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


# The longest pandas Timedelta, in whole days (about 292 years).
_MAX_DAYS = pd.Timedelta.max.days
_BARE_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def _parse_window(value, where: str) -> pd.Timedelta:
    """The task file's ``window``: a duration string with a unit, or an integer number of days.

    A bare number in a string (``"100"``) or a float has no unit: pandas would read it as
    nanoseconds, so it is refused rather than guessed.
    """
    example = 'such as "30d" or "12h"'
    invalid = f"{where}: window must be a positive duration {example} (or an integer number of days), got {value!r}."
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TaskFileError(invalid)
    if isinstance(value, float) or (isinstance(value, str) and _BARE_NUMBER.match(value)):
        raise TaskFileError(
            f"{where}: window = {value!r} is a number without a unit. Give a duration with its unit, {example}, "
            "or an integer (unquoted) number of days."
        )
    if isinstance(value, int):
        if value <= 0:
            raise TaskFileError(invalid)
        if value > _MAX_DAYS:
            raise TaskFileError(
                f"{where}: window = {value} days is longer than the longest duration pandas holds ({_MAX_DAYS} "
                f"days, about 292 years). Give a shorter window, with its unit, {example}."
            )
        return pd.Timedelta(days=value)
    try:
        window = pd.Timedelta(value)
    except (OverflowError, pd.errors.OutOfBoundsTimedelta, pd.errors.OutOfBoundsDatetime):
        raise TaskFileError(f"{where}: window = {value!r} is longer than the longest duration pandas holds "
                            f"({_MAX_DAYS} days, about 292 years). Give a shorter one, {example}.") from None
    except (ValueError, TypeError):
        raise TaskFileError(invalid) from None
    if pd.isna(window) or window <= pd.Timedelta(0):
        raise TaskFileError(invalid)
    return window


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

    window = _parse_window(raw["window"], where("window"))

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
    except LabelQueryError as exc:
        raise TaskFileError(f"{where('label_sql')}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise TaskFileError(f"{source}: {exc}") from None
