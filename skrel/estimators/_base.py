"""What every skrel estimator shares: the two ``fit`` signatures, task types and tags.

``est.fit(db, task)`` trains on the task's train split and hands its val split to early stopping
and selection; ``est.fit(X, y, X_val=..., y_val=...)`` is the same fit spelled out, and
``est.fit(X, y)`` works without a validation split. Subclasses implement ``_fit``,
``_predict_proba`` (classification) and ``_predict_values`` (regression).
"""

from __future__ import annotations

import logging
import sys
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._tags import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ..data import HORIZONS, Database, RelationalDataset, Task
from ..utils import check_labels_present, infer_task_type
from ..predict import PredictFrameMixin

__all__ = ["RelationalEstimator", "resolve_fit_input", "check_relational_X", "holdout_latest",
           "logger", "enable_verbose_logging"]

#: The logger of every skrel estimator; ``verbose`` makes estimators log at INFO level to it.
logger = logging.getLogger("skrel")


def enable_verbose_logging() -> None:
    """Make INFO messages of the ``skrel`` logger visible on stderr, once.

    Called when an estimator has ``verbose`` set: if neither the ``skrel`` logger nor the root
    logger has a handler (the user configured no logging), a stderr handler is added to
    ``skrel``. A user who configures logging keeps full control.
    """
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def holdout_latest(X, y, fraction: float, classification: bool = False):
    """Split off the rows with the latest cutoffs (about ``fraction`` of the rows, whole cutoffs,
    at least one cutoff and never all of them).

    Returns ``(X_train, y_train, X_val, y_val)``; ``X_val`` is None when ``X`` has a single cutoff
    or (``classification``) the training rows would lose a class.
    """
    y = np.asarray(y)
    cut, counts = np.unique(X.cutoffs, return_counts=True)
    if len(cut) < 2:
        return X, y, None, None
    tail = np.cumsum(counts[::-1])
    k = int(np.searchsorted(tail, fraction * len(X)) + 1)
    k = min(k, len(cut) - 1)
    threshold = cut[len(cut) - k]
    val = X.cutoffs >= threshold
    if classification and len(np.unique(y[~val])) < len(np.unique(y)):
        return X, y, None, None
    return X[~val], y[~val], X[val], y[val]


def check_relational_X(X, what: str = "X") -> RelationalDataset:
    if not isinstance(X, RelationalDataset):
        raise TypeError(
            f"{what} must be a skrel RelationalDataset (rows of entity id and cutoff over a Database), got "
            f"{type(X).__name__}. Build one with task.split(db, 'train') or RelationalDataset(db, table, ids, cutoffs)."
        )
    if len(X) == 0:
        raise ValueError(f"{what} has no rows.")
    return X


def resolve_fit_input(X, y, X_val=None, y_val=None):
    """Check the ``fit(X, y, X_val=..., y_val=...)`` arguments."""
    X = check_relational_X(X)
    if y is None:
        raise ValueError("fit(X, y) needs y: one label per row of X.")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must be 1-D with one label per row of X ({len(X)}), got shape {y.shape}.")
    if (X_val is None) != (y_val is None):
        raise ValueError("Give both X_val and y_val, or neither.")
    if X_val is not None:
        X_val = check_relational_X(X_val, "X_val")
        y_val = np.asarray(y_val)
        if y_val.shape != (len(X_val),):
            raise ValueError(f"y_val must be 1-D with one label per row of X_val ({len(X_val)}), got {y_val.shape}.")
    return X, y, X_val, y_val


class RelationalEstimator(PredictFrameMixin, BaseEstimator):
    """Base class: a classifier or a regressor over :class:`RelationalDataset`, as the task says.

    The estimator type follows ``task_type`` (a constructor parameter) or, when that is
    ``"auto"``, the task given to ``fit`` or ``y``: floating-point ``y`` means regression,
    integer, boolean or string ``y`` with two values binary, with more multiclass. Its
    scikit-learn tags follow. ``predict_frame(db, at)`` predicts for every entity visible at a
    time (:func:`skrel.predict.predict_frame`).
    """

    # The shared vocabulary (docs/parameters.md); a family declares the parameters in __init__.
    _parameter_constraints: dict = {
        "task_type": [StrOptions({"auto", "binary", "multiclass", "regression"})],
        "horizon": [StrOptions(set(HORIZONS))],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, X_val=None, y_val=None):
        """Fit on ``(db, task)`` or on ``(X, y)``.

        Parameters
        ----------
        X : Database or RelationalDataset
        y : Task or array-like of shape (n,)
        X_val, y_val : RelationalDataset and array-like, optional
            Validation rows for early stopping and selection (``fit(X, y)`` only; ``fit(db, task)``
            takes the task's val split).

        Returns
        -------
        self
        """
        self._validate_params()
        if isinstance(X, Database):
            if not isinstance(y, Task):
                raise TypeError(f"fit(db, task) needs a skrel Task as second argument, got {type(y).__name__}.")
            if X_val is not None or y_val is not None:
                raise ValueError("fit(db, task) takes the validation split from the task; do not pass X_val / y_val.")
            db, task = X, y
            X, y = task.split(db, "train")
            if len(X) == 0:
                raise ValueError(
                    f"Task {task.name!r} has no training rows: no row of its train split (cutoffs before "
                    f"{task.val_timestamp}) has a non-missing label in {task.target_col!r}. Check the task's label "
                    "query or label table (a LabelWarning counts the rows dropped), or move val_timestamp later."
                )
            X_val, y_val = task.split(db, "val")
        else:
            X, y, X_val, y_val = resolve_fit_input(X, y, X_val, y_val)
            task = None
        check_labels_present(y, "y")
        if y_val is not None:
            check_labels_present(y_val, "y_val")
        if self.verbose:
            enable_verbose_logging()
        self._t0 = time.perf_counter()
        self.task_type_ = self._resolve_task_type(task, y)
        self.task_ = task
        fraction = getattr(self, "validation_fraction", None)
        if task is None and X_val is None and fraction:
            X, y, X_val, y_val = holdout_latest(X, y, fraction, classification=self.task_type_ != "regression")
            if X_val is not None:
                self._log(f"validating on the {len(X_val)} rows with the latest cutoffs (validation_fraction)")
        y_enc = self._encode_target(y, fitting=True)
        y_val_enc = None if y_val is None else self._encode_target(y_val, fitting=False, name="y_val")
        self._fit(X, y_enc, X_val, y_val_enc)
        return self

    def _resolve_task_type(self, task, y) -> str:
        if task is not None:
            if self.task_type not in ("auto", task.task_type):
                raise ValueError(
                    f"task_type={self.task_type!r} contradicts task {task.name!r}, which is {task.task_type!r}."
                )
            return task.task_type
        if self.task_type != "auto":
            return self.task_type
        return infer_task_type(y)

    def _encode_target(self, y, fitting: bool, name: str = "y"):
        y = np.asarray(y)
        if self.task_type_ == "regression":
            y = y.astype(np.float64)
            if not np.isfinite(y).all():
                raise ValueError(f"{name} has {int((~np.isfinite(y)).sum())} missing or infinite value(s) of "
                                 f"{len(y)}; drop those rows or fill them.")
            return y
        if fitting:
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError(f"y has a single class {self.classes_.tolist()}; a classifier needs at least two.")
            if self.task_type_ == "binary" and len(self.classes_) != 2:
                raise ValueError(f"A binary task needs two classes, y has {len(self.classes_)}.")
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        unknown = self.classes_[idx] != y
        if unknown.any():
            raise ValueError(f"y has label(s) unseen in training: {np.unique(y[unknown])[:5].tolist()}.")
        return idx

    def _fit(self, X, y, X_val, y_val):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ predict
    def _is_classifier(self) -> bool:
        task_type = getattr(self, "task_type_", None) or self.task_type
        # "auto" before fit: the kind is not known yet, so predict_proba exists and raises NotFittedError
        return task_type in ("binary", "multiclass", "auto")

    def predict(self, X):
        """Predict labels (classification) or values (regression) for the rows of ``X``."""
        check_is_fitted(self, "task_type_")
        X = check_relational_X(X)
        if self.task_type_ == "regression":
            return np.asarray(self._predict_values(X), dtype=np.float64)
        proba = self._predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @available_if(_is_classifier)
    def predict_proba(self, X):
        """Class probabilities, shape (n, n_classes), columns in the order of ``classes_``."""
        check_is_fitted(self, "task_type_")
        X = check_relational_X(X)
        return np.asarray(self._predict_proba(X), dtype=np.float64)

    def score(self, X, y):
        """Accuracy for classifiers, R^2 for regressors (scikit-learn's defaults)."""
        from sklearn.metrics import accuracy_score, r2_score

        y_pred = self.predict(X)
        if self.task_type_ == "regression":
            return r2_score(y, y_pred)
        return accuracy_score(y, y_pred)

    # ------------------------------------------------------------------ tags and logging
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        task_type = getattr(self, "task_type_", None) or self.task_type
        if task_type in ("binary", "multiclass"):
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=True)
        elif task_type == "regression":
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = False
        return tags

    def _log(self, message: str) -> None:
        """Log ``message`` at INFO level on the ``skrel`` logger when ``verbose`` is set."""
        if self.verbose:
            elapsed = time.perf_counter() - getattr(self, "_t0", time.perf_counter())
            logger.info("[%s %7.1fs] %s", type(self).__name__, elapsed, message)

