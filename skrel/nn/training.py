"""A training loop with skorch's shape, for any module over any batch loader.

``fit`` is a short chain of overridable steps::

    fit(train_loader, val_loader)
      initialize()                 -> module to device, initialize_optimizer(), history
      fit_loop(train_loader, val_loader)
        for each epoch:
          run_epoch(train_loader, epoch)   -> train_step(batch) per batch (at most max_steps_per_epoch)
          validate(val_loader)             -> score_fn(raw outputs, targets)
          on_epoch_end(epoch, record)      -> best-state snapshot, early stopping
        restore the best epoch's weights

The protocol it asks of the caller:

- a batch has ``batch.to(device)`` (returning the moved batch) and ``batch.y`` (the targets);
- ``module(batch)`` returns the raw outputs, ``loss_fn(raw, batch.y)`` a scalar loss;
- a loader is re-iterable, one pass per epoch; if it has ``set_epoch(epoch)`` it is called first
  (so it can reshuffle and resample deterministically per epoch).

Seeding is the caller's: seed torch before building the module and calling ``fit``.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["Trainer", "predict_raw"]


class Trainer:
    """Adam training with per-epoch validation, early stopping and best-epoch restore.

    Parameters
    ----------
    module : torch.nn.Module
        Called as ``module(batch) -> raw outputs``.
    loss_fn : callable, optional
        ``loss_fn(raw, y) -> scalar tensor``; defaults to ``module.loss``.
    lr : float, default=0.005
    weight_decay : float, default=0.0
    epochs : int, default=10
    max_steps_per_epoch : int or None, default=None
        Stop an epoch after this many batches (the loader decides which batches come first).
    patience : int or None, default=None
        Stop when the validation score has not improved for this many epochs (None: never).
    score_fn : callable, optional
        ``score_fn(raw (cpu tensor), y (cpu tensor)) -> float`` on the validation loader;
        without it, or without a validation loader, the last epoch is kept.
    higher_is_better : bool, default=True
        Direction of ``score_fn``.
    device : str or torch.device, default="cpu"
    grad_clip : float or None, default=None
        Clip the gradient norm to this value.
    log : callable, optional
        ``log(message)`` for progress lines.

    Attributes
    ----------
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_score``, ``steps``, ``seconds`` (wall, with
        validation), ``train_seconds`` (wall, training only), ``train_cpu_seconds`` (process CPU
        time of the training pass, all threads).
    best_epoch_ : int
    best_score_ : float or None
    """

    def __init__(self, module: nn.Module, loss_fn: Callable | None = None, *, lr: float = 0.005,
                 weight_decay: float = 0.0, epochs: int = 10, max_steps_per_epoch: int | None = None,
                 patience: int | None = None, score_fn: Callable | None = None, higher_is_better: bool = True,
                 device="cpu", grad_clip: float | None = None, log: Callable[[str], None] | None = None):
        self.module = module
        self.loss_fn = loss_fn if loss_fn is not None else module.loss
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.max_steps_per_epoch = max_steps_per_epoch
        self.patience = patience
        self.score_fn = score_fn
        self.higher_is_better = higher_is_better
        self.device = torch.device(device)
        self.grad_clip = grad_clip
        self.log = log or (lambda msg: None)

    # ------------------------------------------------------------------ chain
    def fit(self, train_loader, val_loader=None) -> "Trainer":
        self.initialize()
        self.fit_loop(train_loader, val_loader)
        return self

    def initialize(self) -> "Trainer":
        self.module.to(self.device)
        self.optimizer_ = self.initialize_optimizer()
        self.history_ = []
        self.best_epoch_ = -1
        self.best_score_ = None
        self._best_state = None
        return self

    def initialize_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.module.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def fit_loop(self, train_loader, val_loader=None) -> None:
        for epoch in range(self.epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            loss, steps = self.run_epoch(train_loader, epoch)
            t1, c1 = time.perf_counter(), time.process_time()
            score = self.validate(val_loader)
            record = {"epoch": epoch, "train_loss": loss, "valid_score": score, "steps": steps,
                      "seconds": time.perf_counter() - t0, "train_seconds": t1 - t0, "train_cpu_seconds": c1 - c0}
            self.history_.append(record)
            stop = self.on_epoch_end(epoch, record)
            self.log(
                f"epoch {epoch + 1}/{self.epochs}: train loss {loss:.4f}"
                + ("" if score is None else f", valid {score:.4f}")
                + (" *" if self.best_epoch_ == epoch else "")
                + f" ({record['seconds']:.1f}s, {steps} steps)"
            )
            if stop:
                self.log(f"early stop: no improvement for {self.patience} epochs")
                break
        if self._best_state is not None:
            self.module.load_state_dict(self._best_state)
            self._best_state = None
        elif self.history_:
            self.best_epoch_ = self.history_[-1]["epoch"]

    def run_epoch(self, loader, epoch: int) -> tuple[float, int]:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        self.module.train()
        total, count, steps = 0.0, 0, 0
        for batch in loader:
            if self.max_steps_per_epoch is not None and steps >= self.max_steps_per_epoch:
                break
            loss, n = self.train_step(batch)
            total += loss * n
            count += n
            steps += 1
        return (total / max(count, 1)), steps

    def train_step(self, batch) -> tuple[float, int]:
        batch = batch.to(self.device)
        self.optimizer_.zero_grad(set_to_none=True)
        raw = self.module(batch)
        loss = self.loss_fn(raw, batch.y)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip)
        self.optimizer_.step()
        return float(loss.detach()), int(batch.y.shape[0])

    def on_epoch_end(self, epoch: int, record: dict) -> bool:
        score = record["valid_score"]
        if score is None:
            return False
        better = self.best_score_ is None or (score > self.best_score_ if self.higher_is_better
                                              else score < self.best_score_)
        if better:
            self.best_score_, self.best_epoch_ = score, epoch
            self._best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()}
        return self.patience is not None and epoch - self.best_epoch_ >= self.patience

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def infer(self, batch) -> torch.Tensor:
        return self.module(batch.to(self.device))

    def predict_raw(self, loader, with_targets: bool = False):
        """Raw outputs over ``loader`` concatenated on the CPU (and the targets when asked)."""
        return predict_raw(self.module, loader, self.device, with_targets)

    def validate(self, loader) -> float | None:
        if loader is None or self.score_fn is None:
            return None
        raw, y = self.predict_raw(loader, with_targets=True)
        return float(self.score_fn(raw, y))



@torch.no_grad()
def predict_raw(module: nn.Module, loader, device="cpu", with_targets: bool = False):
    """``module(batch)`` over ``loader`` in eval mode, concatenated on the CPU.

    Returns the raw outputs, or ``(raw, targets)`` when ``with_targets``.
    """
    module.eval()
    outs, ys = [], []
    for batch in loader:
        batch = batch.to(device)
        outs.append(module(batch).to("cpu"))
        if with_targets:
            ys.append(batch.y.to("cpu"))
    raw = torch.cat(outs) if outs else torch.zeros(0)
    return (raw, torch.cat(ys)) if with_targets else raw
