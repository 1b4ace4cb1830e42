"""The floor every family must beat: LightGBM on the entity table's own columns at the cutoff."""

from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..data import HORIZONS, SchemaError
from ..features.entity import entity_columns, entity_frame
from ..utils import seed_from
from ._base import RelationalEstimator
from ._tabular import (FrameEncoder, add_label_history, check_label_history, default_learner, fit_learner,
                       importance_series, learner_proba, learner_values, prior_learner)

__all__ = ["BaselineEstimator"]

logger = logging.getLogger("skrel.estimators.baseline")


class BaselineEstimator(RelationalEstimator):
    """LightGBM on the entity table's own columns (RelBench's LightGBM baseline).

    The features are the entity row's columns visible at each row's cutoff: numbers, booleans,
    strings (as categories), datetimes as ages in days, the entity table's time column included
    (the entity's age). An entity table with nothing to learn from (only its key, or an entity
    table whose columns are all unusable) gives a prior: the training class frequencies, or the
    training median (MAE, the default regression metric, and ``fit(X, y)``) or mean (other
    regression metrics).

    Parameters
    ----------
    n_estimators : int, default=1000
        Boosting rounds at most.
    lr : float, default=0.03
        Learning rate.
    num_leaves : int, default=31
    n_iter_no_change : int or None, default=50
        Early stopping: stop after this many rounds without a better validation score; ``None``
        never stops early. The best round is kept whenever there are validation rows.
    validation_fraction : float in [0, 1) or None, default=0.1
        With ``fit(X, y)`` and no ``X_val``: hold out the rows with the latest cutoffs (about
        this fraction, whole cutoffs) as validation rows; ``None`` or ``0``: none.
        ``fit(db, task)`` always uses the task's val split.
    horizon : {"cutoff", "data"}, default="data"
        Where ages are counted from: each row's cutoff, or the earlier of it and the last time
        of the entity table (see :func:`skrel.data.horizon_cutoffs`).
    label_history : bool, default=False
        Append the entity's own label history (``label_history.*``: count, mean, last, mean of the
        last 3 of its labels at the task's earlier cutoffs whose windows have closed, and days
        since the last closed; :mod:`skrel.features.label_history`), computed with the task's
        label query on each row's database. Needs ``fit(db, task)`` (``fit(X, y)`` raises: it has
        no window), a binary or regression task with a label query. Not in the registry's search
        space, whose searches call ``fit(X, y)``.
    n_jobs : int or None, default=None
        LightGBM threads (``None``: one, scikit-learn's meaning of ``None``; see
        :func:`~skrel.estimators._tabular.default_learner`).
    task_type : {"auto", "binary", "multiclass", "regression"}, default="auto"
        ``"auto"`` takes the task's type, or infers it from ``y``.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    task_type_ : str
    classes_ : ndarray of shape (n_classes,)
        Classification only.
    feature_names_ : list of str
    columns_ : dict of str to str
        The entity table's columns used and their kinds; ``predict`` checks X's database has them.
    learner_ : lightgbm model, or a scikit-learn dummy estimator (the prior)
    feature_importances_ : pandas.Series
        Importances by feature name (empty for the prior).

    Examples
    --------
    >>> from skrel.datasets import load_flights  # doctest: +SKIP
    >>> db, tasks = load_flights()  # doctest: +SKIP
    >>> BaselineEstimator().fit(db, tasks["plane-cancel"])  # doctest: +SKIP
    """

    _parameter_constraints = {
        **RelationalEstimator._parameter_constraints,
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "horizon": [StrOptions(set(HORIZONS))],
        "label_history": ["boolean"],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, n_estimators=1000, lr=0.03, num_leaves=31, n_iter_no_change=50, validation_fraction=0.1,
                 horizon="data", label_history=False, n_jobs=None, task_type="auto", random_state=None, verbose=0):
        self.n_estimators = n_estimators
        self.lr = lr
        self.num_leaves = num_leaves
        self.n_iter_no_change = n_iter_no_change
        self.validation_fraction = validation_fraction
        self.horizon = horizon
        self.label_history = label_history
        self.n_jobs = n_jobs
        self.task_type = task_type
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, y, X_val, y_val):
        check_label_history(self)
        self.entity_table_ = X.entity_table
        self.columns_ = entity_columns(X)
        frame = add_label_history(self, entity_frame(X, self.columns_, self.horizon), X)
        self.feature_names_ = list(frame.columns)
        if not self.feature_names_:
            self.learner_ = self._prior()
            self.encoder_ = FrameEncoder().fit(frame)
            logger.info("entity table %r has no usable column: predicting the training prior", X.entity_table)
            self.learner_.fit(np.zeros((len(y), 1)), y)
            return
        self.encoder_ = FrameEncoder().fit(frame)
        seed = seed_from(self.random_state)
        self.learner_ = default_learner(
            self.task_type_, seed, n_estimators=self.n_estimators, lr=self.lr, num_leaves=self.num_leaves,
            n_jobs=self.n_jobs,
        )
        Xm_val = None if X_val is None else self._matrix(X_val)
        self._log(f"fitting LightGBM on {len(X)} rows x {len(self.feature_names_)} features")
        fit_learner(self.learner_, self.encoder_.transform(frame), y, Xm_val, y_val,
                    categorical=self.encoder_.categorical_indices_, n_iter_no_change=self.n_iter_no_change)

    def _prior(self):
        return prior_learner(self.task_type_, getattr(getattr(self, "task_", None), "metric", None))

    @property
    def feature_importances_(self):
        """Importances of the LightGBM model by feature name (a pandas Series; empty for the prior)."""
        check_is_fitted(self, "learner_")
        return importance_series(self.learner_, self.feature_names_)

    def _matrix(self, X):
        if X.entity_table != self.entity_table_:
            raise SchemaError(
                f"X is over entity table {X.entity_table!r}, but the model was fitted on {self.entity_table_!r}."
            )
        frame = add_label_history(self, entity_frame(X, self.columns_, self.horizon), X)
        if not self.feature_names_:
            return np.zeros((len(X), 1))
        return self.encoder_.transform(frame)

    def _predict_proba(self, X):
        return learner_proba(self.learner_, self._matrix(X), len(self.classes_))

    def _predict_values(self, X):
        return learner_values(self.learner_, self._matrix(X))

