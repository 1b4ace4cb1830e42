"""The DuckDB engine computes what featuretools computes: same names, same values.

Missing equals missing, floats agree to 1e-9 relative, categories exactly. featuretools is slow
(one pass per distinct cutoff), so every case here uses two or three distinct cutoffs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_shop
from dfs_cases import assert_frames_equal, make_market, market_rows

from skrel.data import RelationalDataset
from skrel.features import DFSTransformer

pytest.importorskip("featuretools")


def both(X, **params):
    frames = []
    for engine in ("duckdb", "featuretools"):
        t = DFSTransformer(engine=engine, **params).fit(X)
        frames.append(t.transform(X))
    assert list(frames[0].columns) == [f.name for f in t.features_]
    return frames


def few_cutoffs(X: RelationalDataset, n: int = 2, seed: int = 0) -> RelationalDataset:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(np.unique(X.cutoffs), n, replace=False)
    return X[np.isin(X.cutoffs, chosen)]


@pytest.mark.parametrize("depth", [1, 2])
def test_engines_agree_market_users(depth):
    db = make_market()
    X = market_rows(db)
    a, b = both(X, max_depth=depth, windows=[30])
    assert_frames_equal(a, b)
    # the corner cases are exercised: users not yet joined, mode and num_unique of all-missing values
    assert a["country"].isna().any()
    assert (a["COUNT(orders[buyer])"] == 0).any() and a["NUM_UNIQUE(orders[buyer].channel)"].isna().any()


def test_engines_agree_market_orders_depth2():
    # forward features through two relationships to the same table, parents dated after children
    db = make_market()
    orders = db["orders"].df.dropna(subset=["at"]).iloc[:15]
    ids = np.concatenate([orders["order_id"].to_numpy()] * 2)
    cuts = np.concatenate([orders["at"].to_numpy(), np.full(15, np.datetime64("2021-09-01"), dtype="datetime64[ns]")])
    X = RelationalDataset(db, "orders", ids, cuts)
    X = X[(X.cutoffs >= np.datetime64("2021-09-01")) | (np.arange(len(X)) < 4)]
    a, b = both(X, max_depth=2, windows=[10])
    assert_frames_equal(a, b)


@pytest.mark.parametrize("depth", [1, 2])
def test_engines_agree_shop(depth, shop_binary):
    db, task = shop_binary
    X = few_cutoffs(task.split(db, "train")[0], 3)
    a, b = both(X, max_depth=depth, windows=[60, 365])
    assert_frames_equal(a, b)


@pytest.mark.parametrize("depth", [1, 2])
def test_engines_agree_synthetic(depth):
    from skrel.datasets.synthetic import make_synthetic

    db, tasks = make_synthetic(n_entities=40, n_rows=2000)
    X = few_cutoffs(tasks["synthetic"].split(db, "train")[0], 2)
    a, b = both(X, max_depth=depth, windows=[30])
    assert_frames_equal(a, b)
    assert a.notna().to_numpy().mean() > 0.5


@pytest.mark.parametrize("depth", [1, 2])
def test_engines_agree_f1(depth, f1_path):
    from skrel.datasets import load_f1

    db, tasks = load_f1(f1_path)
    X = few_cutoffs(tasks["driver-top3"].split(db, "train")[0], 2, seed=1)
    a, b = both(X, max_depth=depth, windows=[365])
    assert_frames_equal(a, b)
    assert a["COUNT(results)"].gt(0).all()


def test_engines_agree_int_ids_with_gaps_and_repeated_rows():
    db = make_shop(n_users=8, n_orders=200)
    ids = np.array([3, 3, 5, 0, 3])
    cuts = pd.to_datetime(["2020-06-01", "2020-06-01", "2020-06-01", "2021-01-01", "2021-01-01"])
    X = RelationalDataset(db, "users", ids, cuts)
    a, b = both(X, max_depth=2)
    assert_frames_equal(a, b)
    assert a.iloc[0].equals(a.iloc[1])


def test_parent_aggregates_once_per_parent_and_cutoff():
    # many orders share a product (static) and a promo (dated, sometimes after the order, often
    # missing): the parent's aggregates are grouped once per distinct (foreign key, cutoff) and
    # joined back, with the values featuretools gives per row
    from skrel.features._definitions import Direct
    from skrel.features._duckdb import compute_duckdb
    from skrel.features._sql.compiler import _has_aggregation

    db = make_market()
    orders = db["orders"].df.dropna(subset=["at"])
    cuts = np.array(["2021-05-01", "2021-09-01", "2022-01-01"], dtype="datetime64[ns]")
    ids = np.tile(orders["order_id"].to_numpy(), 3)
    X = RelationalDataset(db, "orders", ids, np.repeat(cuts, len(orders)))
    X = X[X.cutoffs >= np.asarray(orders["at"].to_numpy().tolist() * 3, dtype="datetime64[ns]")]
    a, b = both(X, max_depth=2, windows=[30])
    assert_frames_equal(a, b)
    t = DFSTransformer(max_depth=2, windows=[30]).fit(X)
    parents = {f.rel for f in t.features_ if isinstance(f, Direct) and _has_aggregation(f.base)}
    assert {r.parent for r in parents} >= {"products", "promos"}
    assert a["products.COUNT(orders)"].nunique() > 1 and (a["promos.COUNT(orders)"] == 0).any()
    sql = compute_duckdb(db, t.schema_, t.features_, "orders", X.entity_ids, X.cutoffs, return_sql=True)
    assert sql.count("SELECT DISTINCT") == len(parents)
