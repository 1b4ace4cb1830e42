"""The database cache: a byte-bounded LRU shared with cut databases, never pickled, thread-safe,
and cleared when a table is changed in place (tables are read-only)."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from conftest import make_shop, shop_task
from skrel.data import Database, get_cache_bytes, set_cache_bytes
from skrel.data._cache import CacheStore, estimate_nbytes

KB = 1024


def small_db(**kw) -> Database:
    users = pd.DataFrame({"uid": [1, 2, 3], "name": ["a", "b", "c"]})
    orders = pd.DataFrame({"oid": [1, 2, 3, 4], "uid": [1, 2, 2, 3], "qty": [1.0, 2.0, 3.0, 4.0],
                           "at": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"])})
    return Database({"users": users, "orders": orders}, primary_keys={"users": "uid", "orders": "oid"},
                    foreign_keys={"orders": {"uid": "users"}}, time_columns={"orders": "at"}, **kw)


def block(k: int) -> np.ndarray:
    """An entry of exactly k KiB."""
    return np.zeros(k * KB, dtype=np.uint8)


# ---------------------------------------------------------------------- sizes
@dataclasses.dataclass
class Holder:
    a: np.ndarray
    b: tuple


class Plain:
    def __init__(self):
        self.x = np.zeros(1000)
        self.y = {"z": np.zeros(500, dtype=np.float32)}


class Declared:
    cache_nbytes = 12345


class DeclaredMethod:
    def cache_nbytes(self):
        return 777


def test_estimate_nbytes():
    assert estimate_nbytes(np.zeros((10, 10))) == 800
    df = pd.DataFrame({"a": np.zeros(100), "b": np.arange(100)})
    assert estimate_nbytes(df) == int(df.memory_usage(deep=False).sum())
    assert estimate_nbytes((np.zeros(100), [np.zeros(50)])) >= 1200
    assert estimate_nbytes({"k": np.zeros(100)}) >= 800
    assert estimate_nbytes(Holder(np.zeros(100), (np.zeros(100),))) >= 1600
    assert estimate_nbytes(Plain()) >= 8000 + 2000
    assert estimate_nbytes(Declared()) == 12345
    assert estimate_nbytes(DeclaredMethod()) == 777
    shared = np.zeros(1000)
    assert estimate_nbytes((shared, shared)) < 2 * 8000  # one array referenced twice counts once
    # a long list is measured on its first items and extrapolated
    assert 5000 * 8000 <= estimate_nbytes([np.zeros(1000) for _ in range(5000)]) <= 5000 * 8200
    # cycles and deep nesting terminate
    cyc = []
    cyc.append(cyc)
    deep = [np.zeros(10)]
    for _ in range(100):
        deep = [deep]
    assert estimate_nbytes(cyc) > 0 and estimate_nbytes(deep) > 0


def test_sizes_of_a_dataset_count_its_database_once():
    # sys.getsizeof (read by dask.sizeof) includes the database; the cache's estimate does not count it twice
    import sys

    from skrel.data import RelationalDataset

    db = make_shop()
    ids = db["users"].df[db["users"].pkey].to_numpy()
    X = RelationalDataset(db, "users", ids, ["2021-01-01"] * len(ids))
    tables = db.cache_nbytes
    assert sys.getsizeof(db) >= tables
    assert sys.getsizeof(X) >= tables + X.entity_ids.nbytes + X.cutoffs.nbytes
    assert tables <= estimate_nbytes(X) < tables + 2_000


def test_estimate_nbytes_torch_tensor():
    torch = pytest.importorskip("torch")
    assert estimate_nbytes(torch.zeros(10, 10, dtype=torch.float32)) == 400
    assert estimate_nbytes({"x": torch.zeros(100, dtype=torch.int64)}) >= 800


def test_cut_database_counts_its_tables_not_the_store():
    db = make_shop()
    cut = db.upto("2020-06-01")
    size = estimate_nbytes(cut)
    # the cut shares the tables without a time column (users, items) with its parent: not counted
    assert size == cut.cache_nbytes == int(cut["orders"].df.memory_usage(deep=False).sum())
    assert db.cache.nbytes >= size  # the cut is held in its parent's cache
    assert pickle.loads(pickle.dumps(cut)).cache_nbytes == sum(estimate_nbytes(t.df) for t in cut.tables.values())


# ---------------------------------------------------------------------- bound and LRU order
def test_bound_is_respected_and_lru_order():
    db = small_db(cache_bytes=100 * KB)
    c = db.cache
    assert c.max_bytes == 100 * KB
    for k in range(5):
        c[k] = block(30)  # 30 KiB each: at most three fit
        assert c.nbytes <= 100 * KB
    assert list(c) == [2, 3, 4] and c.evictions == 2
    assert 2 in c  # touching 2 makes 3 the least recently used
    c[5] = block(30)
    assert list(c) == [4, 2, 5]
    assert c.get(3) is None and 3 not in c
    c.max_bytes = 40 * KB  # shrinking evicts at once
    assert list(c) == [5] and c.nbytes <= 40 * KB
    with pytest.raises(ValueError, match="bytes >= 0"):
        c.max_bytes = -1


def test_replacing_an_entry_updates_its_size():
    c = small_db(cache_bytes=100 * KB).cache
    c["a"] = block(60)
    c["a"] = block(10)
    assert 10 * KB <= c.nbytes < 12 * KB
    del c["a"]
    assert c.nbytes == 0 and "a" not in c
    with pytest.raises(KeyError):
        del c["a"]


def test_oversized_entry_is_not_stored_but_reads_back():
    c = small_db(cache_bytes=50 * KB).cache
    c["small"] = block(10)
    value = block(80)
    c["big"] = value
    assert c["big"] is value  # the usual "store, then return cache[key]" still works
    assert c.nbytes <= 50 * KB and "small" in c and list(c) == ["small"]


def test_zero_bound_disables_caching():
    c = small_db(cache_bytes=0).cache
    c["a"] = 1
    assert list(c) == [] and c.nbytes == 0


def test_hits_misses_clear():
    db = small_db()
    c = db.cache
    assert c.get("a") is None and c.misses == 1
    c["a"] = block(1)
    assert "a" in c and c["a"].nbytes == KB
    assert c.hits == 1  # `in` then `[]` counts one hit
    assert c.get("a") is not None and c.hits == 2
    assert c.stats() == {"hits": 2, "misses": 1, "evictions": 0, "nbytes": c.nbytes, "max_bytes": c.max_bytes,
                         "entries": 1}
    c.clear()
    assert len(c) == 0 and c.nbytes == 0 and "a" not in c
    c["b"] = 1
    db.upto("2020-01-02").cache["c"] = 1
    db.clear_cache()
    assert len(db.cache) == 0 and db.cache.nbytes == 0
    assert "DatabaseCache(entries=0" in repr(c)


def test_in_then_getitem_survives_an_eviction_in_between():
    c = small_db(cache_bytes=100 * KB).cache
    value = block(30)
    c["k"] = value
    c["other"] = block(1)
    assert "k" in c
    c.max_bytes = 0  # another thread could evict "k" here
    assert c["k"] is value
    with pytest.raises(KeyError):
        c["other"]


def test_eviction_never_returns_wrong_data():
    rng = np.random.default_rng(0)
    c = small_db(cache_bytes=64 * KB).cache
    model = {}
    for _ in range(3000):
        k = int(rng.integers(0, 40))
        if rng.random() < 0.4:
            v = np.full(int(rng.integers(1, 20)) * KB, k + 1000 * int(rng.integers(0, 5)), dtype=np.int32)
            c[k] = v
            model[k] = v
        else:
            got = c.get(k)
            if got is not None:
                assert got is model[k]
        assert c.nbytes <= 64 * KB


def test_cache_bound_defaults_and_setter():
    assert 64 << 20 <= get_cache_bytes() <= 1 << 30
    previous = set_cache_bytes(123 * KB)
    try:
        assert small_db().cache.max_bytes == 123 * KB
        assert small_db(cache_bytes=5 * KB).cache.max_bytes == 5 * KB
    finally:
        set_cache_bytes(previous)
    assert small_db().cache.max_bytes == previous
    with pytest.raises(ValueError, match="bytes >= 0"):
        set_cache_bytes(-5)
    with pytest.raises(ValueError, match="bytes >= 0"):
        small_db(cache_bytes="1GB")
    assert set_cache_bytes(None) == previous and get_cache_bytes() == previous


# ---------------------------------------------------------------------- cut databases
def test_cut_databases_share_one_bounded_store():
    db = small_db(cache_bytes=100 * KB)
    cut = db.upto("2020-01-02")
    assert db.upto("2020-01-02") is cut
    cut.cache["x"] = block(30)
    db.cache["x"] = block(40)
    assert cut.cache["x"].nbytes == 30 * KB and db.cache["x"].nbytes == 40 * KB  # separate keys
    assert db.cache.nbytes == cut.cache.nbytes >= 70 * KB  # one store, one bound
    assert list(cut.cache) == ["x"]
    db.cache["y"] = block(50)  # evicts the least recently used: the cut, then the cut's entry
    assert db.cache.nbytes <= 100 * KB and "x" not in cut.cache
    # a cut rebuilt after its eviction is equal and finds the entries cached under it
    again = db.upto("2020-01-02")
    again.cache["z"] = 1
    assert db.upto("2020-01-02").cache["z"] == 1
    assert again.fingerprint == cut.fingerprint


# ---------------------------------------------------------------------- pickling and threads
def test_pickling_drops_the_cache():
    db = small_db(cache_bytes=300 * KB)
    db.cache["x"] = 1
    db.upto("2020-01-02")
    back = pickle.loads(pickle.dumps(db))
    assert len(back.cache) == 0 and back.cache.nbytes == 0 and back.cache.max_bytes == 300 * KB
    assert dict(db.cache.items())["x"] == 1
    back.cache["y"] = 2
    assert "y" not in db.cache  # its own store
    deep = copy.deepcopy(db)
    assert len(deep.cache) == 0
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(db.cache)
    # the unpickled tables are read-only again
    with pytest.raises(ValueError, match="read-only"):
        back["orders"].df.loc[0, "qty"] = 0.0


def test_threads_share_the_cache_safely():
    db = small_db(cache_bytes=200 * KB)
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(300):
            k = int(rng.integers(0, 30))
            cache = db.cache
            if k in cache:
                v = cache[k]
            else:
                v = np.full(int(rng.integers(1, 10)) * KB // 8, k, dtype=np.int64)
                cache[k] = v
                v = cache[k]
            if not (v == k).all():
                errors.append(k)
        return True

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(8)))
    assert not errors and db.cache.nbytes <= 200 * KB
    assert isinstance(db._cache_store._lock, type(threading.RLock()))


def test_store_without_database():
    s = CacheStore(10 * KB)
    s.store("a", block(4))
    s.store("b", block(4))
    s.store("c", block(4))
    assert s.keys() == ["b", "c"] and s.evictions == 1 and s.stats()["entries"] == 2


# ---------------------------------------------------------------------- stale caches
def test_writing_into_a_table_raises():
    db = small_db()
    df = db["orders"].df
    for write in (
        lambda: df.loc[0, "qty"].__class__ and df.loc.__setitem__((0, "qty"), 9.0),
        lambda: df.iloc.__setitem__((0, 1), 3),
        lambda: db["users"].df.loc.__setitem__((0, "name"), "z"),
        lambda: df["qty"].to_numpy().__setitem__(0, 9.0),
        lambda: df.loc.__setitem__((df["qty"] > 2, "qty"), 0.0),
    ):
        with pytest.raises(ValueError, match="read-only"):
            write()
    assert df["qty"].tolist() == [1.0, 2.0, 3.0, 4.0] and db["users"].df["name"].tolist() == ["a", "b", "c"]
    # what is derived from a table is the caller's to edit
    sub = df[df["qty"] > 1]
    sub.loc[sub.index[0], "qty"] = 0.0
    mine = df.copy()
    mine.loc[0, "qty"] = 0.0
    assert df["qty"].iloc[0] == 1.0


@pytest.mark.parametrize("edit", ["assign_column", "new_column", "drop_inplace", "new_frame", "rename_columns",
                                  "time_col"])
def test_replacing_table_parts_clears_the_cache(edit):
    db = small_db()
    fp = db.fingerprint
    db.cache["features"] = "computed from the old rows"
    cut = db.upto("2020-01-03")
    t = db["orders"]
    if edit == "assign_column":
        t.df["qty"] = [10.0, 20.0, 30.0, 40.0]
    elif edit == "new_column":
        t.df["extra"] = 1
    elif edit == "drop_inplace":
        t.df.drop(index=[3], inplace=True)
    elif edit == "new_frame":
        mine = t.df.assign(qty=0.0)
        t.df = mine
    elif edit == "rename_columns":
        t.df.columns = ["oid", "uid", "quantity", "at"]
    elif edit == "time_col":
        t.time_col = None
    assert "features" not in db.cache
    assert db.fingerprint != fp
    assert db.upto("2020-01-03") is not cut
    # the changed table is read-only again, and a new frame was copied (the caller's stays writeable)
    if edit != "rename_columns":
        with pytest.raises(ValueError, match="read-only"):
            db["orders"].df.loc[db["orders"].df.index[0], "uid"] = 1
    if edit == "new_frame":
        assert db["orders"].df is not mine
        mine.loc[0, "qty"] = 5.0
        assert db["orders"].df["qty"].iloc[0] == 0.0
    # the cut taken before is unchanged
    assert cut["orders"].df["qty"].tolist() == [1.0, 2.0, 3.0]


def test_column_assigned_from_a_caller_array_leaves_it_writeable():
    db = small_db()
    values = np.array([5.0, 6.0, 7.0, 8.0])
    db["orders"].df["qty"] = values
    db.cache.get("anything")  # detects the change, freezes a copy
    values[0] = -1.0  # the caller's array stays theirs
    assert db["orders"].df["qty"].iloc[0] == 5.0


def test_editing_a_cut_database_clears_the_shared_store():
    db = small_db()
    cut = db.upto("2020-01-03")
    cut.cache["k"] = 1
    db.cache["k"] = 2
    cut["orders"].df["qty"] = 0.0
    assert "k" not in cut.cache and "k" not in db.cache
    assert db.upto("2020-01-03") is not cut  # the parent cuts afresh
    assert db.upto("2020-01-03")["orders"].df["qty"].tolist() == [1.0, 2.0, 3.0]


def test_labels_follow_an_in_place_edit():
    db = make_shop()
    task = shop_task("regression")
    before = task.labels(db, "train")["spend"].sum()
    db["orders"].df["qty"] = db["orders"].df["qty"] * 2
    assert task.labels(db, "train")["spend"].sum() == pytest.approx(2 * before)


def test_dfs_features_follow_an_in_place_edit():
    features = pytest.importorskip("skrel.features")
    db = make_shop()
    X, _ = shop_task().split(db, "train")
    dfs = features.DFSTransformer(max_depth=1, agg_primitives=["sum"]).fit(X)
    before = dfs.transform(X)
    db["orders"].df["qty"] = db["orders"].df["qty"] * 2  # X.db is the cut database: edit it
    X.db["orders"].df["qty"] = X.db["orders"].df["qty"] * 2
    after = dfs.transform(X)
    col = "SUM(orders.qty)"
    assert col in before.columns
    np.testing.assert_allclose(after[col].fillna(0), 2 * before[col].fillna(0))
    fresh = make_shop()
    fresh_orders = fresh["orders"].df.assign(qty=fresh["orders"].df["qty"] * 2)
    rebuilt = Database({n: (fresh_orders if n == "orders" else fresh[n].df) for n in fresh},
                       primary_keys={n: fresh[n].pkey for n in fresh},
                       foreign_keys={n: fresh[n].fkeys for n in fresh if fresh[n].fkeys},
                       time_columns={"orders": "at"})
    X2, _ = shop_task().split(rebuilt, "train")
    pd.testing.assert_frame_equal(dfs.transform(X2), after)


def test_families_give_the_same_results_without_a_cache():
    """The families' cache patterns (`in` then `[]`, store then `[]`) hold when nothing can be stored."""
    features = pytest.importorskip("skrel.features")
    results = []
    for bound in (None, 0):
        previous = set_cache_bytes(bound)
        try:
            db = make_shop()
            X, _ = shop_task().split(db, "train")
            dfs = features.DFSTransformer(max_depth=1, agg_primitives=["sum", "count"]).fit(X)
            results.append((dfs.transform(X), dfs.transform(X)))
            if bound == 0:
                assert len(db.cache) == 0 and db.cache.nbytes == 0
        finally:
            set_cache_bytes(previous)
    pd.testing.assert_frame_equal(results[0][0], results[1][0])
    pd.testing.assert_frame_equal(results[1][0], results[1][1])


def test_graph_cache_pattern_without_a_cache():
    hetero = pytest.importorskip("skrel.graph.hetero")
    db = make_shop(n_orders=200)
    db.cache.max_bytes = 0
    a, b = hetero.build_graph(db), hetero.build_graph(db)
    assert a.fingerprint == b.fingerprint and a.edge_types == b.edge_types and db.cache.nbytes == 0
    for et in a.edge_types:
        np.testing.assert_array_equal(a.adj[et][1], b.adj[et][1])
    db.cache.max_bytes = 1 << 30
    assert hetero.build_graph(db) is hetero.build_graph(db)
