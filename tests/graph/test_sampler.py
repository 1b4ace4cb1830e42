"""The vectorised temporal sampler against a brute-force reference, on random databases."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from skrel.data import Database
from skrel.graph import build_graph
from skrel.graph.sampler import TemporalSampler, reference_sample, seed_salts

T0 = pd.Timestamp("2020-01-01")


def random_db(seed: int, n_a=None, n_b=None, n_c=None) -> Database:
    """a (no time) <- b (time, a few missing) <- c (time) -> a; times on a coarse grid so ties occur."""
    rng = np.random.default_rng(seed)
    n_a = n_a or int(rng.integers(1, 6))
    n_b = n_b or int(rng.integers(1, 40))
    n_c = n_c or int(rng.integers(1, 60))
    a = pd.DataFrame({"aid": np.arange(n_a) * 3 + 1, "x": rng.random(n_a)})
    b_at = pd.Series(T0 + pd.to_timedelta(rng.integers(0, 10, n_b), "D")).where(rng.random(n_b) > 0.1)
    b = pd.DataFrame({"bid": np.arange(n_b), "aid": rng.choice(a["aid"], n_b), "at": b_at})
    c = pd.DataFrame({
        "cid": np.arange(n_c),
        "bid": rng.integers(0, n_b, n_c),
        "aid": rng.choice(a["aid"], n_c),
        "at": T0 + pd.to_timedelta(rng.integers(0, 10, n_c), "D"),
    })
    return Database({"a": a, "b": b, "c": c}, primary_keys={"a": "aid", "b": "bid", "c": "cid"},
                    foreign_keys={"b": {"aid": "a"}, "c": {"bid": "b", "aid": "a"}},
                    time_columns={"b": "at", "c": "at"})


def paths_of(sub) -> list[set]:
    """Each seed's sampled nodes as root-to-node paths ((edge type, node), ...)."""
    out = [set() for _ in range(sub.num_seeds)]
    parent = {}  # (type, local) -> (parent type, parent local, edge type)
    for et, ei in sub.edge_index.items():
        for s, d in ei.T.tolist():
            parent[(et[0], s)] = (et[2], d, et)
    for t, nodes in sub.node.items():
        for local in range(len(nodes)):
            key, path = (t, local), []
            while key in parent:
                pt, pl, et = parent[key]
                path.append((et, int(sub.node[key[0]][key[1]])))
                key = (pt, pl)
            if path:
                out[int(sub.batch[t][local])].add(tuple(reversed(path)))
    return out


def seeds_for(db, rng, n=8):
    g = build_graph(db)
    nodes = rng.integers(0, g.num_nodes["a"], n)
    times = (T0 + pd.to_timedelta(rng.integers(-1, 11, n), "D")).to_numpy().view(np.int64)
    return g, nodes, times


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), k1=st.integers(1, 4), k2=st.integers(1, 4),
       strategy=st.sampled_from(["uniform", "last"]))
def test_no_sampled_node_is_newer_than_its_seed(seed, k1, k2, strategy):
    db = random_db(seed)
    rng = np.random.default_rng(seed)
    g, nodes, times = seeds_for(db, rng)
    sub = TemporalSampler(g, [k1, k2], strategy).sample("a", nodes, times, seed_salts(seed, np.arange(len(nodes))))
    for t, tnodes in sub.node.items():
        if g.node_time[t] is not None and len(tnodes):
            assert (g.node_time[t][tnodes] <= times[sub.batch[t]]).all()
    for et, ei in sub.edge_index.items():  # edges join nodes of the same seed
        assert (sub.batch[et[0]][ei[0]] == sub.batch[et[2]][ei[1]]).all()
    assert sum(sub.num_sampled_nodes["a"]) == len(sub.node["a"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_eligible_sets_match_brute_force(seed):
    db = random_db(seed)
    rng = np.random.default_rng(seed + 1)
    g, nodes, times = seeds_for(db, rng)
    sub = TemporalSampler(g, [-1, -1]).sample("a", nodes, times, seed_salts(0, np.arange(len(nodes))))
    ref = reference_sample(g, "a", nodes, times, [-1, -1])
    assert paths_of(sub) == [set(p) for p in ref]
    big = TemporalSampler(g, [1000, 1000]).sample("a", nodes, times, seed_salts(1, np.arange(len(nodes))))
    assert paths_of(big) == [set(p) for p in ref]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), k1=st.integers(1, 3), k2=st.integers(1, 3))
def test_last_strategy_matches_brute_force(seed, k1, k2):
    db = random_db(seed)
    g, nodes, times = seeds_for(db, np.random.default_rng(seed))
    sub = TemporalSampler(g, [k1, k2], "last").sample("a", nodes, times, seed_salts(0, np.arange(len(nodes))))
    assert paths_of(sub) == [set(p) for p in reference_sample(g, "a", nodes, times, [k1, k2], "last")]


@pytest.mark.parametrize("n_visible,k", [(10, 3), (40, 4), (200, 5)])  # all three uniform regimes
def test_uniform_frequencies(n_visible, k):
    """Each visible neighbour is drawn with probability k / n_visible, pairs with the right rate."""
    a = pd.DataFrame({"aid": [0]})
    b = pd.DataFrame({"bid": np.arange(n_visible + 5), "aid": 0,
                      "at": T0 + pd.to_timedelta(np.r_[np.arange(n_visible), [n_visible + 100] * 5], "D")})
    db = Database({"a": a, "b": b}, primary_keys={"a": "aid", "b": "bid"}, foreign_keys={"b": {"aid": "a"}},
                  time_columns={"b": "at"})
    g = build_graph(db)
    n_seeds = 4000
    cutoff = (T0 + pd.Timedelta(days=n_visible - 1)).value
    sub = TemporalSampler(g, [k]).sample("a", np.zeros(n_seeds, np.int64), np.full(n_seeds, cutoff),
                                         seed_salts(123, np.arange(n_seeds)))
    picked = sub.node["b"]
    assert len(picked) == n_seeds * k and picked.max() < n_visible  # k distinct, never the future ones
    per_seed = picked.reshape(n_seeds, k)
    assert all(len(set(r)) == k for r in per_seed[:200].tolist())
    counts = np.bincount(picked, minlength=n_visible)
    assert stats.chisquare(counts).pvalue > 1e-4
    if n_visible <= 40:  # pairs: every unordered pair equally likely
        pairs = Counter((int(r[i]), int(r[j])) for r in np.sort(per_seed, axis=1) for i in range(k)
                        for j in range(i + 1, k))
        obs = np.array([pairs.get((i, j), 0) for i in range(n_visible) for j in range(i + 1, n_visible)])
        assert obs.sum() == n_seeds * k * (k - 1) // 2
        assert stats.chisquare(obs).pvalue > 1e-4


def test_deterministic_and_independent_of_the_batch():
    db = random_db(3, n_a=4, n_b=40, n_c=80)
    g, nodes, times = seeds_for(db, np.random.default_rng(0), n=20)
    salts = seed_salts(5, np.arange(20))
    s = TemporalSampler(g, [2, 2])
    full = paths_of(s.sample("a", nodes, times, salts))
    assert full == paths_of(s.sample("a", nodes, times, salts))
    for i in (0, 7, 19):
        assert paths_of(s.sample("a", nodes[i:i + 1], times[i:i + 1], salts[i:i + 1]))[0] == full[i]
    other = paths_of(s.sample("a", nodes, times, seed_salts(6, np.arange(20))))
    assert other != full


def test_rows_after_the_cutoff_do_not_change_the_sample():
    db = random_db(11, n_a=3, n_b=30, n_c=60)
    g, nodes, times = seeds_for(db, np.random.default_rng(1), n=10)
    times = np.full(10, (T0 + pd.Timedelta(days=4)).value)
    salts = seed_salts(0, np.arange(10))
    before = paths_of(TemporalSampler(g, [2, 3]).sample("a", nodes, times, salts))
    c = db["c"].df
    extra = c.assign(cid=c["cid"] + 1000, at=T0 + pd.Timedelta(days=30))  # all future rows
    later = Database({"a": db["a"].df, "b": db["b"].df, "c": pd.concat([c, extra])},
                     primary_keys={"a": "aid", "b": "bid", "c": "cid"},
                     foreign_keys={"b": {"aid": "a"}, "c": {"bid": "b", "aid": "a"}},
                     time_columns={"b": "at", "c": "at"})
    after = paths_of(TemporalSampler(build_graph(later), [2, 3]).sample("a", nodes, times, salts))
    assert after == before


def test_rejects_bad_arguments():
    g = build_graph(random_db(0))
    with pytest.raises(ValueError, match="strategy"):
        TemporalSampler(g, [2], "newest")
    with pytest.raises(ValueError, match="fanouts"):
        TemporalSampler(g, [0])
    with pytest.raises(IndexError):
        TemporalSampler(g, [2]).sample("a", [99], [0], seed_salts(0, [0]))


def test_scan_and_binary_search_visibility_agree(monkeypatch):
    import skrel.graph.sampler as sampler_module

    db = random_db(5, n_a=2, n_b=40, n_c=200)
    g, nodes, times = seeds_for(db, np.random.default_rng(2), n=30)
    s = TemporalSampler(g, [-1])
    for et in g.edge_types:
        if g.node_time[et[0]] is None:
            continue
        dst = np.random.default_rng(0).integers(0, g.num_nodes[et[2]], 30)
        scan = s.visible_range(et, dst, times)
        monkeypatch.setattr(sampler_module, "_SCAN_DEGREE", -1)
        search = s.visible_range(et, dst, times)
        monkeypatch.setattr(sampler_module, "_SCAN_DEGREE", 64)
        assert all((a == b).all() for a, b in zip(scan, search))
