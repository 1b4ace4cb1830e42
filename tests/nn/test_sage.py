"""Pure-torch heterogeneous GraphSAGE: aggregation, equality with PyG's layers, layer trimming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skrel.nn.sage import HeteroSAGE, aggregate


@pytest.mark.parametrize("aggr", ["sum", "mean", "max"])
def test_aggregate_against_loops(aggr):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=g)
    src = torch.randint(0, 7, (20,), generator=g)
    dst = torch.randint(0, 5, (20,), generator=g)
    out = aggregate(x, src, dst, 6, aggr)
    for d in range(6):
        msgs = x[src[dst == d]]
        if len(msgs) == 0:
            want = torch.zeros(3)
        else:
            want = {"sum": msgs.sum(0), "mean": msgs.mean(0), "max": msgs.max(0).values}[aggr]
        torch.testing.assert_close(out[d], want)


def toy_graph(seed=0):
    g = torch.Generator().manual_seed(seed)
    n = {"a": 4, "b": 9, "c": 6}
    ets = [("b", "f2p_a", "a"), ("a", "rev_f2p_a", "b"), ("c", "f2p_b", "b"), ("b", "rev_f2p_b", "c")]
    x = {t: torch.randn(k, 8, generator=g) for t, k in n.items()}
    ei = {}
    for s, r, d in ets:
        e = 12
        src = torch.randint(0, n[s], (e,), generator=g)
        ei[(s, r, d)] = torch.stack([src, torch.randint(0, n[d], (e,), generator=g)])
    return n, ets, x, ei


@pytest.mark.parametrize("aggr", ["sum", "mean", "max"])
def test_equals_pyg_heteroconv_of_sageconv(aggr):
    """RelBench's HeteroGraphSAGE is HeteroConv({et: SAGEConv}, aggr="sum") + LayerNorm + ReLU."""
    from torch_geometric.nn import HeteroConv, LayerNorm, SAGEConv

    n, ets, x, ei = toy_graph()
    torch.manual_seed(0)
    ours = HeteroSAGE(list(n), ets, 8, num_layers=2, aggr=aggr)
    convs = [HeteroConv({et: SAGEConv((8, 8), 8, aggr=aggr) for et in ets}, aggr="sum") for _ in range(2)]
    norms = [{t: LayerNorm(8, mode="node") for t in n} for _ in range(2)]
    with torch.no_grad():
        for layer in range(2):
            for et in ets:
                conv = convs[layer].convs[et]
                name = ours._names[et]
                conv.lin_l.weight.copy_(ours.lin_l[layer][name].weight)
                conv.lin_l.bias.copy_(ours.lin_l[layer][name].bias)
                conv.lin_r.weight.copy_(ours.lin_r[layer][name].weight)
            for t in n:
                norms[layer][t].weight.copy_(ours.norms[layer][f"t_{t}"].weight)
                norms[layer][t].bias.copy_(ours.norms[layer][f"t_{t}"].bias)
        want = dict(x)
        for layer in range(2):
            want = convs[layer](want, ei)
            want = {t: norms[layer][t](v).relu() for t, v in want.items()}
        got = ours(x, ei)
    for t in n:
        torch.testing.assert_close(got[t], want[t], rtol=1e-5, atol=1e-5)


def test_trimming_keeps_the_seed_outputs():
    from skrel.graph import build_graph
    from skrel.graph.loader import make_batch
    from skrel.graph.sampler import TemporalSampler, seed_salts
    from skrel.graph import feature_spec, materialize
    from conftest import make_shop

    db = make_shop(n_orders=300)
    g = build_graph(db)
    sub = TemporalSampler(g, [4, 3]).sample("users", np.arange(10), np.full(10, db.max_time.value),
                                            seed_salts(0, np.arange(10)))
    batch = make_batch(sub, materialize(db, feature_spec(db)))
    torch.manual_seed(0)
    x = {t: torch.randn(len(v), 8) for t, v in batch.node.items() if len(v)}
    sage = HeteroSAGE(g.node_types, g.edge_types, 8, num_layers=2)
    full = sage(x, batch.edge_index)
    trimmed = sage(x, batch.edge_index, batch.num_sampled_nodes, batch.num_sampled_edges)
    assert trimmed["users"].shape == (10, 8)
    torch.testing.assert_close(trimmed["users"], full["users"][:10])
