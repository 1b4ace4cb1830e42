"""Prediction heads: a linear layer on seed embeddings, its loss, and its output transform.

RelBench's recipe: binary classification with binary cross-entropy on one logit; regression with
L1 loss (here lightly smoothed), predictions clamped to the 2-98% quantile range of the training
targets; multiclass with cross-entropy on ``n_classes`` logits.

Regression targets are often zero-inflated (most entities do nothing in a window), and the plain
recipe then predicted a constant in both graph families:

- outputs on a unit scale: L1 gradients carry no magnitude, so outputs crawl towards targets in
  the tens while the tied rows pull every output back to the median (0);
- plain L1 pins a deep model to the tie: 90% of the rows push every output to it with full-size
  gradients, however close, and RelGT's representation collapsed (its feed-forward block went
  dead: the training loss stayed at the MAE of predicting 0 for every epoch);
- the 2-98% range collapses to one value when more than 96% of the targets tie.

So the head scales its outputs (by default from the clamp range), smooths L1 within a tenth of
that scale of the fit (Huber: the minimiser is still the median, up to that width), and ignores a
degenerate clamp range; :func:`regression_target_stats` computes a clamp range that never
collapses, the median and a positive scale from the targets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["PredictionHead", "regression_target_stats"]


def regression_target_stats(y) -> dict:
    """Clamp range, offset and scale of a regression head from training targets, robust to ties.

    Parameters
    ----------
    y : array-like of shape (n,)
        Training targets (finite).

    Returns
    -------
    dict
        ``clamp``: the 2-98% quantile range, or ``(min, max)`` where that range is a single value
        (more than 96% of the targets tied), so that predictions are never forced to a constant;
        ``loc``: the median (the best constant under L1); ``scale``: the mean absolute deviation
        from the median, else the standard deviation, else 1 (never 0). Pass them as
        ``PredictionHead(..., **regression_target_stats(y))``.

    Examples
    --------
    >>> y = [0.0] * 99 + [20.0]  # the 2-98% range is [0, 0]
    >>> regression_target_stats(y)
    {'clamp': (0.0, 20.0), 'loc': 0.0, 'scale': 0.2}
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    y = y[np.isfinite(y)]
    if y.size == 0:
        raise ValueError("regression_target_stats needs at least one finite target.")
    lo, hi = (float(v) for v in np.quantile(y, [0.02, 0.98]))
    if not hi > lo:
        lo, hi = float(y.min()), float(y.max())
    loc = float(np.median(y))
    scale = float(np.mean(np.abs(y - loc)))
    if not scale > 0:
        scale = float(y.std())
    if not scale > 0:
        scale = 1.0
    return {"clamp": (lo, hi), "loc": loc, "scale": scale}


class PredictionHead(nn.Module):
    """Linear head for ``task_type`` with its loss and output transform.

    Parameters
    ----------
    channels : int
        Input width.
    task_type : {"binary", "regression", "multiclass"}
    n_classes : int, default=2
        Number of classes (multiclass).
    clamp : tuple of float, optional
        ``(low, high)`` bounds of regression predictions (not applied to the training loss). A
        degenerate range (``high <= low``, e.g. the 2-98% range of targets that are 97% zeros)
        would turn every prediction into one constant; it is ignored.
    loc : float or array of shape (n_classes,), default=0.0
        Offset of the raw outputs: regression ``loc + b + scale * (W h)``, binary ``loc + lin(h)``
        (a logit), multiclass ``loc + lin(h)`` (logits). With the training targets' median, or
        the log-odds / log-priors of the classes, the head starts at the best constant
        prediction instead of spending its first steps getting there.
    scale : float, optional
        Regression scale of ``W h`` (the targets' spread), so that Adam's roughly ``lr``-sized
        steps move outputs on the targets' scale; the bias ``b`` stays in target units (setting
        it to the median starts the head at the median). By default a quarter of a given
        non-degenerate ``clamp`` range (about one standard deviation for normal targets), else 1.
        Both are reparametrisations: the model family is that of a plain linear layer.
        :func:`regression_target_stats` computes ``clamp``, ``loc`` and ``scale`` from targets.
    smoothing : float, default=0.1
        Regression loss: L1 smoothed within ``smoothing * scale`` of the target (Huber; 0 gives
        plain L1). Its minimiser is the median up to ``O(smoothing * scale)``, but near the fit
        its gradient is proportional to the error instead of its sign: when most targets tie
        (zero-inflated targets), the tied rows no longer pin every output to the tie with
        full-size gradients, which with plain L1 drove RelGT's representation to a constant.

    Shapes
    ------
    ``forward(h (B, channels))`` -> raw outputs ``(B,)`` (binary, regression) or ``(B, n_classes)``;
    ``loss(raw, y)`` -> scalar, ``y`` float (B,) or int64 (B,) class indices;
    ``transform(raw)`` -> numpy: probabilities ``(B, n_classes)`` or values ``(B,)``.
    """

    def __init__(self, channels: int, task_type: str, n_classes: int = 2, clamp: tuple | None = None,
                 loc=0.0, scale: float | None = None, smoothing: float = 0.1):
        super().__init__()
        if task_type not in ("binary", "regression", "multiclass"):
            raise ValueError(f"task_type must be binary, regression or multiclass, got {task_type!r}.")
        self.task_type = task_type
        self.n_classes = int(n_classes)
        if clamp is not None:
            clamp = (float(clamp[0]), float(clamp[1]))
            if not np.all(np.isfinite(clamp)):
                raise ValueError(f"clamp must be finite, got {clamp}.")
            if not clamp[1] > clamp[0]:
                clamp = None
        self.clamp = clamp
        self.lin = nn.Linear(channels, self.n_classes if task_type == "multiclass" else 1)
        if scale is None:
            scale = (clamp[1] - clamp[0]) / 4.0 if clamp is not None and task_type == "regression" else 1.0
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}.")
        if not smoothing >= 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing}.")
        self.smoothing = float(smoothing)
        self.register_buffer("loc", torch.as_tensor(np.asarray(loc, dtype=np.float32)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def reset_parameters(self):
        self.lin.reset_parameters()

    def forward(self, h: Tensor) -> Tensor:
        if self.task_type == "regression":
            return self.loc + self.lin.bias[0] + self.scale * (h @ self.lin.weight[0])
        out = self.lin(h)
        if self.task_type == "multiclass":
            return out + self.loc
        return self.loc + out.squeeze(-1)

    def loss(self, raw: Tensor, y: Tensor) -> Tensor:
        if self.task_type == "binary":
            return F.binary_cross_entropy_with_logits(raw, y.to(raw.dtype))
        if self.task_type == "regression":
            if self.smoothing > 0:
                beta = self.smoothing * float(self.scale)
                return F.smooth_l1_loss(raw, y.to(raw.dtype), beta=beta)
            return F.l1_loss(raw, y.to(raw.dtype))
        return F.cross_entropy(raw, y.long())

    def transform(self, raw: Tensor) -> np.ndarray:
        raw = raw.detach().to("cpu", torch.float64)
        if self.task_type == "binary":
            p = torch.sigmoid(raw)
            return torch.stack([1 - p, p], dim=1).numpy()
        if self.task_type == "multiclass":
            return torch.softmax(raw, dim=1).numpy()
        if self.clamp is not None:
            raw = raw.clamp(*self.clamp)
        return raw.numpy()
