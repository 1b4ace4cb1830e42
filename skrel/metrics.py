"""Task metrics, defined once: :data:`METRICS` is the one table, :func:`evaluate` scores a fitted
estimator, :func:`make_scorer` turns a metric into a scikit-learn scorer (higher is better) for
``scoring=`` of :class:`~sklearn.model_selection.GridSearchCV` and friends.

This module is the bottom layer, with :mod:`skrel.utils`: it imports nothing else from skrel, so
the data layer (task files name a metric), the families, the selector and the command line all
read the same table.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

__all__ = ["Metric", "METRICS", "evaluate", "make_scorer", "Scorer", "get_metric"]


class Metric(NamedTuple):
    """One task metric.

    ``fn(y, pred, classes)`` computes it from the labels and the estimator's output (``needs``:
    ``"proba"``, the :meth:`predict_proba` matrix, or ``"predict"``); ``greater_is_better`` says
    which way is better, and :func:`make_scorer` negates the others.
    """

    fn: Callable
    needs: str
    greater_is_better: bool


def _roc_auc(y, proba, classes):
    from sklearn.metrics import roc_auc_score

    if proba.shape[1] == 2:
        return roc_auc_score(np.searchsorted(classes, y), proba[:, 1])
    return roc_auc_score(np.searchsorted(classes, y), proba, multi_class="ovr", labels=np.arange(len(classes)))


def _accuracy(y, pred, classes):
    from sklearn.metrics import accuracy_score

    return accuracy_score(y, pred)


def _log_loss(y, proba, classes):
    from sklearn.metrics import log_loss

    return log_loss(y, proba, labels=classes)


def _mae(y, pred, classes):
    from sklearn.metrics import mean_absolute_error

    return mean_absolute_error(y, pred)


def _rmse(y, pred, classes):
    from sklearn.metrics import mean_squared_error

    return float(np.sqrt(mean_squared_error(y, pred)))


def _r2(y, pred, classes):
    from sklearn.metrics import r2_score

    return r2_score(y, pred)


METRICS: dict[str, Metric] = {
    "roc_auc": Metric(_roc_auc, "proba", True),
    "accuracy": Metric(_accuracy, "predict", True),
    "log_loss": Metric(_log_loss, "proba", False),
    "mae": Metric(_mae, "predict", False),
    "rmse": Metric(_rmse, "predict", False),
    "r2": Metric(_r2, "predict", True),
}


def get_metric(metric: str) -> Metric:
    """The :class:`Metric` called ``metric``; an unknown name is a ``ValueError`` listing the known ones."""
    try:
        return METRICS[metric]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown metric {metric!r}; choose one of {sorted(METRICS)}.") from None


def evaluate(estimator, X, y, metric: str) -> float:
    """``metric`` of a fitted estimator on ``(X, y)``, in the metric's own direction.

    Parameters
    ----------
    estimator : fitted skrel estimator
    X : RelationalDataset
    y : array-like of shape (n,)
    metric : str
        A key of :data:`METRICS`: ``"roc_auc"`` (a fraction in [0, 1]; one-vs-rest macro average
        for more than two classes), ``"accuracy"``, ``"log_loss"``, ``"mae"``, ``"rmse"``, ``"r2"``.

    Returns
    -------
    float
        Lower is better for ``log_loss``, ``mae`` and ``rmse``; use :func:`make_scorer` for a
        score where higher is always better.
    """
    spec = get_metric(metric)
    y = np.asarray(y)
    classes = getattr(estimator, "classes_", None)
    if spec.needs == "proba":
        if not hasattr(estimator, "predict_proba"):
            raise ValueError(
                f"Metric {metric!r} needs predicted probabilities, but {type(estimator).__name__} is a regressor "
                "here; use 'mae', 'rmse' or 'r2' for a regression task."
            )
        pred = estimator.predict_proba(X)
    else:
        pred = estimator.predict(X)
    return float(spec.fn(y, pred, classes))


class Scorer:
    """A scikit-learn scorer ``scorer(estimator, X, y) -> float`` for one metric, higher is better.

    Metrics where lower is better (``log_loss``, ``mae``, ``rmse``) are negated, as scikit-learn's
    ``"neg_..."`` scorers are. Build one with :func:`make_scorer`.
    """

    def __init__(self, metric: str):
        self.metric = metric
        self.sign = 1.0 if get_metric(metric).greater_is_better else -1.0

    def __call__(self, estimator, X, y) -> float:
        return self.sign * evaluate(estimator, X, y, self.metric)

    def __repr__(self) -> str:
        return f"make_scorer({self.metric!r})"


def make_scorer(metric: str) -> Scorer:
    """A scorer for ``scoring=`` of scikit-learn's model selection, over RelationalDataset ``X``.

    Parameters
    ----------
    metric : str
        A key of :data:`METRICS`.

    Returns
    -------
    Scorer
        Callable ``(estimator, X, y) -> float`` where higher is better: ``roc_auc``,
        ``accuracy`` and ``r2`` as they are; ``log_loss``, ``mae`` and ``rmse`` negated.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skrel import BaselineEstimator, TemporalSplit
    >>> search = GridSearchCV(BaselineEstimator(), {"num_leaves": [15, 31]}, cv=TemporalSplit(n_splits=2),
    ...                       scoring=make_scorer("mae"))  # doctest: +SKIP
    """
    return Scorer(metric)
