"""Fit a family (or the selector) on a task and score every split: the glue of the command line and
the benchmarks (the top layer, beside :mod:`skrel.cli`).

The metrics themselves live in :mod:`skrel.metrics` (the bottom layer); they are re-exported here
for code written against this module.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Iterable

from .metrics import METRICS, Metric, Scorer, evaluate, make_scorer
from .utils import cpu_model, peak_rss_mb

__all__ = ["Metric", "METRICS", "evaluate", "make_scorer", "Scorer", "fit_and_report", "parse_params", "peak_rss_mb", "cpu_model",
           "make_estimator", "SELECTOR"]

logger = logging.getLogger(__name__)


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

    return make_model(model, params)


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
