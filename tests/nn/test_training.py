"""The skorch-shaped training loop: steps, validation, early stopping, best-epoch restore."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from skrel.nn.training import Trainer, predict_raw


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor

    def to(self, device):
        return Batch(self.x.to(device), self.y.to(device))


class Loader:
    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size, self.epochs = x, y, batch_size, []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __iter__(self):
        for i in range(0, len(self.x), self.batch_size):
            yield Batch(self.x[i:i + self.batch_size], self.y[i:i + self.batch_size])


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, batch):
        return self.lin(batch.x).squeeze(-1)

    def loss(self, raw, y):
        return nn.functional.mse_loss(raw, y)


def data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(n, generator=g)


def neg_mse(raw, y):
    return -float(((raw - y) ** 2).mean())


def test_fit_learns_and_counts_steps():
    torch.manual_seed(0)
    x, y = data()
    train = Loader(x, y, 16)
    tr = Trainer(Linear(), lr=0.05, epochs=30, score_fn=neg_mse).fit(train, Loader(*data(32, 1), 32))
    assert train.epochs == list(range(30))
    assert [h["steps"] for h in tr.history_] == [4] * 30
    assert tr.history_[-1]["train_loss"] < tr.history_[0]["train_loss"] / 5
    assert tr.best_score_ == max(h["valid_score"] for h in tr.history_)
    tr2 = Trainer(Linear(), lr=0.05, epochs=2, max_steps_per_epoch=3).fit(Loader(x, y, 16))
    assert [h["steps"] for h in tr2.history_] == [3, 3] and tr2.best_epoch_ == 1


def test_early_stopping_restores_the_best_epoch():
    torch.manual_seed(0)
    x, y = data()
    val = Loader(*data(32, 1), 32)
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.4, 0.9])
    snapshots = []

    def score(raw, y):
        snapshots.append({k: v.clone() for k, v in module.state_dict().items()})
        return next(scores)

    module = Linear()
    tr = Trainer(module, lr=0.05, epochs=6, patience=2, score_fn=score).fit(Loader(x, y, 16), val)
    assert len(tr.history_) == 4 and tr.best_epoch_ == 1  # stopped after two epochs without improvement
    for k, v in module.state_dict().items():
        torch.testing.assert_close(v, snapshots[1][k])


def test_predict_raw_in_eval_mode():
    x, y = data(10)

    class M(Linear):
        def forward(self, batch):
            assert not self.training
            return super().forward(batch)

    m = M()
    out, ys = predict_raw(m, Loader(x, y, 4), "cpu", with_targets=True)
    assert out.shape == (10,) and torch.equal(ys, y)
    assert np.isfinite(out.numpy()).all()
