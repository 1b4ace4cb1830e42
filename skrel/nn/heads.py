"""Prediction heads: a linear layer on seed embeddings, its loss, and its output transform.

RelBench's recipe: binary classification with binary cross-entropy on one logit; regression with
L1 loss, predictions clamped to the 2-98% quantile range of the training targets; multiclass with
cross-entropy on ``n_classes`` logits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["PredictionHead"]


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
        ``(low, high)`` bounds of regression predictions (not applied to the training loss).
    loc : float or array of shape (n_classes,), default=0.0
        Offset of the raw outputs: regression ``loc + scale * lin(h)``, binary ``loc + lin(h)``
        (a logit), multiclass ``loc + lin(h)`` (logits). With the training targets' median, or
        the log-odds / log-priors of the classes, the head starts at the best constant
        prediction instead of spending its first steps getting there.
    scale : float, default=1.0
        Regression output scale (the targets' spread), so that Adam's roughly ``lr``-sized steps
        move outputs on the targets' scale. Both are reparametrisations: the model family is
        that of a plain linear layer.

    Shapes
    ------
    ``forward(h (B, channels))`` -> raw outputs ``(B,)`` (binary, regression) or ``(B, n_classes)``;
    ``loss(raw, y)`` -> scalar, ``y`` float (B,) or int64 (B,) class indices;
    ``transform(raw)`` -> numpy: probabilities ``(B, n_classes)`` or values ``(B,)``.
    """

    def __init__(self, channels: int, task_type: str, n_classes: int = 2, clamp: tuple | None = None,
                 loc=0.0, scale: float = 1.0):
        super().__init__()
        if task_type not in ("binary", "regression", "multiclass"):
            raise ValueError(f"task_type must be binary, regression or multiclass, got {task_type!r}.")
        self.task_type = task_type
        self.n_classes = int(n_classes)
        self.clamp = None if clamp is None else (float(clamp[0]), float(clamp[1]))
        self.lin = nn.Linear(channels, self.n_classes if task_type == "multiclass" else 1)
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}.")
        self.register_buffer("loc", torch.as_tensor(np.asarray(loc, dtype=np.float32)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def reset_parameters(self):
        self.lin.reset_parameters()

    def forward(self, h: Tensor) -> Tensor:
        out = self.lin(h)
        if self.task_type == "multiclass":
            return out + self.loc
        out = out.squeeze(-1)
        return self.loc + (self.scale * out if self.task_type == "regression" else out)

    def loss(self, raw: Tensor, y: Tensor) -> Tensor:
        if self.task_type == "binary":
            return F.binary_cross_entropy_with_logits(raw, y.to(raw.dtype))
        if self.task_type == "regression":
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
