"""Saved models: a fitted estimator or selector in one joblib file, with its card.

The file holds one dict: the magic key ``"skrel_model"`` (the file format's version), the
``"card"`` and the ``"estimator"``. The card (:func:`model_card`) is small and JSON-serialisable:

- ``skrel_version``, ``versions`` (Python and the key libraries installed), ``created`` (UTC);
- ``estimator``: class, registry family (``"relatron"`` for the selector), parameters;
- ``task``: name, entity table and column, target, type, window, metric, split timestamps (the
  parts known: a model fitted with ``fit(X, y)`` has no task name, window nor metric);
- ``classes`` (classifiers);
- ``schema``: the training database's tables with their columns' dtypes and kinds, keys, time
  column and rows (:func:`skrel.data.drift.describe_schema`), and ``categories``, the values of its
  low-cardinality string columns;
- ``fingerprint``: the fingerprint (:attr:`skrel.data.Database.fingerprint`) of the database
  given to ``fit``;
- ``scores``: what the caller measured (``skrel fit --save``: the metric on val, test and as-of
  test);
- ``train_cutoffs``, ``val_cutoffs``: first and last cutoff of the training and validation rows;
  ``n_train_rows``; ``data_range``: first and last time of the training database.

:func:`load_model` returns the estimator with the card as ``model_card_``;
:meth:`~skrel.estimators.RelationalEstimator.predict_frame` then checks the database it predicts
on against it (:mod:`skrel.data.drift`). Loading runs pickle: load only files you trust.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd

import skrel
from .data import Database, RelationalDataset
from .data.drift import describe_categories, describe_schema
from .estimators.registry import FAMILIES
from .evaluation import SELECTOR
from .utils import check_directory

__all__ = ["save_model", "load_model", "model_card", "ModelFileError", "ModelVersionWarning",
           "MAGIC", "FORMAT_VERSION"]

#: The key that marks a joblib file as a skrel model; its value is the file format's version.
MAGIC = "skrel_model"
FORMAT_VERSION = 1

#: Libraries whose versions the card records, when installed.
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy", "joblib", "pyarrow", "duckdb", "lightgbm", "torch",
              "torch_geometric", "pytorch_frame", "skorch", "sqlalchemy")


class ModelFileError(ValueError):
    """The file is not a skrel model (unreadable, or a pickle without a skrel model card)."""


class ModelVersionWarning(UserWarning):
    """The model file was written by another skrel version."""


def _iso(t) -> str | None:
    return None if t is None or pd.isna(t) else pd.Timestamp(t).isoformat()


def _range(cutoffs) -> list[str] | None:
    if cutoffs is None or len(cutoffs) == 0:
        return None
    return [_iso(cutoffs.min()), _iso(cutoffs.max())]


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _jsonable(value):
    return json.loads(json.dumps(value, default=repr))


def _family(estimator) -> str | None:
    """The registry name of the estimator's class (``"relatron"`` for the selector), else None."""

    cls = type(estimator)
    for name, spec in FAMILIES.items():
        if spec.module == cls.__module__ and spec.cls == cls.__name__:
            return name
    selector = sys.modules.get("skrel.relatron.selector")  # imported already if this is a selector
    if selector is not None and isinstance(estimator, selector.RelatronSelector):
        return SELECTOR
    return None


def _task_part(estimator, entity_table: str) -> dict:
    task = getattr(estimator, "task_", None)
    if task is None:
        return {"name": None, "entity_table": entity_table, "task_type": estimator.task_type_}
    return {
        "name": task.name, "entity_table": task.entity_table, "entity_col": task.entity_col,
        "target_col": task.target_col, "task_type": task.task_type, "window": str(task.window),
        "metric": task.metric, "val_timestamp": _iso(task.val_timestamp), "test_timestamp": _iso(task.test_timestamp),
    }


def model_card(estimator, *, db=None, X=None, scores: dict | None = None) -> dict:
    """The card of a fitted skrel estimator or selector (see the module notes).

    Parameters
    ----------
    estimator : fitted RelationalEstimator or RelatronSelector
    db : Database, optional
        The database given to ``fit(db, task)`` (the task is the estimator's ``task_``): the card's
        schema is the one of the training rows' database (``db`` cut at the test timestamp), and its
        cutoff ranges those of the task's train and val splits.
    X : RelationalDataset, optional
        The training rows given to ``fit(X, y)``. Give ``db`` or ``X``.
    scores : dict, optional
        Scores to record (e.g. ``{"metric": "roc_auc", "val": 0.93, "test": 0.86}``).

    Returns
    -------
    dict
    """
    from sklearn.utils.validation import check_is_fitted


    check_is_fitted(estimator, "task_type_")
    if (db is None) == (X is None):
        raise ValueError("model_card needs the training data: db (the Database given to fit(db, task)) or X (the "
                         "training rows given to fit(X, y)), not both.")
    val_cutoffs = None
    if db is not None:
        if not isinstance(db, Database):
            raise TypeError(f"db must be a skrel Database, got {type(db).__name__}.")
        task = getattr(estimator, "task_", None)
        if task is None:
            raise ValueError(f"{type(estimator).__name__} was fitted with fit(X, y): give its training rows as X=, "
                             "not db=.")
        X, _ = task.split(db, "train")
        val_cutoffs = task.split(db, "val")[0].cutoffs
        fingerprint = db.fingerprint
    else:
        if not isinstance(X, RelationalDataset):
            raise TypeError(f"X must be the training RelationalDataset, got {type(X).__name__}.")
        fingerprint = X.db.fingerprint
    schema = describe_schema(X.db)
    classes = getattr(estimator, "classes_", None)
    return {
        "skrel_version": skrel.__version__,
        "versions": _versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "estimator": {
            "class": f"{type(estimator).__module__}.{type(estimator).__name__}",
            "family": _family(estimator),
            "selected_family": getattr(estimator, "selected_family_", None),
            "params": _jsonable(estimator.get_params(deep=False)),
        },
        "task": _task_part(estimator, X.entity_table),
        "classes": None if classes is None else _jsonable(pd.Series(classes).tolist()),
        "schema": schema,
        "categories": describe_categories(X.db, schema),
        "fingerprint": fingerprint,
        "scores": _jsonable(dict(scores or {})),
        "train_cutoffs": _range(X.cutoffs),
        "val_cutoffs": _range(val_cutoffs),
        "n_train_rows": int(len(X)),
        "data_range": [_iso(X.db.min_time), _iso(X.db.max_time)],
    }


def save_model(estimator, path, *, db=None, X=None, scores: dict | None = None) -> Path:
    """Save a fitted estimator or selector with its card (:func:`model_card`) in one joblib file.

    Parameters
    ----------
    estimator : fitted RelationalEstimator or RelatronSelector
    path : str or path-like
        The file to write (replaced if it exists; its directory must exist).
    db, X, scores
        As :func:`model_card`: the database given to ``fit(db, task)``, or the training rows given
        to ``fit(X, y)``; scores to record.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> est = DFSEstimator().fit(db, task)  # doctest: +SKIP
    >>> save_model(est, "model.joblib", db=db)  # doctest: +SKIP
    >>> load_model("model.joblib").model_card_["task"]["name"]  # doctest: +SKIP
    'plane-cancel'
    """
    import joblib

    path = Path(path)
    check_directory(path)
    card = model_card(estimator, db=db, X=X, scores=scores)
    payload = {MAGIC: FORMAT_VERSION, "card": card, "estimator": estimator}
    # written beside the target then renamed: an interrupted save never leaves half a model
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        joblib.dump(payload, tmp, compress=3)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_model(path):
    """Load a model saved by :func:`save_model` (or ``skrel fit --save``).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    estimator
        The fitted estimator or selector, with its card as ``model_card_`` (a dict).

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        The file is not a skrel model: joblib cannot read it, or it holds something without a skrel
        model card, or a newer format.
    ImportError
        The model needs a package that is not installed (torch for the graph families).

    Warns
    -----
    ModelVersionWarning
        The file was written by another skrel version.
    """
    import joblib


    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file {str(path)!r}.")
    how = "save models with skrel.persist.save_model or `skrel fit ... --save FILE`"
    try:
        payload = joblib.load(path)
    except ImportError as exc:
        raise ImportError(f"Model file {str(path)!r} needs a package that is not installed: {exc}") from exc
    except Exception as exc:  # pickle raises many types on a foreign file: all mean "not a model"
        raise ModelFileError(f"{str(path)!r} is not a skrel model file: joblib cannot read it "
                             f"({type(exc).__name__}: {exc}); {how}.") from None
    if not isinstance(payload, dict) or MAGIC not in payload:
        raise ModelFileError(f"{str(path)!r} is a joblib file holding a {type(payload).__name__}, not a skrel model "
                             f"(no skrel model card); {how}.")
    if not isinstance(payload[MAGIC], int) or payload[MAGIC] > FORMAT_VERSION:
        raise ModelFileError(f"{str(path)!r} has skrel model format {payload[MAGIC]!r}; this skrel reads format "
                             f"{FORMAT_VERSION} and older. Upgrade skrel.")
    card, estimator = payload["card"], payload["estimator"]
    if card.get("skrel_version") != skrel.__version__:
        warnings.warn(f"{str(path)!r} was saved by skrel {card.get('skrel_version')}; this is skrel {skrel.__version__}. "
                      "It may predict differently; refit with this version to be sure.", ModelVersionWarning,
                      stacklevel=2)
    estimator.model_card_ = card
    return estimator
