"""Prediction heads: losses and output transforms of the three task types."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skrel.nn.heads import PredictionHead


def test_binary_head():
    head = PredictionHead(4, "binary")
    raw = head(torch.randn(5, 4))
    assert raw.shape == (5,)
    y = torch.tensor([0, 1, 1, 0, 1])
    torch.testing.assert_close(head.loss(raw, y), torch.nn.functional.binary_cross_entropy_with_logits(raw, y.float()))
    p = head.transform(raw)
    assert p.shape == (5, 2) and np.allclose(p.sum(1), 1) and np.allclose(p[:, 1], torch.sigmoid(raw).detach().numpy())


def test_regression_head_clamps_predictions_not_the_loss():
    head = PredictionHead(4, "regression", clamp=(1.0, 3.0))
    raw = torch.tensor([-5.0, 2.0, 10.0])
    assert head.transform(raw).tolist() == [1.0, 2.0, 3.0]
    assert float(head.loss(raw, torch.tensor([0.0, 2.0, 10.0]))) == pytest.approx(5 / 3)


def test_multiclass_head():
    head = PredictionHead(4, "multiclass", n_classes=3)
    raw = head(torch.randn(6, 4))
    assert raw.shape == (6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(head.loss(raw, y), torch.nn.functional.cross_entropy(raw, y))
    assert np.allclose(head.transform(raw).sum(1), 1)
    with pytest.raises(ValueError, match="task_type"):
        PredictionHead(4, "ranking")


def test_heads_start_at_the_given_offset():
    h = torch.zeros(3, 4)
    binary = PredictionHead(4, "binary", loc=np.log(0.25 / 0.75))
    torch.nn.init.zeros_(binary.lin.weight), torch.nn.init.zeros_(binary.lin.bias)
    assert np.allclose(binary.transform(binary(h))[:, 1], 0.25)
    multi = PredictionHead(4, "multiclass", n_classes=3, loc=np.log([0.5, 0.3, 0.2]))
    torch.nn.init.zeros_(multi.lin.weight), torch.nn.init.zeros_(multi.lin.bias)
    assert np.allclose(multi.transform(multi(h)), [[0.5, 0.3, 0.2]] * 3, atol=1e-6)
    reg = PredictionHead(4, "regression", loc=10.0, scale=3.0)
    torch.nn.init.zeros_(reg.lin.bias)
    with torch.no_grad():
        reg.lin.weight.fill_(0.25)
    assert np.allclose(reg.transform(reg(torch.ones(2, 4))), 13.0)
    with pytest.raises(ValueError, match="scale"):
        PredictionHead(4, "regression", scale=0.0)
