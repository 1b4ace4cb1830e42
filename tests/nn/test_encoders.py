"""Per-table encoders (fused ResNet forward against pytorch-frame's) and the time encoder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from skrel.data import Database
from skrel.graph import feature_spec, materialize
from skrel.nn.encoders import HeteroTableEncoder, TimeEncoder, column_width, module_key, relative_days, resnet_forward


def mixed_db() -> Database:
    rng = np.random.default_rng(0)
    n = 300
    value = rng.normal(size=n)
    value[::7] = np.nan
    when = pd.Series(pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), "D"))
    when[::11] = pd.NaT
    items = pd.DataFrame({
        "id": np.arange(n),
        "value": value,
        "count": rng.integers(0, 1000, n).astype(float),
        "colour": rng.choice(["red", "green", "blue"], n),
        "title": [f"item number {i} of {rng.choice(['x', 'y'])}" for i in range(n)],
        "when": when,
    })
    return Database({"items": items}, primary_keys={"items": "id"})


@pytest.fixture(scope="module")
def encoded():
    db = mixed_db()
    spec = feature_spec(db, stypes={"items": {"colour": "categorical", "title": "text_embedded"}})
    tf = materialize(db, spec)["items"]
    torch.manual_seed(0)
    enc = HeteroTableEncoder(16, spec.col_names_dict, spec.col_stats, num_layers=2)
    return enc, tf


def test_fused_forward_is_pytorch_frames_forward(encoded):
    enc, tf = encoded
    import torch_frame

    assert set(tf.col_names_dict) == {torch_frame.numerical, torch_frame.categorical, torch_frame.embedding,
                                      torch_frame.timestamp}
    model = enc.encoders["t_items"]
    model.eval()
    tf = tf[torch.arange(tf.num_rows)]
    tf.feat_dict[torch_frame.categorical][:5] = -1  # missing / unseen categories
    with torch.no_grad():
        want = model(tf)
        got = resnet_forward(model, tf)
    assert got.shape == (tf.num_rows, 16)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(enc.encode("items", tf), want, rtol=1e-5, atol=1e-5)


def test_fused_gradients_are_finite_with_missing_values(encoded):
    enc, tf = encoded
    enc.train()
    torch.manual_seed(1)
    enc.zero_grad()
    enc.encode("items", tf).square().sum().backward()
    grads = [p.grad for p in enc.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_table_names_that_clash_with_module_attributes():
    db = Database({"items": pd.DataFrame({"id": [0, 1, 2], "x": [1.0, 2.0, 3.0]}),
                   "keys": pd.DataFrame({"id": [0, 1], "y": [0.5, 0.1]})},
                  primary_keys={"items": "id", "keys": "id"})
    spec = feature_spec(db)
    enc = HeteroTableEncoder(8, spec.col_names_dict, spec.col_stats)
    out = enc(materialize(db, spec))
    assert out["items"].shape == (3, 8) and out["keys"].shape == (2, 8)
    assert enc.encode("items", materialize(db, spec)["items"][torch.zeros(0, dtype=torch.long)]).shape == (0, 8)


def test_module_keys_are_injective():
    names = ["a.b", "a_dot_b", "a_db", "a__b", "a_b", "a", "", "items", "x.y.z", "x_y_z"]
    keys = [module_key(n) for n in names]
    assert len(set(keys)) == len(keys) and all("." not in k and k.startswith("t_") for k in keys)
    edges = [("a__b", "c", "d"), ("a", "b__c", "d"), ("a_s", "b", "c"), ("a", "sb", "c"), ("a", "b", "c")]
    assert len({module_key(*et) for et in edges}) == len(edges)
    assert module_key("users") == "t_users"


def test_tables_named_a_dot_b_and_a_underscore_dot_b_get_their_own_encoders():
    db = Database({"a.b": pd.DataFrame({"id": [0, 1, 2], "x": [1.0, 2.0, 3.0]}),
                   "a_dot_b": pd.DataFrame({"id": [0, 1], "y": ["u", "v"], "z": [0.5, 0.1]})},
                  primary_keys={"a.b": "id", "a_dot_b": "id"})
    spec = feature_spec(db)
    enc = HeteroTableEncoder(8, spec.col_names_dict, spec.col_stats)
    assert len(enc.encoders) == 2
    out = enc(materialize(db, spec))
    assert out["a.b"].shape == (3, 8) and out["a_dot_b"].shape == (2, 8)


def wide_db(n: int = 200, numeric: int = 40, categorical: int = 20) -> Database:
    rng = np.random.default_rng(0)
    cols = {"id": np.arange(n)}
    cols.update({f"num{j}": rng.normal(size=n) for j in range(numeric)})
    cols.update({f"cat{j}": rng.choice(["p", "q", "r"], n) for j in range(categorical)})
    return Database({"wide": pd.DataFrame(cols)}, primary_keys={"wide": "id"})


def test_wide_tables_get_narrow_column_embeddings():
    """40 numeric + 20 categorical columns at 128 channels: 2.16M parameters with full-width column
    embeddings (2.0M of them in the first block's input projections), 0.67M within the budget."""
    db = wide_db()
    spec = feature_spec(db)
    assert sum(len(v) for v in spec.col_names_dict["wide"].values()) == 60
    assert column_width(128, 60) == 34 and column_width(128, 16) == 128 and column_width(128, 60, None) == 128
    torch.manual_seed(0)
    full = HeteroTableEncoder(128, spec.col_names_dict, spec.col_stats, column_budget=None)
    narrow = HeteroTableEncoder(128, spec.col_names_dict, spec.col_stats)
    n_full, n_narrow = (sum(p.numel() for p in e.parameters()) for e in (full, narrow))
    assert n_full > 2_000_000 and n_narrow < 700_000
    first = narrow.encoders["t_wide"].backbone[0]
    assert first.lin1.in_features == 60 * 34 and first.lin1.out_features == 128
    tf = materialize(db, spec)["wide"]
    narrow.eval()
    with torch.no_grad():
        got = narrow.encode("wide", tf)
        want = narrow.encoders["t_wide"](tf)
    assert got.shape == (200, 128)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_time_encoder_and_relative_days():
    seed = torch.tensor([pd.Timestamp("2020-01-11").value] * 2)
    node = torch.tensor([pd.Timestamp("2020-01-01").value, pd.Timestamp("2020-01-11 12:00").value])
    days = relative_days(seed, node)
    assert days.dtype == torch.float32 and days.tolist() == [10.0, -0.5]
    tenc = TimeEncoder(["orders", "items"], 8)
    assert tenc("items", days).shape == (2, 8)
    assert not torch.equal(tenc("items", days), tenc("orders", days))
