"""The Spark engine computes what the DuckDB engine computes: same names, same values.

Floats agree to 1e-9 relative (Spark's sums are not compensated, DuckDB's are), missing equals
missing, categories exactly. One shared local Spark session (``spark`` fixture); skipped without
pyspark or Java, except under CI (``SKREL_REQUIRE_SPARK=1``). Spark plans and schedules each
query in about a second, whatever the data, so every case uses a few cutoffs.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from dfs_cases import assert_frames_equal, make_market, market_rows
from sklearn.base import clone

from skrel.data import RelationalDataset
from skrel.features import DFSTransformer

pytestmark = pytest.mark.spark


def few_cutoffs(X: RelationalDataset, n: int = 2, seed: int = 0) -> RelationalDataset:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(np.unique(X.cutoffs), n, replace=False)
    return X[np.isin(X.cutoffs, chosen)]


def duckdb_and_spark(X, spark, **params):
    a = DFSTransformer(engine="duckdb", **params).fit(X)
    b = DFSTransformer(engine="spark", spark=spark, **params).fit(X)
    fa, fb = a.transform(X), b.transform(X)
    assert list(fa.columns) == list(fb.columns) == list(a.get_feature_names_out())
    assert_frames_equal(fa, fb)
    return fa, fb


def test_spark_agrees_market_depth2(spark):
    # string ids, an entity table with a time column, parents dated after children, ties for
    # mode, all-missing categories, missing times, repeated rows
    db = make_market()
    X = market_rows(db)
    a, _ = duckdb_and_spark(X, spark, max_depth=2, windows=[30])
    assert a["country"].isna().any() and a["NUM_UNIQUE(orders[buyer].channel)"].isna().any()
    assert (a["COUNT(orders[buyer])"] == 0).any()


def test_spark_agrees_synthetic(spark):
    from skrel.datasets import make_synthetic

    db, tasks = make_synthetic(n_entities=40, n_rows=2000)
    X = few_cutoffs(tasks["synthetic"].split(db, "train")[0], 2)
    a, _ = duckdb_and_spark(X, spark, max_depth=1, windows=[30])
    assert a.notna().to_numpy().mean() > 0.5


def test_spark_agrees_f1(spark, f1_path):
    from skrel.datasets import load_f1

    db, tasks = load_f1(f1_path)
    X = few_cutoffs(tasks["driver-top3"].split(db, "train")[0], 2, seed=1)
    a, _ = duckdb_and_spark(X, spark, max_depth=2, windows=[365])
    assert a["COUNT(results)"].gt(0).all()


def test_spark_agrees_flights(spark):
    import warnings

    from skrel.data import DanglingForeignKeyWarning
    from skrel.datasets import load_flights

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DanglingForeignKeyWarning)
        db, tasks = load_flights(n_planes=60, random_state=1)
    X = few_cutoffs(tasks["plane-cancel"].split(db, "train")[0], 2)
    a, _ = duckdb_and_spark(X, spark, max_depth=1, windows=[7])
    assert a.filter(like="COUNT(flights").gt(0).any().any()


def test_spark_blocks_and_queries_match_one_query(spark):
    # the memory plan splits features into queries and rows into blocks: same frame
    from skrel.features._duckdb import query_groups
    from skrel.features._spark import compute_spark

    db = make_market()
    X = market_rows(db)
    t = DFSTransformer(max_depth=1, windows=[30]).fit(X)
    args = (db, t.schema_, t.features_, "users", X.entity_ids, X.cutoffs)
    whole = t.transform(X)
    groups = query_groups(t.features_)
    queries = [sum(groups[: len(groups) // 2], []), sum(groups[len(groups) // 2:], [])]
    split = compute_spark(*args, spark=spark, queries=queries, block_rows=9, dtype="float32")
    whole.columns = split.columns
    assert_frames_equal(whole.astype({c: "float32" for c in whole.columns if whole[c].dtype != object}), split)
    assert not [v for v in spark.catalog.listTables() if v.name.startswith("skrel_")]  # views dropped


def test_spark_session_is_kept_by_clone_and_dropped_by_pickle(spark):
    t = DFSTransformer(engine="spark", spark=spark, max_depth=1)
    assert clone(t).spark is spark
    restored = pickle.loads(pickle.dumps(t))
    assert restored.spark is None and restored.get_params()["max_depth"] == 1
    with pytest.raises(TypeError, match="SparkSession"):
        DFSTransformer(engine="spark", spark="local[2]").fit(market_rows(make_market()))


def test_spark_sql_is_spark_dialect():
    # compiling needs neither pyspark nor Java
    from skrel.features._spark import compute_spark

    db = make_market()
    X = market_rows(db)
    t = DFSTransformer(max_depth=2, windows=[30]).fit(X)
    sql = compute_spark(db, t.schema_, t.features_, "users", X.entity_ids, X.cutoffs, return_sql=True)
    assert "EXCLUDE" not in sql and "//" not in sql and "::" not in sql and "fsum" not in sql
    assert "mode(" in sql and "max_by(" in sql and "named_struct(" in sql


def test_estimator_passes_the_session_through_clone(spark):
    from skrel.estimators.dfs import DFSEstimator

    est = DFSEstimator(engine="spark", spark=spark, max_depth=1)
    assert clone(est).spark is spark and est._make_transformer().spark is spark
    assert pickle.loads(pickle.dumps(est)).spark is None
