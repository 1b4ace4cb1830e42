"""Task metrics, computed the same way by the command line, the benchmarks and the selector."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

__all__ = ["METRICS", "evaluate", "greater_is_better"]

METRICS = {
    "roc_auc": (lambda y, p: skm.roc_auc_score(y, p[:, 1]), "proba", True),
    "accuracy": (lambda y, p: skm.accuracy_score(y, p), "predict", True),
    "log_loss": (lambda y, p: skm.log_loss(y, p), "proba", False),
    "mae": (lambda y, p: skm.mean_absolute_error(y, p), "predict", False),
    "rmse": (lambda y, p: float(np.sqrt(skm.mean_squared_error(y, p))), "predict", False),
    "r2": (lambda y, p: skm.r2_score(y, p), "predict", True),
}


def greater_is_better(metric: str) -> bool:
    return METRICS[metric][2]


def evaluate(estimator, X, y, metric: str) -> float:
    """``metric`` of a fitted estimator on ``(X, y)``; AUROC as a fraction in [0, 1]."""
    try:
        fn, needs, _ = METRICS[metric]
    except KeyError:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {sorted(METRICS)}.") from None
    if needs == "proba":
        pred = estimator.predict_proba(X)
        y = np.searchsorted(estimator.classes_, y) if metric == "roc_auc" else y
    else:
        pred = estimator.predict(X)
    return float(fn(np.asarray(y), pred))
