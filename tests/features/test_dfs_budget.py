"""Memory planning and the feature budget: same values however the work is split; pruning reported;
only kept features computed afterwards."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from dfs_cases import assert_frames_equal, make_market, market_rows

from skrel.features import DFSTransformer
from skrel.features import dfs as dfs_module
from skrel.features._definitions import build_features, infer_schema
from skrel.features._duckdb import compute_duckdb
from skrel.features._sql import query_groups
from skrel.features._plan import plan_queries
from skrel.utils import parse_memory


def test_queries_and_row_blocks_give_the_same_values():
    db = make_market()
    X = market_rows(db)
    schema = infer_schema(db, "users")
    feats = build_features(schema, "users", 2, None, [30])
    args = (db, schema, feats, "users", X.entity_ids, X.cutoffs)
    whole = compute_duckdb(*args)
    groups = query_groups(feats)
    queries = [sum(groups[i:i + 3], []) for i in range(0, len(groups), 3)][::-1]  # out of order on purpose
    split = compute_duckdb(*args, queries=queries, block_rows=7)
    assert_frames_equal(whole, split)
    f32 = compute_duckdb(*args, queries=queries, block_rows=5, dtype="float32")
    num = [c for c in whole.columns if whole[c].dtype != object]
    assert (f32[num].dtypes == np.float32).all()
    np.testing.assert_allclose(f32[num].to_numpy(float), whole[num].to_numpy(float), rtol=1e-6)


def test_plan_sizes_queries_and_blocks_to_the_budget():
    groups = [[object()] * 10 for _ in range(30)]
    queries, block = plan_queries(groups, n_rows=1_000_000, budget=2**30)
    assert sum(len(q) for q in queries) == 300 and all(len(q) <= 256 for q in queries)
    assert block is None or block >= 1000
    queries, block = plan_queries(groups, n_rows=10_000_000, budget=64 * 2**20)
    assert all(len(q) == 10 for q in queries) and block is not None and block < 10_000_000
    queries, _ = plan_queries([[object()] * 600], n_rows=1000, budget=2**30)
    assert [len(q) for q in queries] == [256, 256, 88]
    assert parse_memory("2GB") == 2 * 10**9 and parse_memory("512MiB") == 512 * 2**20 and parse_memory(10) == 10
    with pytest.raises(ValueError, match="memory_limit"):
        parse_memory("lots")


def test_max_features_prunes_reports_and_computes_only_kept(monkeypatch):
    db = make_market()
    X = market_rows(db)
    y = (np.arange(len(X)) % 2).astype(int)
    full = DFSTransformer(max_depth=2, windows=[30]).fit(X)
    t = DFSTransformer(max_depth=2, windows=[30], max_features=15, random_state=0).fit(X, y)
    assert len(t.features_) == 15 and t.n_definitions_ == len(full.features_)
    summary = t.pruning_summary_
    assert list(summary.columns) == ["feature", "reason"]
    assert len(summary) == len(full.features_) - 15
    assert set(summary.reason) <= {"constant", "duplicate", "near-duplicate", "importance", "column screened out at depth 1"}
    assert not set(summary.feature) & set(t.feature_names_out_)
    # the kept features have the values the full definitions give
    F = t.transform(X)
    assert_frames_equal(F, full.transform(X)[t.feature_names_out_])
    # scoring other rows compiles only the kept features
    calls = []
    engine = dfs_module.ENGINES["duckdb"]
    monkeypatch.setitem(dfs_module.ENGINES, "duckdb", lambda *a, **k: calls.append(len(a[2])) or engine(*a, **k))
    t.transform(X[: len(X) // 2])
    assert calls == [15]


def test_same_random_state_same_pruning():
    db = make_market()
    X = market_rows(db)
    y = (np.arange(len(X)) % 3 == 0).astype(int)
    a = DFSTransformer(max_depth=2, max_features=10, random_state=3).fit(X, y)
    b = DFSTransformer(max_depth=2, max_features=10, random_state=3).fit(X, y)
    assert a.feature_names_out_ == b.feature_names_out_


def test_verbose_logs_and_progress(caplog, capsys):
    db = make_market(seed=1)  # a new database: nothing cached
    X = market_rows(db)
    with caplog.at_level(logging.INFO, logger="skrel.features"):
        DFSTransformer(max_depth=1).fit_transform(X)
    assert any("feature definitions" in r.message for r in caplog.records)
    assert capsys.readouterr().err == ""  # silent by default
    db = make_market(seed=2)
    DFSTransformer(max_depth=1, verbose=1).fit_transform(market_rows(db))
    assert "DFS features" in capsys.readouterr().err  # a tqdm bar


def test_staged_screen_with_many_definitions():
    db = make_market()
    X = market_rows(db)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, len(X))
    full = DFSTransformer(max_depth=2, windows=[30]).fit(X)
    t = DFSTransformer(max_depth=2, windows=[30], max_features=8, random_state=0).fit(X, y)
    assert len(full.features_) > 4 * 8 and len(t.features_) <= 8
    summary = t.pruning_summary_
    assert len(summary) + len(t.features_) == len(full.features_)
    assert "column screened out at depth 1" in set(summary.reason)
    screened = set(summary.feature[summary.reason == "column screened out at depth 1"])
    depth = {f.name: f.depth for f in full.features_}
    assert all(depth[n] > 1 for n in screened)
    assert_frames_equal(t.transform(X), full.transform(X)[t.feature_names_out_])
