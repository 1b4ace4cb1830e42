"""Batches of sampled subgraphs: gathered features, relative times, per-epoch resampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from skrel.graph import build_graph, feature_spec, materialize
from skrel.graph.loader import SeedLoader, make_batch
from skrel.graph.sampler import TemporalSampler, seed_salts


def test_make_batch_gathers_the_right_rows(shop_db):
    g = build_graph(shop_db)
    tfs = materialize(shop_db, feature_spec(shop_db))
    cut = pd.Timestamp("2021-01-01").value
    sub = TemporalSampler(g, [5, 3]).sample("users", np.arange(12), np.full(12, cut), seed_salts(0, np.arange(12)))
    batch = make_batch(sub, tfs, y=np.arange(12.0))
    import torch_frame

    for t, nodes in sub.node.items():
        if not len(nodes):
            continue
        assert batch.inverse[t].shape == (len(nodes),)
        want = tfs[t].feat_dict[torch_frame.numerical][torch.from_numpy(nodes)] if torch_frame.numerical in \
            tfs[t].feat_dict else None
        if want is not None:
            got = batch.tf[t].feat_dict[torch_frame.numerical][batch.inverse[t]]
            assert torch.equal(torch.nan_to_num(got, -1.0), torch.nan_to_num(want, -1.0))
        assert batch.tf[t].num_rows == len(np.unique(nodes))
    days = batch.rel_days["orders"].numpy()
    assert (days >= 0).all()
    np.testing.assert_allclose(days, (cut - g.node_time["orders"][sub.node["orders"]]) / 86_400e9, rtol=1e-6)
    assert "users" not in batch.rel_days and batch.y.tolist() == list(np.arange(12.0))
    assert batch.to("cpu") is batch


def test_loader_shuffles_and_resamples_per_epoch(shop_db):
    g = build_graph(shop_db)
    tfs = materialize(shop_db, feature_spec(shop_db))
    n = 50
    cut = np.full(n, pd.Timestamp("2021-06-01").value)
    loader = SeedLoader(TemporalSampler(g, [3, 2]), tfs, "users", np.arange(n), cut, seed_salts(0, np.arange(n)),
                        y=np.arange(n), batch_size=16, shuffle=True, random_state=0)
    assert len(loader) == 4
    first = [b.y.tolist() for b in loader]
    assert sorted(sum(first, [])) == list(range(n)) and first == [b.y.tolist() for b in loader]
    loader.set_epoch(1)
    assert [b.y.tolist() for b in loader] != first
    fixed = SeedLoader(TemporalSampler(g, [3, 2]), tfs, "users", np.arange(n), cut, seed_salts(0, np.arange(n)),
                       batch_size=16)
    assert sum((b.num_seeds for b in fixed), 0) == n and next(iter(fixed)).y is None
