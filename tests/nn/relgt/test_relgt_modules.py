"""RelGT's modules: shapes (batch size 1 included), masking, ablations, the global module."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from skrel.data import RelationalDataset
from skrel.graph import feature_spec, materialize
from skrel.graph.context import TokenGraph, contexts_for
from skrel.nn.relgt import (
    ABLATABLE,
    ContextLoader,
    GlobalCentroidAttention,
    LocalTransformer,
    RelGT,
    SubgraphStructureEncoder,
    TokenBatch,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(shop_db):
    X = RelationalDataset(shop_db, "users", np.arange(12), [pd.Timestamp("2020-09-01")] * 12)
    spec = feature_spec(shop_db)
    graph = TokenGraph.from_database(shop_db)
    ctx = contexts_for(X, 10, seed=0)
    return dict(spec=spec, graph=graph, ctx=ctx, tfs=materialize(shop_db, spec), n=len(X))


def model(setup, task_type="binary", n_classes=2, **kw):
    torch.manual_seed(0)
    spec = setup["spec"]
    return RelGT(setup["graph"].tables, spec.col_names_dict, spec.col_stats, task_type, n_classes=n_classes,
                 channels=16, heads=2, num_centroids=8, **kw)


def batches(setup, batch_size, shuffle=False, y=None):
    return list(ContextLoader(setup["ctx"], setup["graph"].offsets, setup["tfs"], y, batch_size=batch_size,
                              shuffle=shuffle, seed=0))


@pytest.mark.parametrize("task_type,n_classes,shape", [("binary", 2, (1,)), ("regression", 1, (1,)),
                                                       ("multiclass", 3, (1, 3))])
def test_batch_size_one_train_and_eval(setup, task_type, n_classes, shape):
    m = model(setup, task_type, n_classes)
    y = np.zeros(setup["n"], dtype=np.int64 if task_type != "regression" else np.float64)
    for train in (True, False):
        m.train(train)
        b = batches(setup, 1, shuffle=train, y=y)[0]
        out = m(b)
        assert out.shape == shape and torch.isfinite(out).all()
        if train:
            m.loss(out, b.y).backward()


def test_every_parameter_learns(setup):
    m = model(setup).train()
    b = batches(setup, 6, shuffle=True, y=np.arange(setup["n"]) % 2)[0]
    m.loss(m(b), b.y).backward()
    # the global module's key/value/projection see gradients through the centroids' attention
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert not missing


def test_rows_do_not_depend_on_their_batch(setup):
    m = model(setup).eval()
    with torch.no_grad():
        whole = torch.cat([m(b) for b in batches(setup, 12)])
        ones = torch.cat([m(b) for b in batches(setup, 1)])
    torch.testing.assert_close(whole, ones, rtol=1e-5, atol=1e-6)


def test_training_batches_bucket_by_size_and_cover_every_row(setup):
    loader = ContextLoader(setup["ctx"], setup["graph"].offsets, setup["tfs"], np.arange(setup["n"]),
                           batch_size=5, shuffle=True, seed=0)
    ys = [b.y.tolist() for b in loader]
    assert sorted(sum(ys, [])) == list(range(setup["n"]))
    loader.set_epoch(1)
    assert [b.y.tolist() for b in loader] != ys
    for b in loader:
        assert b.mask.shape[1] == int(b.mask.sum(1).max())  # trimmed to the batch's largest context


@pytest.mark.parametrize("element", ABLATABLE)
def test_each_ablation_changes_the_model(setup, element):
    full, ablated = model(setup), model(setup, ablate=(element,))
    assert element not in ablated.elements or not ablated.use_global
    n_full = sum(p.numel() for p in full.parameters())
    n_abl = sum(p.numel() for p in ablated.parameters())
    assert n_abl < n_full
    b = batches(setup, 12)[0]
    with torch.no_grad():
        out = ablated.eval()(b)
    assert out.shape == (12,) and torch.isfinite(out).all()
    if element != "global":
        assert ablated.mixer.proj.in_features == 4 * 16


def test_unknown_ablation_and_no_elements(setup):
    with pytest.raises(ValueError, match="Unknown ablation"):
        model(setup, ablate=("colour",))
    with pytest.raises(ValueError, match="at least one element"):
        model(setup, ablate=("features", "type", "hop", "time", "structure"))


def test_padding_tokens_are_ignored(setup):
    """Changing what padding positions hold changes no output."""
    m = model(setup).eval()
    b = batches(setup, 12)[0]
    assert (~b.mask).any()
    other = TokenBatch(**{**b.__dict__})
    other.hop = torch.where(b.mask, b.hop, torch.ones_like(b.hop))
    other.rel_time = torch.where(b.mask, b.rel_time, torch.full_like(b.rel_time, -5.0))
    other.noise = torch.where(b.mask[..., None], b.noise, torch.randn_like(b.noise))
    with torch.no_grad():
        torch.testing.assert_close(m(b), m(other))


def test_local_transformer_readout_with_only_the_seed():
    local = LocalTransformer(8, heads=2, num_layers=2).eval()
    x = torch.randn(3, 5, 8, requires_grad=True)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[:, 0] = True
    mask[1, :3] = True
    out = local(x, mask)
    assert out.shape == (3, 8)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.equal(x.grad[0, 1:], torch.zeros(4, 8))  # nothing flows to padding


def test_structure_encoder_sees_edges_and_noise():
    enc = SubgraphStructureEncoder(8, noise_dim=3)
    noise = torch.randn(2, 4, 3)
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[1, 3] = False
    chain = torch.tensor([[0, 1, 1, 2, 4, 5], [1, 0, 2, 1, 5, 4]])
    star = torch.tensor([[0, 1, 0, 2, 4, 5], [1, 0, 2, 0, 5, 4]])
    a, b = enc(noise, chain, mask), enc(noise, star, mask)
    assert a.shape == (2, 4, 8)
    assert not torch.allclose(a[0], b[0])
    assert torch.equal(a[1, 3], torch.zeros(8))
    assert not torch.allclose(a, enc(torch.randn(2, 4, 3), chain, mask))


def test_global_module_counts_only_real_assignments():
    g = GlobalCentroidAttention(4, num_centroids=6, decay=0.5)
    z = torch.randn(3, 4)
    assert torch.equal(g.eval()(z), torch.zeros(3, 4))  # no centroid has a seed yet
    g.train()
    assign = g.update(torch.tensor([[0.0, 0, 0, 0], [0.1, 0, 0, 0], [5.0, 5, 5, 5]]))
    # three centroids filled, each with its own seed; the others empty, so outside attention
    assert int(g.filled) == 3 and assign.tolist() == [0, 1, 2]
    torch.testing.assert_close(g.ema_count, torch.tensor([0.5, 0.5, 0.5, 0, 0, 0]))
    g.update(torch.tensor([[5.0, 5, 5, 5], [5.1, 5, 5, 5], [4.9, 5, 5, 5]]))
    # the second batch fills the rest and all its seeds go to the centroids nearest them
    assert int(g.filled) == 6
    assert g.ema_count[3:].tolist() != [0, 0, 0]
    assert g.ema_count[:2].tolist() == [0.25, 0.25]
    frozen = g.centroids.clone()
    g.eval()(torch.randn(5, 4))
    assert torch.equal(g.centroids, frozen)


def test_reset_parameters_restores_a_fresh_model(setup):
    m = model(setup)
    m.train()(batches(setup, 6, shuffle=True)[0])
    assert int(m.global_.filled) > 0
    m.reset_parameters()
    assert int(m.global_.filled) == 0 and float(m.global_.ema_count.sum()) == 0


def test_global_module_restarts_dead_centroids():
    g = GlobalCentroidAttention(2, num_centroids=2, decay=0.5, dead=0.01).train()
    g.update(torch.tensor([[0.0, 0.0], [-5.0, -5.0]]))
    for _ in range(8):  # every seed is nearer centroid 0: centroid 1 starves
        g.update(torch.tensor([[0.0, 0.0], [0.0, 0.1], [3.0, 3.0]]))
    # centroid 1 was moved onto the seed farthest from its centroid, and then kept it
    torch.testing.assert_close(g.centroids[1], torch.tensor([3.0, 3.0]))
    assert float(g.ema_count[1]) > 0.5


def test_global_module_does_not_collapse_on_shifting_embeddings():
    """Seeds from four clusters whose embeddings keep growing: the clusters keep their centroids."""
    torch.manual_seed(0)
    g = GlobalCentroidAttention(8, num_centroids=8).train()
    centres = torch.randn(4, 8) * 3
    for step in range(200):
        seeds = (centres.repeat_interleave(16, 0) + 0.1 * torch.randn(64, 8)) * (1 + step / 20)
        g(seeds)
    g.eval()
    assign = torch.cdist(g.project(centres * 11), g.centroids).argmin(1)
    assert len(set(assign.tolist())) >= 3
