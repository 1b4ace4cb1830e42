"""The shared torch base (skrel.estimators._torch): skorch's loop, callbacks, validation record, threads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, LRScheduler

from skrel.estimators._torch import Batches, TorchRelationalEstimator, predict_raw, torch_threads
from skrel.estimators.rdl import RDLEstimator
from skrel.estimators.relgt import RelGTEstimator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RDL = dict(channels=8, max_epochs=3, fanouts=[8, 4], encoder_layers=1, min_steps_per_epoch=None, random_state=0)
RELGT = dict(tokens=12, channels=8, heads=2, centroids=8, max_epochs=3, batch_size=64, random_state=0)


class _Recorder(Callback):
    """Counts what skorch tells callbacks (proves user callbacks run inside the loop)."""

    def initialize(self):
        self.epochs, self.train_batches = 0, 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs += 1

    def on_batch_end(self, net, training=False, **kwargs):
        self.train_batches += int(training)


@pytest.mark.parametrize("cls,params", [(RDLEstimator, RDL), (RelGTEstimator, RELGT)])
def test_both_families_share_the_base(cls, params):
    assert issubclass(cls, TorchRelationalEstimator)
    for name in ("lr", "max_epochs", "batch_size", "device", "n_iter_no_change", "validation_fraction", "n_jobs",
                 "callbacks", "gradient_clip_value", "text_embedder", "stypes", "num_layers", "weight_decay"):
        assert name in cls().get_params(), (cls.__name__, name)


@pytest.mark.parametrize("cls,params", [(RDLEstimator, RDL), (RelGTEstimator, RELGT)])
def test_validation_record_is_higher_is_better(cls, params, shop_regression):
    db, task = shop_regression
    est = cls(**params).fit(db, task)
    assert len(est.validation_scores_) == len(est.history_) == 3
    assert est.best_score_ == max(est.validation_scores_) == est.validation_scores_[est.best_epoch_]
    X_val, y_val = task.split(db, "val")
    # regression: the record is minus the MAE of what predict returns, for the restored weights
    assert est.best_score_ == pytest.approx(-np.mean(np.abs(est.predict(X_val) - y_val)), rel=1e-6)
    assert {"train_loss", "valid_loss", "seconds", "train_seconds", "steps"} <= set(est.history_[0])
    assert est.n_params_ == sum(p.numel() for p in est.module_.parameters())


def test_early_stopping_stops_and_restores(shop_binary):
    db, task = shop_binary
    est = RDLEstimator(**{**RDL, "max_epochs": 30, "n_iter_no_change": 1, "lr": 0.05}).fit(db, task)
    n = len(est.history_)
    assert n < 30  # stopped early
    assert est.best_epoch_ == n - 2  # one epoch without improvement, then the best one restored
    X_val, y_val = task.split(db, "val")
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y_val, est.predict_proba(X_val)[:, 1]) == pytest.approx(est.best_score_, abs=1e-9)


def test_user_callbacks_run_in_the_loop(shop_binary):
    db, task = shop_binary
    rec = _Recorder()
    sched = LRScheduler(policy="StepLR", step_size=1, gamma=0.5)
    est = RDLEstimator(**{**RDL, "callbacks": [("rec", rec), ("sched", sched)]}).fit(db, task)
    assert rec.epochs == 3 and rec.train_batches == sum(h["steps"] for h in est.history_)
    # the schedule really changed the learning rate: another lr, other weights
    plain = RDLEstimator(**RDL).fit(db, task)
    X, _ = task.split(db, "test")
    assert not np.allclose(est.predict_proba(X), plain.predict_proba(X))


def test_max_steps_per_epoch(shop_binary):
    db, task = shop_binary
    est = RDLEstimator(**{**RDL, "batch_size": 32, "max_steps_per_epoch": 2}).fit(db, task)
    assert [h["steps"] for h in est.history_] == [2, 2, 2]


def test_gradient_clipping_changes_training(shop_binary):
    db, task = shop_binary
    X, _ = task.split(db, "test")
    a = RDLEstimator(**{**RDL, "gradient_clip_value": 1e-3}).fit(db, task).predict_proba(X)
    b = RDLEstimator(**RDL).fit(db, task).predict_proba(X)
    assert not np.allclose(a, b)


def test_n_jobs_sets_and_restores_torch_threads(shop_binary):
    db, task = shop_binary
    seen = []

    class Threads(Callback):
        def on_epoch_begin(self, net, **kwargs):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    RDLEstimator(**{**RDL, "n_jobs": 2, "callbacks": [("t", Threads())]}).fit(db, task)
    assert seen == [2, 2, 2] and torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_cuda_falls_back_to_cpu_with_a_warning(shop_binary):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    db, task = shop_binary
    with pytest.warns(UserWarning, match="CUDA is not available"):
        est = RelGTEstimator(**{**RELGT, "max_epochs": 1, "device": "cuda"}).fit(db, task)
    assert next(est.module_.parameters()).device.type == "cpu"


@pytest.mark.parametrize("cls,params", [(RDLEstimator, RDL), (RelGTEstimator, RELGT)])
def test_embed_shape_and_order(cls, params, shop_binary):
    db, task = shop_binary
    est = cls(**{**params, "max_epochs": 1}).fit(db, task)
    X, _ = task.split(db, "test")
    full = est.embed(X)
    assert full.shape == (len(X), params["channels"]) and np.isfinite(full).all()
    np.testing.assert_allclose(est.embed(X[3:9]), full[3:9], rtol=1e-5, atol=1e-6)


class _Toy:
    """A loader of (features, y) batches over a fixed tensor, in a shuffled order with order()."""

    class B:
        def __init__(self, x, y):
            self.x, self.y = x, y

        def to(self, device):
            return self

    def __init__(self, x, y, perm):
        self.x, self.y, self.perm = x, y, perm

    def __len__(self):
        return 2

    def order(self):
        return self.perm

    def __iter__(self):
        for part in np.array_split(self.perm, 2):
            yield self.B(self.x[part], None if self.y is None else self.y[part])


def test_predict_raw_puts_rows_back_in_order():
    x = torch.arange(6, dtype=torch.float32)[:, None]
    lin = torch.nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.zero_()

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, b):
            return self.lin(b.x).squeeze(-1)

    out = predict_raw(M(), _Toy(x, None, np.array([4, 0, 5, 2, 1, 3])))
    np.testing.assert_array_equal(out.numpy(), np.arange(6, dtype=np.float32))
    batches = Batches(_Toy(x, torch.zeros(6), np.arange(6)), max_steps=1)
    assert len(batches) == 1 and len(list(batches)) == 1


def test_skorch_checkpoint_callback_saves_the_best_epoch(shop_binary, tmp_path):
    from skorch.callbacks import Checkpoint

    db, task = shop_binary
    ckpt = Checkpoint(monitor="valid_score_best", dirname=str(tmp_path), f_optimizer=None, f_criterion=None,
                      f_history=None)
    est = RDLEstimator(**{**RDL, "callbacks": [("ckpt", ckpt)]}).fit(db, task)
    saved = torch.load(tmp_path / "params.pt", weights_only=True)
    best = {k: v for k, v in est.module_.state_dict().items()}
    assert saved.keys() == best.keys()
    assert all(torch.equal(saved[k], best[k]) for k in best)  # the checkpoint holds the restored best epoch
