"""rel-f1 from the raw Ergast CSVs: RelBench's row counts, cleaning rules, labels and input errors."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest

from skrel.data import Database
from skrel.datasets import load_f1
from skrel.datasets.f1 import F1_TABLES

EXPECTED_SIZES = {
    "driver-dnf": {"train": 11411, "val": 566, "test": 702},
    "driver-top3": {"train": 1353, "val": 588, "test": 726},
    "driver-position": {"train": 7453, "val": 499, "test": 760},
}


@pytest.fixture(scope="module")
def f1(f1_path):
    return load_f1(f1_path)


def test_task_sizes_match_relbench(f1):
    db, tasks = f1
    assert set(tasks) == set(EXPECTED_SIZES)
    for name, expected in EXPECTED_SIZES.items():
        assert tasks[name].sizes(db) == expected, name


def test_schema_and_cleaning(f1):
    db, _ = f1
    assert isinstance(db, Database)
    assert set(db.table_names) == set(F1_TABLES)
    for name, (_, pkey, fkeys, dropped) in F1_TABLES.items():
        t = db[name]
        assert t.pkey == pkey and t.fkeys == fkeys
        assert not set(dropped) & set(t.df.columns), name
        assert t.time_col == ("date" if "raceId" in t.df.columns else None), name
    # Original key values, not 0..n-1: driverId 1 is Lewis Hamilton, keys have gaps.
    drivers = db["drivers"].df.set_index("driverId")
    assert drivers.loc[1, "driverRef"] == "hamilton"
    assert drivers.index.max() > len(drivers)
    assert pd.api.types.is_datetime64_dtype(drivers["dob"])
    # \N is missing (drivers.code has many), numeric columns are numeric.
    assert drivers["code"].isna().sum() > 100 and not (drivers["code"] == "\\N").any()
    res = db["results"].df
    for col in ("number", "grid", "position", "points", "laps", "milliseconds", "fastestLap", "rank"):
        assert pd.api.types.is_numeric_dtype(res[col]), col
    assert res["position"].isna().any()
    # RelBench snapshot: seasons up to 2023, no race without results after the last result.
    races = db["races"].df
    assert races["year"].max() == 2023 and len(races) == 1101
    assert len(races) == races["raceId"].nunique()


def test_dates(f1):
    db, _ = f1
    races = db["races"].df.set_index("raceId")
    # 2009 Australian GP (raceId 1) started at 06:00 UTC; a race without a time starts at midnight.
    assert races.loc[1, "date"] == pd.Timestamp("2009-03-29 06:00:00")
    old = races[races["year"] == 1950]
    assert (old["date"] == old["date"].dt.normalize()).all()
    for name in ("results", "standings", "constructor_results", "constructor_standings"):
        df = db[name].df
        assert (df["date"].to_numpy() == races.loc[df["raceId"], "date"].to_numpy()).all(), name
    q = db["qualifying"].df
    assert (q["date"].to_numpy() == (races.loc[q["raceId"], "date"] - pd.Timedelta(days=1)).to_numpy()).all()


def test_last_season_none_keeps_later_seasons_but_not_future_races(f1_path):
    db, tasks = load_f1(f1_path, last_season=None)
    races = db["races"].df
    assert races["year"].max() > 2023
    # Announced races without results are dropped.
    assert races["raceId"].isin(db["results"].df["raceId"]).all()
    assert len(db["drivers"]) > len(load_f1(f1_path)[0]["drivers"])
    # The test windows end long before 2023: later seasons change no count.
    assert tasks["driver-top3"].sizes(db) == EXPECTED_SIZES["driver-top3"]


def _window(df, t, days):
    return df[(df["date"] > t) & (df["date"] <= t + pd.Timedelta(days=days))]


def test_labels_match_an_independent_pandas_computation(f1):
    db, tasks = f1
    res, qual = db.upto(tasks["driver-dnf"].test_timestamp)["results"].df, db["qualifying"].df
    t = tasks["driver-dnf"].cutoffs(db, "val")[3]
    lab = tasks["driver-dnf"].labels(db, "val")
    got = lab[lab["timestamp"] == t].set_index("driverId")["did_not_finish"].sort_index()
    w = _window(res, t, 30)
    want = (w.groupby("driverId")["statusId"].apply(lambda s: int((s != 1).any()))).sort_index()
    pd.testing.assert_series_equal(got, want, check_names=False, check_dtype=False)

    t = tasks["driver-top3"].cutoffs(db, "test")[0]
    lab = tasks["driver-top3"].labels(db, "test")
    got = lab[lab["timestamp"] == t].set_index("driverId")["qualifying"].sort_index()
    want = (_window(qual, t, 30).groupby("driverId")["position"].min() <= 3).astype(int).sort_index()
    pd.testing.assert_series_equal(got, want, check_names=False, check_dtype=False)

    t = tasks["driver-position"].cutoffs(db, "train")[5]
    lab = tasks["driver-position"].labels(db, "train")
    got = lab[lab["timestamp"] == t].set_index("driverId")["position"].sort_index()
    want = _window(res, t, 60).groupby("driverId")["positionOrder"].mean().sort_index()
    pd.testing.assert_series_equal(got, want, check_names=False, check_dtype=False)


def test_cutoffs_follow_relbench_rules(f1):
    db, tasks = f1
    task = tasks["driver-position"]
    val = task.cutoffs(db, "val")
    assert val[0] == pd.Timestamp("2005-01-01") and val[-1] <= pd.Timestamp("2010-01-01") - task.window
    test = task.cutoffs(db, "test")
    assert test[0] == pd.Timestamp("2010-01-01") and len(test) <= 40
    train = task.cutoffs(db, "train")
    assert train[0] == pd.Timestamp("2005-01-01") - task.window and train[-1] >= db.min_time


def _hash_dir(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_loader_mutates_nothing(f1_path, tmp_path):
    for name, (file, *_) in F1_TABLES.items():
        shutil.copy(f1_path / file, tmp_path / file)
    before = _hash_dir(tmp_path)
    db1, tasks1 = load_f1(tmp_path)
    fp = db1.fingerprint
    db1["results"].df.loc[:, "points"] = -1.0  # a caller editing its copy ...
    db2, tasks2 = load_f1(tmp_path)
    assert _hash_dir(tmp_path) == before  # ... never touches the files
    assert db2.fingerprint == fp  # ... nor a later load
    assert tasks1 == tasks2 and tasks1 is not tasks2


def test_missing_directory_and_file_raise_clear_errors(f1_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_f1(tmp_path / "nope")
    with pytest.raises(TypeError, match="path"):
        load_f1(None)
    for name, (file, *_) in F1_TABLES.items():
        if file != "results.csv":
            shutil.copy(f1_path / file, tmp_path / file)
    with pytest.raises(FileNotFoundError, match="results.csv"):
        load_f1(tmp_path)
    pd.read_csv(f1_path / "results.csv").drop(columns=["statusId"]).to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(ValueError, match=r"results.csv.*statusId"):
        load_f1(tmp_path)
