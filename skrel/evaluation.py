"""Scoring a fitted estimator on a task, the same way everywhere.

The command line, the benchmarks, model selection and the tests compute a task's metric through
this module: :data:`METRICS` is the one table of metrics, :func:`evaluate` scores a fitted
estimator, :func:`make_scorer` turns a metric into a scikit-learn scorer (higher is better) for
``scoring=`` of :class:`~sklearn.model_selection.GridSearchCV` and friends, and
:func:`fit_and_report` fits a family on a task and scores every split.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from typing import Callable, Iterable, NamedTuple

import numpy as np

__all__ = ["Metric", "METRICS", "evaluate", "make_scorer", "Scorer", "fit_and_report", "parse_params", "peak_rss_mb", "cpu_model",
           "make_estimator", "SELECTOR"]

logger = logging.getLogger(__name__)


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


def _get_metric(metric: str) -> Metric:
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
    spec = _get_metric(metric)
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
        self.sign = 1.0 if _get_metric(metric).greater_is_better else -1.0

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


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux: ``ru_maxrss`` is in kilobytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fit_and_report(dataset: str, db, task, model: str, params: dict | None = None, verbose: int = 0,
                   return_estimator: bool = False):
    """Fit a family on ``task``'s train split (val for early stopping) and score val, test and test_asof.

    Parameters
    ----------
    dataset : str
        Name reported in the result (e.g. ``"f1"``, or the database's URL).
    db : Database
    task : Task
    model : str
        A family name of :data:`skrel.estimators.registry.FAMILIES`, or ``"relatron"``
        (:class:`~skrel.relatron.RelatronSelector`).
    params : dict, optional
        Estimator parameters (checked by ``set_params``).
    verbose : int, default=0
        Passed to the estimator's ``verbose`` when nonzero.
    return_estimator : bool, default=False
        Return ``(result, fitted estimator)`` instead of the result alone.

    Returns
    -------
    dict
        ``dataset``, ``task``, ``model``, ``metric``, ``val``, ``test``, ``test_asof`` (the metric,
        in its own direction), ``fit_seconds``, ``peak_rss_mb``, for torch families ``epochs``,
        ``seconds_per_epoch`` and ``train_seconds_per_epoch``, and ``params``: the values of the
        parameters given.
    """
    params = dict(params or {})
    est = make_estimator(model, params)
    if verbose and "verbose" in est.get_params():
        est.set_params(verbose=verbose)
    logger.info("fitting %s on %s/%s", model, dataset, task.name)
    t0 = time.perf_counter()
    est.fit(db, task)
    fit_seconds = time.perf_counter() - t0
    result = {"dataset": dataset, "task": task.name, "model": model, "metric": task.metric}
    for split in ("val", "test", "test_asof"):
        X, y = task.split(db, split)
        result[split] = evaluate(est, X, y, task.metric)
    result["fit_seconds"] = round(fit_seconds, 3)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    history = getattr(est, "history_", None)
    if history:
        result["epochs"] = len(history)
        result["seconds_per_epoch"] = round(sum(h["seconds"] for h in history) / len(history), 2)
        result["train_seconds_per_epoch"] = round(sum(h["train_seconds"] for h in history) / len(history), 2)
    result["params"] = {k: v for k, v in est.get_params().items() if k in params}
    if model == SELECTOR:
        result.update(selected_family=est.selected_family_, macro_reason=est.macro_reason_, fits=est.n_fits_,
                      candidates=sorted(set(est.macro_proba_) | {est.selected_family_}),
                      best_params=json.loads(json.dumps(est.best_params_, default=str)))
    return (result, est) if return_estimator else result


#: The command line's and the benchmarks' name for :class:`~skrel.relatron.RelatronSelector`.
SELECTOR = "relatron"


def make_estimator(model: str, params: dict | None = None):
    """A family's estimator (:func:`~skrel.estimators.registry.make_model`) or, for ``"relatron"``,
    a :class:`~skrel.relatron.RelatronSelector`, with ``params`` set."""
    params = dict(params or {})
    if model == SELECTOR:
        from .relatron.selector import RelatronSelector

        return RelatronSelector().set_params(**params)
    from .estimators.registry import make_model

    return make_model(model, **params)


def parse_params(items: Iterable[str] | None) -> dict:
    """Parse ``KEY=VALUE`` strings (the command line's ``--set``) into a parameter dict.

    Each value is parsed as JSON when it parses (``20``, ``0.1``, ``[8, 4]``, ``null``, ``true``),
    Python's ``None``, ``True`` and ``False`` are understood too, and anything else is kept as a
    string (``aggr=mean``). A later item overrides an earlier one.

    Raises
    ------
    ValueError
        An item has no ``=`` or an empty key.

    Examples
    --------
    >>> parse_params(["n_estimators=20", "fanouts=[8, 4]", "aggr=mean", "device=null", "max_features=None"])
    {'n_estimators': 20, 'fanouts': [8, 4], 'aggr': 'mean', 'device': None, 'max_features': None}
    """
    params = {}
    for item in items or []:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r} (e.g. n_estimators=200).")
        python = {"None": None, "True": True, "False": False}
        if raw.strip() in python:
            value = python[raw.strip()]
        else:
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
        params[key] = value
    return params
