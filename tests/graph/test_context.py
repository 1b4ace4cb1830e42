"""The RelGT context sampler against a brute-force breadth-first search, on random databases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skrel.data import Database, RelationalDataset
from skrel.graph.context import TokenGraph, contexts_for, sample_contexts

T0 = pd.Timestamp("2020-01-01")


def random_db(seed: int) -> Database:
    """people (no time, ``friend`` references people) <- visits (time, some missing) -> places
    (no time); notes (time) -> visits (sometimes missing), people."""
    rng = np.random.default_rng(seed)
    n_p, n_pl, n_v, n_n = (int(x) for x in (rng.integers(2, 8), rng.integers(1, 5), rng.integers(1, 30),
                                           rng.integers(1, 15)))
    friend = rng.integers(0, n_p, n_p).astype(float) * 10
    friend[rng.random(n_p) < 0.4] = np.nan
    people = pd.DataFrame({"pid": np.arange(n_p) * 10, "friend": friend, "age": rng.random(n_p)})
    places = pd.DataFrame({"plid": [f"pl{i}" for i in range(n_pl)]})
    at = pd.Series(T0 + pd.to_timedelta(rng.integers(0, 20, n_v), "D")).where(rng.random(n_v) > 0.1)
    visits = pd.DataFrame({"vid": np.arange(n_v), "pid": rng.integers(0, n_p, n_v) * 10,
                           "plid": [f"pl{i}" for i in rng.integers(0, n_pl, n_v)], "at": at})
    vid = rng.integers(0, n_v, n_n).astype(float)
    vid[rng.random(n_n) < 0.2] = np.nan
    notes = pd.DataFrame({"nid": np.arange(n_n), "vid": vid, "pid": rng.integers(0, n_p, n_n) * 10,
                          "at": T0 + pd.to_timedelta(rng.integers(0, 20, n_n), "D")})
    return Database(
        {"people": people, "places": places, "visits": visits, "notes": notes},
        primary_keys={"people": "pid", "places": "plid", "visits": "vid", "notes": "nid"},
        foreign_keys={"people": {"friend": "people"}, "visits": {"pid": "people", "plid": "places"},
                      "notes": {"vid": "visits", "pid": "people"}},
        time_columns={"visits": "at", "notes": "at"},
    )


def brute_force(db: Database, graph: TokenGraph, seed: int, cutoff: pd.Timestamp):
    """Hop of every visible node within 2 hops of ``seed``, and the undirected edge set."""
    visible = (graph.node_rank <= graph.cutoff_rank(np.array([cutoff.value]))[0])
    adj = {u: set() for u in range(graph.num_nodes)}
    for name in db.table_names:
        t = db[name]
        i = graph.tables.index(name)
        for col, ref in t.fkeys.items():
            j = graph.tables.index(ref)
            target = list(db[ref].df[db[ref].pkey])
            for r, v in enumerate(t.df[col]):
                if pd.notna(v):
                    u, w = graph.offsets[i] + r, graph.offsets[j] + target.index(v)
                    adj[u].add(w)
                    adj[w].add(u)
    hop = {seed: 0}
    frontier = [seed]
    for h in (1, 2):
        nxt = []
        for u in frontier:
            for w in adj[u]:
                if visible[w] and w not in hop:
                    hop[w] = h
                    nxt.append(w)
        frontier = nxt
    return hop, adj


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(db_seed=st.integers(0, 10_000), k=st.integers(1, 12), day=st.integers(-2, 22), sampler_seed=st.integers(0, 3),
       max_fanout=st.sampled_from([1, 2, 1000]), half_life=st.sampled_from([None, 3.0]))
def test_contexts_match_bfs(db_seed, k, day, sampler_seed, max_fanout, half_life):
    """Exact neighbourhoods without a hub cap; with one, still visible tokens with exact hops."""
    db = random_db(db_seed)
    graph = TokenGraph.from_database(db)
    cutoff = T0 + pd.Timedelta(days=day)
    seeds = np.arange(graph.num_nodes)
    ctx = sample_contexts(graph, seeds, np.full(len(seeds), cutoff.value), k, seed=sampler_seed,
                          max_fanout=max_fanout, half_life=half_life)
    assert ctx.node.shape == (len(seeds), k)
    for s in seeds:
        hop, adj = brute_force(db, graph, s, cutoff)
        nodes, hops, mask = ctx.node[s], ctx.hop[s], ctx.mask[s]
        # the seed first; real tokens before padding; padding fully blank
        assert nodes[0] == s and hops[0] == 0 and mask[0]
        n_real = int(mask.sum())
        assert mask[:n_real].all() and not mask[n_real:].any()
        assert (nodes[n_real:] == -1).all() and (hops[n_real:] == -1).all() and (ctx.table[s, n_real:] == -1).all()
        assert np.isnan(ctx.rel_time[s, n_real:]).all()
        # tokens: distinct, hops as BFS says, all of them when they fit
        real = nodes[:n_real]
        assert len(set(real.tolist())) == n_real
        for u, h in zip(real, hops[:n_real]):
            assert hop.get(int(u)) == h
        if max_fanout == 1000:
            assert n_real == min(k, len(hop))
        # no token newer than the cutoff (the seed excepted); time-less tables have NaN time
        for p in range(1, n_real):
            table = db[graph.tables[graph.node_table[real[p]]]]
            if table.time_col is None:
                assert np.isnan(ctx.rel_time[s, p])
            else:
                assert pd.Timestamp(graph.node_time[real[p]]) <= cutoff
                assert ctx.rel_time[s, p] <= 0
        # induced edges: exactly the graph's edges among the tokens, both directions
        e0, e1 = ctx.edge_ptr[s], ctx.edge_ptr[s + 1]
        got = set(zip(ctx.edge_src[e0:e1].tolist(), ctx.edge_dst[e0:e1].tolist()))
        want = {(a, b) for a in range(n_real) for b in range(n_real)
                if a != b and int(real[b]) in adj[int(real[a])]}
        assert got == want


@settings(max_examples=25, deadline=None)
@given(db_seed=st.integers(0, 10_000), day=st.integers(0, 20))
def test_rows_after_cutoff_change_no_context(db_seed, day):
    """Adding and changing rows dated after the cutoff leaves every context as it was."""
    db = random_db(db_seed)
    cutoff = T0 + pd.Timedelta(days=day)
    people = db["people"].df
    X = RelationalDataset(db, "people", people["pid"].to_numpy(), [cutoff] * len(people))
    before = contexts_for(X, 6, seed=1)

    tables = {n: db[n] for n in db.table_names}
    v = tables["visits"].df.copy()
    later = v["at"] > cutoff
    v.loc[later, "plid"] = v["plid"].iloc[0]
    extra = pd.DataFrame({"vid": np.arange(len(v), len(v) + 5), "pid": people["pid"].iloc[0],
                          "plid": v["plid"].iloc[0], "at": cutoff + pd.Timedelta(seconds=1)})
    tables["visits"] = type(tables["visits"])(pd.concat([v, extra], ignore_index=True), "vid",
                                              dict(tables["visits"].fkeys), "at")
    db2 = Database(tables)
    after = contexts_for(X.with_database(db2), 6, seed=1)
    g1, g2 = TokenGraph.from_database(db), TokenGraph.from_database(db2)
    np.testing.assert_array_equal(np.where(before.mask, g1.uid[before.node], 0),
                                  np.where(after.mask, g2.uid[after.node], 0))
    np.testing.assert_array_equal(before.hop, after.hop)
    np.testing.assert_array_equal(before.rel_time, after.rel_time)
    np.testing.assert_array_equal(before.edge_ptr, after.edge_ptr)
    np.testing.assert_array_equal(before.edge_src, after.edge_src)


def test_rows_at_the_cutoff_are_visible():
    db = random_db(3)
    v = db["visits"].df.dropna(subset=["at"]).iloc[0]
    X = RelationalDataset(db, "people", [v["pid"]], [v["at"]])
    ctx = contexts_for(X, 50)
    graph = TokenGraph.from_database(db)
    row = graph.offsets[graph.tables.index("visits")] + int(np.flatnonzero(db["visits"].df["vid"] == v["vid"])[0])
    assert row in ctx.node[0]
    ctx = contexts_for(RelationalDataset(db, "people", [v["pid"]], [v["at"] - pd.Timedelta(1, "ns")]), 50)
    assert row not in ctx.node[0]


def test_reproducible_subset_invariant_and_seeded(shop_db):
    X = RelationalDataset(shop_db, "users", np.arange(60), [pd.Timestamp("2021-01-01")] * 60)
    a = contexts_for(X, 20, seed=0)
    b = contexts_for(X[10:30], 20, seed=0)
    np.testing.assert_array_equal(a.node[10:30], b.node)
    part = a.take(np.arange(10, 30))
    np.testing.assert_array_equal(part.edge_src, b.edge_src)
    np.testing.assert_array_equal(part.edge_ptr, b.edge_ptr)
    c = contexts_for(X, 20, seed=1)
    assert (a.node != c.node).any()
    chunked = sample_contexts(TokenGraph.from_database(shop_db), TokenGraph.from_database(shop_db).entity_nodes(X),
                              X.cutoffs.view(np.int64), 20, seed=0, chunk_size=7)
    np.testing.assert_array_equal(chunked.node, a.node)
    np.testing.assert_array_equal(chunked.edge_dst, a.edge_dst)


def test_hub_cap_keeps_hops_exact(shop_db):
    """With a fan-out cap below the degrees, tokens are still visible and their hops exact."""
    X = RelationalDataset(shop_db, "items", np.arange(15), [pd.Timestamp("2021-06-01")] * 15)
    graph = TokenGraph.from_database(shop_db)
    ctx = contexts_for(X, 40, seed=0, max_fanout=5)
    full = contexts_for(X, 10_000, seed=0)
    assert (ctx.mask.sum(1) > 1).all()
    assert (full.mask.sum(1) > ctx.mask.sum(1)).all()
    for i in range(len(X)):
        hop_of = dict(zip(full.node[i][full.mask[i]].tolist(), full.hop[i][full.mask[i]].tolist()))
        for u, h in zip(ctx.node[i][ctx.mask[i]], ctx.hop[i][ctx.mask[i]]):
            assert hop_of[int(u)] == h
    assert (graph.node_time[ctx.node[ctx.hop > 0]] <= pd.Timestamp("2021-06-01").value).all()


def test_unknown_entity_is_a_clear_error(shop_db):
    X = RelationalDataset(shop_db, "users", [999], [pd.Timestamp("2021-01-01")])
    with pytest.raises(Exception, match="not primary-key values of table .users."):
        contexts_for(X, 5)


def test_half_life_favours_recent_rows(shop_db):
    cutoff = pd.Timestamp("2021-12-01")
    X = RelationalDataset(shop_db, "users", np.arange(60), [cutoff] * 60)
    graph = TokenGraph.from_database(shop_db)

    def mean_age(ctx):
        orders = ctx.mask & (ctx.table == graph.tables.index("orders"))
        return float(-ctx.rel_time[orders].mean())

    uniform, recent = contexts_for(X, 8, seed=0), contexts_for(X, 8, seed=0, half_life=30.0)
    assert mean_age(recent) < 0.5 * mean_age(uniform)
    np.testing.assert_array_equal(uniform.mask.sum(1), recent.mask.sum(1))
