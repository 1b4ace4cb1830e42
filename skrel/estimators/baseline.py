"""The floor every family must beat: LightGBM on the entity table's own columns at the cutoff."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval

from ..features.entity import entity_frame
from ._base import RelationalEstimator, seed_from
from ._tabular import FrameEncoder, default_learner, fit_learner, learner_proba, learner_values

__all__ = ["BaselineEstimator"]


class BaselineEstimator(RelationalEstimator):
    """LightGBM on the entity table's own columns (RelBench's LightGBM baseline).

    Parameters
    ----------
    n_estimators : int, default=1000
        Boosting rounds (early-stopped on the validation rows when there are some).
    learning_rate : float, default=0.03
    num_leaves : int, default=31
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
    learner_ : lightgbm model
    feature_importances_ : dict of str to float

    Examples
    --------
    >>> from skrel.datasets import load_flights  # doctest: +SKIP
    >>> db, tasks = load_flights()  # doctest: +SKIP
    >>> BaselineEstimator().fit(db, tasks["plane-cancel"])  # doctest: +SKIP
    """

    _parameter_constraints = {
        **RelationalEstimator._parameter_constraints,
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, n_estimators=1000, learning_rate=0.03, num_leaves=31, task_type="auto", random_state=None,
                 verbose=0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.task_type = task_type
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X, y, X_val, y_val):
        frame = entity_frame(X)
        self.encoder_ = FrameEncoder().fit(frame)
        self.feature_names_ = list(frame.columns)
        seed = seed_from(self.random_state)
        self.learner_ = default_learner(
            self.task_type_, seed, n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
        )
        Xm_val = None if X_val is None else self.encoder_.transform(entity_frame(X_val))
        self._log(f"fitting LightGBM on {len(X)} rows x {len(self.feature_names_)} features")
        fit_learner(self.learner_, self.encoder_.transform(frame), y, Xm_val, y_val,
                    categorical=self.encoder_.categorical_indices_)
        self.feature_importances_ = dict(zip(self.feature_names_, self.learner_.feature_importances_.tolist()))

    def _matrix(self, X):
        return self.encoder_.transform(entity_frame(X))

    def _predict_proba(self, X):
        return learner_proba(self.learner_, self._matrix(X), len(self.classes_))

    def _predict_values(self, X):
        return learner_values(self.learner_, self._matrix(X))
