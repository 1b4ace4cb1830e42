"""What the components of the task embedding share: the rows they read, their settings, the
result type and the affinities' validation score."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...data import Database, RelationalDataset
from ...metrics import METRICS

__all__ = ["TaskEmbedding", "EmbeddingRows", "EmbeddingSettings", "affinity_score", "logger"]

#: One logger for the whole embedding (``verbose`` logs at INFO on it, DEBUG otherwise).
logger = logging.getLogger("skrel.relatron.embedding")


class TaskEmbedding(dict):
    """A flat mapping of entry name -> float, with the seconds each component took.

    ``dict(result)`` gives the named floats; ``result.seconds`` maps each computed component to
    its wall-clock seconds.

    Attributes
    ----------
    seconds : dict of str to float
        Wall-clock seconds per component, in the order they ran.
    cpu_seconds : dict of str to float
        CPU seconds of this process per component (all its threads): on a shared machine, a
        measure of the work that does not count time spent waiting for a core.
    task_type : str
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    """

    def __init__(self, values=(), seconds=None, task_type: str = "", cpu_seconds=None):
        super().__init__(values)
        self.seconds: dict[str, float] = dict(seconds or {})
        self.cpu_seconds: dict[str, float] = dict(cpu_seconds or {})
        self.task_type = task_type

    def to_series(self) -> pd.Series:
        """The entries as a float pandas Series, in insertion order."""
        return pd.Series(dict(self), dtype=np.float64)

    def __repr__(self) -> str:
        return f"TaskEmbedding({len(self)} entries, seconds={ {k: round(v, 2) for k, v in self.seconds.items()} })"


@dataclass(frozen=True)
class EmbeddingRows:
    """The rows every component reads, prepared once by :func:`~skrel.relatron.embedding.embed_task`.

    Attributes
    ----------
    db : Database
        The database cut at the last training or validation cutoff (nothing later is read).
    train : RelationalDataset
        Every training row, over ``db``, in (cutoff, entity) order.
    y_train : ndarray
        Their labels (float64 for regression).
    val, y_val : RelationalDataset and ndarray, or None
        Every validation row, likewise; None without validation rows.
    train_sample, val_sample : ndarray of int
        Seeded subsamples of ``train`` and ``val`` (row positions in a random order, so any prefix
        is a uniform subsample too), for the affinities.
    task_type : str
    name : str
        The task's name, for messages.
    """

    db: Database
    train: RelationalDataset
    y_train: np.ndarray
    val: RelationalDataset | None
    y_val: np.ndarray | None
    train_sample: np.ndarray
    val_sample: np.ndarray
    task_type: str
    name: str

    @property
    def regression(self) -> bool:
        return self.task_type == "regression"


@dataclass(frozen=True)
class EmbeddingSettings:
    """The settings of :func:`~skrel.relatron.embedding.embed_task` the components read (see there)."""

    max_pairs: int | None = 2_000_000
    max_hops: int = 3
    path_rows: tuple = (500, 250)
    random_state: int = 0
    feature_learner: Any = None
    model_path: Any = None
    n_jobs: int | None = None
    verbose: int = 0


def affinity_score(task_type: str, y_train: np.ndarray, y_val: np.ndarray, pred: np.ndarray) -> float:
    """The affinities' validation score, greater is better, through :data:`skrel.metrics.METRICS`.

    Binary: ROC AUC. Multiclass: macro one-vs-rest ROC AUC over the validation rows whose class
    was seen in training, probabilities renormalised over the training classes. Regression: the
    MAE skill ``1 - MAE(pred) / MAE(median of y_train)`` (0 for the constant median, 1 for a
    perfect fit). ``pred`` is the probability matrix (one column per class of
    ``np.unique(y_train)``) or the predicted values. NaN when the score is undefined (a single
    validation class; a constant validation target).
    """
    if task_type == "regression":
        mae = METRICS["mae"].fn
        base = float(mae(y_val, np.full(len(y_val), np.median(y_train)), None))
        return 1.0 - float(mae(y_val, pred, None)) / base if base > 0 else np.nan
    if len(np.unique(y_val)) < 2:
        return np.nan
    classes = np.unique(y_train)
    if task_type == "binary":
        return float(METRICS["roc_auc"].fn(y_val, pred, classes))
    keep = np.isin(y_val, classes)
    if len(np.unique(y_val[keep])) < 2:
        return np.nan
    proba = pred[keep]
    proba = proba / proba.sum(axis=1, keepdims=True)
    return float(METRICS["roc_auc"].fn(y_val[keep], proba, classes))
