"""The Spark engine computes what the DuckDB engine computes: same names, same values.

Floats agree to 1e-9 relative (Spark's sums are not compensated, DuckDB's are), missing equals
missing, categories exactly. One shared local Spark session (``spark`` fixture); skipped without
pyspark or Java, except under CI (``SKREL_REQUIRE_SPARK=1``). Spark plans and schedules each
query in about a second, whatever the data, so every case uses a few cutoffs.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import make_shop, with_changes_after
from dfs_cases import assert_frames_equal, make_market, market_rows, write_parquet
from sklearn.base import clone

from skrel.data import Database, RelationalDataset
from skrel.data.files import FileTable
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
    from skrel.features._sql import query_groups
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


# ---------------------------------------------------------------- tables that stay in Parquet files
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
MICROS = {"coerce_timestamps": "us", "allow_truncated_timestamps": True}


def market_with_extras() -> Database:
    """The market plus a duration (``orders.wait``, some missing) and a pandas categorical
    (``reviews.mood``), the two column types a file view converts besides times."""
    mem = make_market()
    frames = {n: t.df.copy() for n, t in mem.tables.items()}
    rng = np.random.default_rng(3)
    wait = pd.Series(pd.to_timedelta(rng.integers(0, 10**6, len(frames["orders"])), unit="s"))
    frames["orders"]["wait"] = wait.mask(rng.random(len(wait)) < 0.1)
    frames["reviews"]["mood"] = frames["reviews"]["mood"].astype("category")
    return Database(frames, primary_keys={n: t.pkey for n, t in mem.tables.items()},
                    foreign_keys={n: t.fkeys for n, t in mem.tables.items() if t.fkeys},
                    time_columns={n: t.time_col for n, t in mem.tables.items() if t.time_col})


def test_spark_reads_file_tables_where_they_lie(spark, tmp_path):
    # every table in a file (memory_rows=0): nanosecond times (reviews, users, promos), microsecond
    # ones (orders), a table without a time column (products: __pos from the file's row index),
    # strings, a pandas categorical, a duration; Spark on the files = DuckDB on the frames
    mem = market_with_extras()
    db = Database.from_parquet(write_parquet(mem, tmp_path / "m", options={"orders": MICROS}), memory_rows=0)
    assert all(isinstance(db[n], FileTable) for n in db)
    assert db["orders"].arrow_type("at").unit == "us" and db["reviews"].arrow_type("when").unit == "ns"
    Xm = market_rows(mem)
    X = RelationalDataset(db, "users", Xm.entity_ids, Xm.cutoffs)
    a = DFSTransformer(max_depth=2, windows=[30]).fit(Xm).transform(Xm)
    b = DFSTransformer(engine="spark", spark=spark, max_depth=2, windows=[30]).fit(X).transform(X)
    assert_frames_equal(a, b)
    assert {"MODE(orders[buyer].reviews.mood)", "MEAN(orders[buyer].wait)", "MODE(orders[buyer].products.category)"} <= set(a)
    assert a["MEAN(orders[buyer].wait)"].notna().any()
    assert not any(db[n].loaded for n in db)  # Spark read the files; no row went through the driver
    assert spark.conf.get(NANOS_AS_LONG, None) is None  # set for the call only


def test_spark_file_tables_cut_and_point_in_time(spark, tmp_path):
    # the files hold rows after t that differ from the in-memory database's (changed and new
    # orders): a cut at t hides them even at a cutoff after t, and without a cut a cutoff at or
    # before t never sees them
    mem = make_shop()
    t = pd.Timestamp("2021-01-01")
    changed = Database.from_parquet(write_parquet(with_changes_after(mem, t, np.random.default_rng(0)),
                                                  tmp_path / "changed"), memory_rows=0)
    ids = np.tile(np.arange(60), 2)

    def rows(db, cutoffs):
        return RelationalDataset(db, "users", ids, np.repeat(np.array(cutoffs, dtype="datetime64[ns]"), 60))

    def both(mem_db, file_db, cutoffs):
        a = DFSTransformer(max_depth=1, windows=[90]).fit(rows(mem_db, cutoffs)).transform(rows(mem_db, cutoffs))
        b = DFSTransformer(engine="spark", spark=spark, max_depth=1, windows=[90]).fit(
            rows(file_db, cutoffs)).transform(rows(file_db, cutoffs))
        assert_frames_equal(a, b)
        return a

    cut = changed.upto(t)
    after = [t - pd.Timedelta(days=100), t + pd.Timedelta(days=200)]
    a = both(mem.upto(t), cut, after)
    assert not cut["orders"].loaded
    visible = len(mem.upto(t)["orders"]) + (mem["orders"].df["at"] <= after[0]).sum()  # per cutoff
    assert a["COUNT(orders)"].sum() == visible
    both(mem, changed, [t - pd.Timedelta(days=100), t])
    assert not changed["orders"].loaded


def test_spark_file_positions_and_unreadable_files(spark, tmp_path):
    from skrel.features._sql.spark import file_frame

    db = Database.from_parquet(write_parquet(make_market(), tmp_path / "m"), memory_rows=0)
    X = market_rows(db)
    t = DFSTransformer(max_depth=1).fit(X)
    cols = ["pid", "category"]
    names = {c: f"u{j}" for j, c in enumerate(cols)}
    got = file_frame(spark, db["products"], t.schema_, "products", cols, names).toPandas()
    products = make_market()["products"].df
    np.testing.assert_array_equal(got["__pos"], np.arange(len(products)))  # the row's position in the file
    np.testing.assert_array_equal(got["u1"], products["category"])
    # a filesystem only fsspec knows: Spark cannot read it, and says which table
    import fsspec

    fs = fsspec.filesystem("memory")
    root = "memory://skrel-spark-files"
    for name, tab in make_market().tables.items():
        with fs.open(f"{root}/{name}.parquet", "wb") as fh:
            tab.df.to_parquet(fh, index=False)
    try:
        schema = {"tables": {n: {"primary_key": tab.pkey, **({"time_column": tab.time_col} if tab.time_col else {}),
                                 **({"foreign_keys": tab.fkeys} if tab.fkeys else {})}
                             for n, tab in make_market().tables.items()}}
        mdb = Database.from_parquet(root, schema, memory_rows=0)
        Xm = RelationalDataset(mdb, "users", X.entity_ids, X.cutoffs)
        with pytest.raises(ValueError, match=r"engine='spark' cannot read table '\w+' from 'memory://skrel-spark"):
            DFSTransformer(engine="spark", spark=spark, max_depth=1).fit(Xm).transform(Xm)
        assert spark.conf.get(NANOS_AS_LONG, None) is None
    finally:
        fs.rm(root, recursive=True)
