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
