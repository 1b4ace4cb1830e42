"""Prediction heads: losses and output transforms of the three task types."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skrel.nn.heads import PredictionHead, regression_target_stats


def test_binary_head():
    head = PredictionHead(4, "binary")
    raw = head(torch.randn(5, 4))
    assert raw.shape == (5,)
    y = torch.tensor([0, 1, 1, 0, 1])
    torch.testing.assert_close(head.loss(raw, y), torch.nn.functional.binary_cross_entropy_with_logits(raw, y.float()))
    p = head.transform(raw)
    assert p.shape == (5, 2) and np.allclose(p.sum(1), 1) and np.allclose(p[:, 1], torch.sigmoid(raw).detach().numpy())


def test_regression_head_clamps_predictions_not_the_loss():
    head = PredictionHead(4, "regression", clamp=(1.0, 3.0), smoothing=0.0)
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


def test_regression_loss_is_l1_smoothed_near_the_fit():
    head = PredictionHead(4, "regression", scale=10.0, smoothing=0.1)  # quadratic within 1.0 of the target
    y = torch.zeros(3)
    raw = torch.tensor([5.0, 0.5, -0.2], requires_grad=True)
    loss = head.loss(raw, y)
    assert loss.item() == pytest.approx(((5 - 0.5) + 0.5 * 0.25 + 0.5 * 0.04) / 3)
    loss.backward()
    # far from the fit the gradient is L1's sign; near it, proportional to the error
    np.testing.assert_allclose(raw.grad.numpy() * 3, [1.0, 0.5, -0.2], rtol=1e-6)
    with pytest.raises(ValueError, match="smoothing"):
        PredictionHead(4, "regression", smoothing=-1.0)


def test_degenerate_clamp_is_ignored_and_scale_follows_the_clamp():
    tied = PredictionHead(4, "regression", clamp=(0.0, 0.0))
    assert tied.clamp is None and float(tied.scale) == 1.0
    assert tied.transform(torch.tensor([-1.0, 3.0])).tolist() == [-1.0, 3.0]
    wide = PredictionHead(4, "regression", clamp=(0.0, 100.0))
    assert float(wide.scale) == 25.0
    assert float(PredictionHead(4, "regression", clamp=(0.0, 100.0), scale=2.0).scale) == 2.0
    with pytest.raises(ValueError, match="clamp"):
        PredictionHead(4, "regression", clamp=(0.0, float("inf")))


def test_bias_is_in_target_units():
    """Setting the bias to the median starts the head at the median, whatever the scale."""
    head = PredictionHead(4, "regression", clamp=(0.0, 100.0))
    torch.nn.init.zeros_(head.lin.weight)
    with torch.no_grad():
        head.lin.bias.fill_(7.0)
    assert head(torch.randn(3, 4)).tolist() == [7.0, 7.0, 7.0]


def test_regression_target_stats_never_collapse():
    zero_inflated = np.r_[np.zeros(990), np.arange(1.0, 11.0)]  # 99% zeros: the 2-98% range is [0, 0]
    stats = regression_target_stats(zero_inflated)
    assert np.quantile(zero_inflated, 0.98) == 0.0
    assert stats["clamp"] == (0.0, 10.0) and stats["loc"] == 0.0 and stats["scale"] > 0
    plain = regression_target_stats(np.arange(101.0))
    assert plain["clamp"] == (2.0, 98.0) and plain["loc"] == 50.0 and plain["scale"] == pytest.approx(25.2475, 1e-4)
    assert regression_target_stats([3.0, 3.0])["scale"] == 1.0
    head = PredictionHead(4, "regression", **stats)
    assert head.clamp == (0.0, 10.0)
