"""RelBench's ``rel-f1`` database and its three driver tasks, built from the raw Ergast CSVs.

The build follows RelBench (``relbench/datasets/f1.py`` and ``relbench/tasks/f1.py``):

- tables ``races``, ``circuits``, ``drivers``, ``results``, ``standings`` (from
  ``driver_standings.csv``), ``constructors``, ``constructor_results``, ``constructor_standings``
  and ``qualifying``, with RelBench's dropped columns;
- ``races.date`` is the race date plus its start time (a missing time counts as 00:00:00); every
  table with a ``raceId`` gets its race's ``date``; qualifying rows are dated one day *before* the
  race;
- the literal ``\\N`` is a missing value everywhere, and numeric columns are numeric;
- races after the last result date (announced races without results) are dropped, and by default
  the database is cut to RelBench's snapshot, the seasons up to 2023 (``last_season``).

Two deliberate differences from RelBench: primary keys keep their original values (RelBench
re-indexes them to 0..n-1, which skrel does not need), and ``\\N`` is read as missing in every table
(RelBench does so in ``results`` and ``circuits`` only, leaving the string ``"\\N"`` in e.g.
``drivers.code``). With ``last_season`` set, drivers and constructors that appear only in later
seasons are dropped too, so the static tables match the snapshot (no entity from the future).

Tasks (entity table ``drivers``), with RelBench's splits (val 2005-01-01, test 2010-01-01, at most
40 evaluation cutoffs): ``driver-dnf`` (binary, 30 days: 1 when any race of the driver in the window
does not end with status 1 "Finished"), ``driver-top3`` (binary, 30 days: 1 when the driver's best
qualifying position in the window is at most 3) and ``driver-position`` (regression, 60 days: mean
``positionOrder`` in the window). A driver gets a row at cutoff ``t`` when it has a results row
(a qualifying row for ``driver-top3``) in the window ``(t, t + D]``.

RelBench's SQL also requires a results (qualifying) row dated after ``t - 1 year``, with no upper
bound, so that filter never removes a driver that races in the window; it is kept verbatim. The
stricter reading "a row in ``(t - 1 year, t]``" would drop first-time drivers and does NOT give
RelBench's row counts (it gives 10,389 / 539 / 676 rows for driver-dnf instead of 11,411 / 566 /
702). RelBench's code names the DNF target ``did_not_finish`` but sets it to 0 when a race is not
finished; skrel uses the meaning of the name (1 = at least one race not finished). ROC AUC of a
model trained on either polarity is the same.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import Database, Task

__all__ = ["load_f1", "F1_TABLES", "F1_VAL_TIMESTAMP", "F1_TEST_TIMESTAMP"]

F1_VAL_TIMESTAMP = pd.Timestamp("2005-01-01")
F1_TEST_TIMESTAMP = pd.Timestamp("2010-01-01")

# table name -> (raw file, primary key, foreign keys, dropped columns)
F1_TABLES: dict[str, tuple[str, str, dict[str, str], list[str]]] = {
    "races": (
        "races.csv",
        "raceId",
        {"circuitId": "circuits"},
        ["url", "fp1_date", "fp1_time", "fp2_date", "fp2_time", "fp3_date", "fp3_time",
         "quali_date", "quali_time", "sprint_date", "sprint_time"],
    ),
    "circuits": ("circuits.csv", "circuitId", {}, ["url"]),
    "drivers": ("drivers.csv", "driverId", {}, ["number", "url"]),
    "results": (
        "results.csv",
        "resultId",
        {"raceId": "races", "driverId": "drivers", "constructorId": "constructors"},
        ["positionText", "time", "fastestLapTime", "fastestLapSpeed"],
    ),
    "standings": (
        "driver_standings.csv",
        "driverStandingsId",
        {"raceId": "races", "driverId": "drivers"},
        ["positionText"],
    ),
    "constructors": ("constructors.csv", "constructorId", {}, ["url"]),
    "constructor_results": (
        "constructor_results.csv",
        "constructorResultsId",
        {"raceId": "races", "constructorId": "constructors"},
        ["status"],
    ),
    "constructor_standings": (
        "constructor_standings.csv",
        "constructorStandingsId",
        {"raceId": "races", "constructorId": "constructors"},
        ["positionText"],
    ),
    "qualifying": (
        "qualifying.csv",
        "qualifyId",
        {"raceId": "races", "driverId": "drivers", "constructorId": "constructors"},
        ["q1", "q2", "q3"],
    ),
}

_NUMERIC = {
    "results": ["number", "grid", "position", "positionOrder", "points", "laps", "milliseconds", "fastestLap",
                "rank", "statusId"],
    "circuits": ["lat", "lng", "alt"],
    "standings": ["points", "position", "wins"],
    "constructor_results": ["points"],
    "constructor_standings": ["points", "position", "wins"],
    "qualifying": ["number", "position"],
    "races": ["year", "round"],
}

_DNF_SQL = """
SELECT t.timestamp, re.driverId,
       CAST(MAX(CASE WHEN re.statusId != 1 THEN 1 ELSE 0 END) AS BIGINT) AS did_not_finish
FROM timestamps t
JOIN results re ON re."date" > t.timestamp AND re."date" <= t.timestamp + {window}
WHERE re.driverId IN (
    SELECT p.driverId FROM results p
    WHERE p."date" > t.timestamp - INTERVAL '1 year'
)
GROUP BY t.timestamp, re.driverId
"""

_TOP3_SQL = """
SELECT t.timestamp, qu.driverId,
       CAST(MIN(qu.position) <= 3 AS BIGINT) AS qualifying
FROM timestamps t
JOIN qualifying qu ON qu."date" > t.timestamp AND qu."date" <= t.timestamp + {window}
WHERE qu.driverId IN (
    SELECT p.driverId FROM qualifying p
    WHERE p."date" > t.timestamp - INTERVAL '1 year'
)
GROUP BY t.timestamp, qu.driverId
"""

_POSITION_SQL = """
SELECT t.timestamp, re.driverId, AVG(re.positionOrder) AS position
FROM timestamps t
JOIN results re ON re."date" > t.timestamp AND re."date" <= t.timestamp + {window}
WHERE re.driverId IN (
    SELECT p.driverId FROM results p
    WHERE p."date" > t.timestamp - INTERVAL '1 year'
)
GROUP BY t.timestamp, re.driverId
"""


def _read(path: Path, file: str) -> pd.DataFrame:
    fp = path / file
    if not fp.is_file():
        raise FileNotFoundError(
            f"F1 file {str(fp)!r} is missing. load_f1 needs the Ergast CSVs "
            f"{sorted({v[0] for v in F1_TABLES.values()})} in one directory."
        )
    try:
        # Only the literal \N is missing: names such as "NA" stay strings.
        return pd.read_csv(fp, na_values=["\\N"], keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"F1 file {str(fp)!r} is not a readable CSV: {exc}") from None


def _f1_tasks() -> dict[str, Task]:
    common = dict(entity_table="drivers", entity_col="driverId", val_timestamp=F1_VAL_TIMESTAMP,
                  test_timestamp=F1_TEST_TIMESTAMP, num_eval_timestamps=40)
    return {
        "driver-dnf": Task(
            name="driver-dnf", target_col="did_not_finish", task_type="binary", window=pd.Timedelta(days=30),
            label_sql=_DNF_SQL,
            description="1 if any race of the driver in the next 30 days does not end with status 'Finished'.",
            **common,
        ),
        "driver-top3": Task(
            name="driver-top3", target_col="qualifying", task_type="binary", window=pd.Timedelta(days=30),
            label_sql=_TOP3_SQL,
            description="1 if the driver qualifies in the top 3 of a race in the next 30 days.",
            **common,
        ),
        "driver-position": Task(
            name="driver-position", target_col="position", task_type="regression", window=pd.Timedelta(days=60),
            label_sql=_POSITION_SQL,
            description="Mean finishing position (positionOrder) of the driver over the next 60 days.",
            **common,
        ),
    }


def load_f1(path, *, last_season: int | None = 2023) -> tuple[Database, dict[str, Task]]:
    """Load RelBench's ``rel-f1`` database and its three driver tasks from the Ergast CSVs.

    Parameters
    ----------
    path : str or path-like
        Directory holding ``races.csv``, ``circuits.csv``, ``drivers.csv``, ``results.csv``,
        ``driver_standings.csv``, ``constructors.csv``, ``constructor_results.csv``,
        ``constructor_standings.csv`` and ``qualifying.csv``.
    last_season : int or None, default=2023
        Keep the seasons up to this year (RelBench's snapshot ends with 2023). ``None`` keeps
        every season with results.

    Returns
    -------
    db : Database
        Nine tables with their original primary-key values.
    tasks : dict of str to Task
        ``"driver-dnf"``, ``"driver-top3"`` and ``"driver-position"``.

    Examples
    --------
    >>> db, tasks = load_f1("../shared/data/f1")  # doctest: +SKIP
    >>> tasks["driver-dnf"].sizes(db)  # doctest: +SKIP
    {'train': 11411, 'val': 566, 'test': 702}
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a directory path (str or os.PathLike), got {type(path).__name__}.")
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"F1 directory {str(path)!r} does not exist (or is not a directory). Pass the folder that holds "
            "the Ergast CSVs (races.csv, results.csv, ...)."
        )
    if last_season is not None and not isinstance(last_season, (int, np.integer)):
        raise TypeError(f"last_season must be an int year or None, got {last_season!r}.")

    raw = {name: _read(path, spec[0]) for name, spec in F1_TABLES.items()}
    for name, (file, pkey, fkeys, drop) in F1_TABLES.items():
        needed = [pkey, *fkeys, *drop, *_NUMERIC.get(name, [])]
        missing = [c for c in needed if c not in raw[name].columns]
        if name == "races":
            missing += [c for c in ("date", "time") if c not in raw[name].columns]
        if missing:
            raise ValueError(f"F1 file {file!r} lacks column(s) {missing}; is it the Ergast schema?")
    tables = {name: raw[name].drop(columns=spec[3]) for name, spec in F1_TABLES.items()}
    for name, cols in _NUMERIC.items():
        df = tables[name]
        for c in cols:
            if not pd.api.types.is_numeric_dtype(df[c].dtype):
                df[c] = pd.to_numeric(df[c], errors="coerce")

    races = tables["races"]
    clock = races.pop("time").fillna("00:00:00").astype(str)
    races["date"] = pd.to_datetime(races["date"].astype(str) + " " + clock, format="%Y-%m-%d %H:%M:%S")

    # Announced races without results, and seasons after the snapshot, are not in the database.
    last_result = races.loc[races["raceId"].isin(tables["results"]["raceId"]), "date"].max()
    keep = races["date"] <= last_result
    if last_season is not None:
        keep &= races["year"] <= last_season
    dropped_races = races.loc[~keep, "raceId"]
    tables["races"] = races = races[keep].reset_index(drop=True)

    race_date = pd.Series(races["date"].to_numpy(), index=races["raceId"].to_numpy())
    for name in ("results", "standings", "constructor_results", "constructor_standings", "qualifying"):
        df = tables[name]
        df = df[~df["raceId"].isin(dropped_races)].reset_index(drop=True)
        df["date"] = df["raceId"].map(race_date)
        if name == "qualifying":
            df["date"] = df["date"] - pd.Timedelta(days=1)
        tables[name] = df

    if last_season is not None:
        # Drivers, constructors and circuits first seen after the snapshot did not exist in it.
        for ent, key, users in (
            ("drivers", "driverId", ("results", "standings", "qualifying")),
            ("constructors", "constructorId", ("results", "constructor_results", "constructor_standings",
                                               "qualifying")),
            ("circuits", "circuitId", ("races",)),
        ):
            seen_raw = pd.concat([raw[u][key] for u in users])
            seen_kept = pd.concat([tables[u][key] for u in users])
            future_only = np.setdiff1d(seen_raw.unique(), seen_kept.unique())
            if len(future_only):
                tables[ent] = tables[ent][~tables[ent][key].isin(future_only)].reset_index(drop=True)

    tables["drivers"]["dob"] = pd.to_datetime(tables["drivers"]["dob"], format="%Y-%m-%d")

    db = Database(
        tables,
        primary_keys={name: spec[1] for name, spec in F1_TABLES.items()},
        foreign_keys={name: spec[2] for name, spec in F1_TABLES.items() if spec[2]},
        time_columns={name: "date" for name in tables if "date" in tables[name].columns},
    )
    return db, _f1_tasks()
