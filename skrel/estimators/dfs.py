"""Deep feature synthesis plus a tabular learner: point-in-time DFS features, then LightGBM
(or a pytorch-frame network, any scikit-learn estimator, or TabPFN from local weights)."""

from __future__ import annotations

import logging
import os
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ..data import HORIZONS
from ..features.dfs import ENGINES, DFSTransformer, SessionParam
from ..utils import seed_from
from ._base import RelationalEstimator, check_relational_X
from ._tabular import (NEURAL_LEARNERS, FrameEncoder, TabPFNLearner, add_label_history, check_label_history, fit_learner,
                       importance_series, is_neural_learner, learner_proba, learner_values, prepare_learner,
                       prior_learner)

__all__ = ["DFSEstimator", "DEFAULT_WINDOWS"]

logger = logging.getLogger("skrel.estimators.dfs")

#: Look-back windows (days) of the default feature set, chosen on rel-f1's validation split.
DEFAULT_WINDOWS = (30, 90, 365)


class DFSEstimator(SessionParam, RelationalEstimator):
    """Point-in-time deep feature synthesis (featuretools' semantics, DuckDB speed) + a learner.

    A classifier or a regressor as the task says: ``fit(db, task)`` (the task's val split drives
    LightGBM's early stopping) or ``fit(X, y, X_val=, y_val=)``.

    Parameters
    ----------
    max_depth : int in [1, 3], default=2
        Depth of deep feature synthesis.
    agg_primitives : list of str, optional
        Aggregation primitives (default: count, max, mean, min, mode, num_unique, std, sum,
        time_since_last).
    windows : list of int, default=(30, 90, 365)
        Look-back windows in days; each adds the entity's aggregations over its last days.
        ``()`` for whole-history aggregates only. (The estimator's default, chosen on rel-f1;
        :class:`~skrel.features.DFSTransformer` alone has no window by default.)
    tables, ignore_columns, max_categories
        Which tables and columns to use; see :class:`~skrel.features.DFSTransformer`.
    engine : {"duckdb", "spark", "featuretools"}, default="duckdb"
        Where features are computed; see :class:`~skrel.features.DFSTransformer`.
    spark : pyspark.sql.SparkSession or None, default=None
        The session of ``engine="spark"`` (``None``: the active one, else a new ``local[*]``
        one). Cloning keeps it; pickling drops it.
    max_features : int or None, default=500
        Feature budget: constant and duplicate features are dropped, and when more remain,
        near-duplicates and then the least important on a sample (a small LightGBM's gain,
        keeping the best window/primitive of each source column first); see
        :class:`~skrel.features.DFSTransformer` and ``pruning_summary_``. 500 keeps rel-f1's
        defaults whole (about 600 definitions, under 500 once constant and duplicate ones are
        gone) and bounds wide databases: 100k rows x 500 float32 features are 200 MB, and
        LightGBM's cost grows with the features while a few hundred carry nearly all the gain.
        ``None``: every definition.
    memory_limit : int, str or None, default=None
        Memory budget of feature computation (``None``: 40% of the memory available at fit);
        see :class:`~skrel.features.DFSTransformer`.
    temp_directory : str or path, optional
        Where DuckDB spills beyond ``memory_limit``.
    n_jobs : int or None, default=None
        Threads of DuckDB and of LightGBM (``None``: DuckDB's default, all cores, and one
        LightGBM thread, scikit-learn's meaning of ``None``; see
        :func:`~skrel.estimators._tabular.default_learner`).
    learner : None, "mlp", "resnet", "ft_transformer", "tabpfn" or scikit-learn estimator, default=None
        ``None``: LightGBM (classifier or regressor as the task needs), early-stopped on the
        validation rows. An estimator is cloned. ``"tabpfn"``: TabPFN from ``model_path``.
        ``"mlp"``, ``"resnet"``, ``"ft_transformer"``: a pytorch-frame network over the feature
        matrix (:class:`~skrel.estimators.TorchFrameLearner` with its defaults, seeded from
        ``random_state``, ``n_jobs`` threads), trained through the torch families' skorch loop and
        early-stopped on the validation rows with its own ``n_iter_no_change``; set its
        hyperparameters by passing an instance instead, e.g.
        ``learner=TorchFrameLearner(model="resnet", channels=128, max_epochs=100)`` (reachable
        in a grid search as ``learner__channels``). Neural learners give the estimator a loss
        surface: ``module_`` and ``probe_batches`` (for :mod:`skrel.relatron.landscape`).
    model_path : str or path, optional
        TabPFN checkpoint for ``learner="tabpfn"`` (never downloaded; must exist).
    n_estimators : int, default=1000
        Boosting rounds at most of the default LightGBM learner (``learner=None``). This and
        ``lr``, ``num_leaves`` and ``n_iter_no_change`` configure LightGBM only; a neural learner
        has its own.
    lr : float, default=0.03
        Learning rate of the default LightGBM learner.
    num_leaves : int, default=31
        Leaves per tree of the default LightGBM learner.
    n_iter_no_change : int or None, default=50
        Early stopping of the default learner: stop after this many boosting rounds without a
        better validation score; ``None`` never stops early. The best round is kept whenever
        there are validation rows.
    validation_fraction : float in [0, 1) or None, default=0.1
        With ``fit(X, y)`` and no ``X_val``: hold out the rows with the latest cutoffs (about
        this fraction, whole cutoffs) as validation rows; ``None`` or ``0``: none.
        ``fit(db, task)`` always uses the task's val split.
    horizon : {"cutoff", "data"}, default="data"
        Compute features at the earlier of each row's cutoff and the end of the data (the
        default), or at the cutoff. They differ only for rows whose cutoff lies past the last
        time in the database (RelBench's protocol predicts such rows: X over the database cut at
        the test timestamp), where ``"cutoff"`` describes every entity as inactive since the
        data ended, a state training rows never show. On rel-f1's stale validation (val rows over
        the database cut at the val timestamp, ``benchmarks/horizon.py``) ``"data"`` scores better on
        driver-top3 and driver-position, worse on driver-dnf. See
        :class:`~skrel.features.DFSTransformer` and ``docs/point-in-time.md``.
    label_history : bool, default=False
        Append the entity's own label history to the DFS features (``label_history.*``: count,
        mean, last, mean of the last 3 of its labels at the task's earlier cutoffs whose windows
        have closed, and days since the last closed, counted from ``horizon``;
        :mod:`skrel.features.label_history`), computed with the task's label query on each row's
        database, so a label whose window reaches past the cutoff or past that database's data is
        never used. Needs ``fit(db, task)`` (``fit(X, y)`` raises: it has no window), a binary or
        regression task with a label query. Not in the registry's search space, whose searches
        call ``fit(X, y)``.
    task_type : {"auto", "binary", "multiclass", "regression"}, default="auto"
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    transformer_ : DFSTransformer
    encoder_ : FrameEncoder
    learner_ : estimator
    module_ : torch.nn.Module
        The trained network of a neural learner (an AttributeError otherwise).
    feature_names_ : list of str
        The features the learner sees (the DFS features after pruning, then ``label_history.*``).
    pruning_summary_ : pandas.DataFrame
        The pruned feature definitions (``feature``) and why (``reason``).
    feature_importances_ : pandas.Series
        The learner's importances (or absolute coefficients) by feature name.
    classes_ : ndarray (classification)
    task_type_ : str

    Examples
    --------
    >>> from skrel.datasets import load_f1  # doctest: +SKIP
    >>> db, tasks = load_f1("../shared/data/f1")  # doctest: +SKIP
    >>> est = DFSEstimator(max_depth=2).fit(db, tasks["driver-dnf"])  # doctest: +SKIP
    >>> est.feature_importances_.nlargest(5)  # doctest: +SKIP
    """

    _parameter_constraints = {
        **RelationalEstimator._parameter_constraints,
        "max_depth": [Interval(Integral, 1, 3, closed="both")],
        "agg_primitives": [list, tuple, None],
        "windows": [list, tuple, None],
        "tables": [list, tuple, None],
        "ignore_columns": [dict, None],
        "max_categories": [Interval(Integral, 1, None, closed="left"), Interval(Real, 0, 1, closed="right")],
        "engine": [StrOptions(set(ENGINES))],
        "spark": "no_validation",
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
        "memory_limit": [str, Interval(Integral, 1, None, closed="left"), None],
        "temp_directory": [str, os.PathLike, None],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
        "learner": [None, StrOptions({"tabpfn", *NEURAL_LEARNERS}), HasMethods(["fit"])],
        "model_path": [str, os.PathLike, None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "horizon": [StrOptions(set(HORIZONS))],
        "label_history": ["boolean"],
    }

    def __init__(self, max_depth=2, agg_primitives=None, windows=DEFAULT_WINDOWS, tables=None, ignore_columns=None,
                 max_categories=0.5, engine="duckdb", spark=None, max_features=500, memory_limit=None,
                 temp_directory=None, n_jobs=None,
                 learner=None, model_path=None, n_estimators=1000, lr=0.03, num_leaves=31, n_iter_no_change=50,
                 validation_fraction=0.1, horizon="data", label_history=False, task_type="auto", random_state=None,
                 verbose=0):
        self.max_depth = max_depth
        self.agg_primitives = agg_primitives
        self.windows = windows
        self.tables = tables
        self.ignore_columns = ignore_columns
        self.max_categories = max_categories
        self.engine = engine
        self.spark = spark
        self.max_features = max_features
        self.memory_limit = memory_limit
        self.temp_directory = temp_directory
        self.n_jobs = n_jobs
        self.learner = learner
        self.model_path = model_path
        self.n_estimators = n_estimators
        self.lr = lr
        self.num_leaves = num_leaves
        self.n_iter_no_change = n_iter_no_change
        self.validation_fraction = validation_fraction
        self.horizon = horizon
        self.label_history = label_history
        self.task_type = task_type
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit steps
    def _make_transformer(self) -> DFSTransformer:
        return DFSTransformer(
            max_depth=self.max_depth, agg_primitives=self.agg_primitives, windows=self.windows, tables=self.tables,
            ignore_columns=self.ignore_columns, max_categories=self.max_categories, engine=self.engine,
            spark=self.spark, max_features=self.max_features, memory_limit=self.memory_limit, temp_directory=self.temp_directory,
            n_jobs=self.n_jobs, dtype="float32", random_state=seed_from(self.random_state), horizon=self.horizon,
            verbose=self.verbose,
        )

    def _make_learner(self):
        seed = seed_from(self.random_state)
        return prepare_learner(self.learner, self.task_type_, seed, model_path=self.model_path,
                               n_estimators=self.n_estimators, lr=self.lr, num_leaves=self.num_leaves,
                               n_jobs=self.n_jobs)

    def _fit(self, X, y, X_val, y_val):
        check_label_history(self)
        if self.learner == "tabpfn":
            TabPFNLearner(model_path=self.model_path)._check_path()  # fail before computing features
        self.transformer_ = self._make_transformer().fit(X, y)
        frame = add_label_history(self, self.transformer_.transform(X), X)
        self.feature_names_ = list(frame.columns)
        self._log(f"{len(X)} rows x {frame.shape[1]} features")
        self.encoder_ = FrameEncoder().fit(frame)
        if not self.feature_names_:  # nothing to learn from: the training prior
            logger.warning("no feature for entity table %r (no usable column, no related table): predicting the "
                           "training prior", X.entity_table)
            self.learner_ = prior_learner(self.task_type_, getattr(getattr(self, "task_", None), "metric", None))
            self.learner_.fit(np.zeros((len(y), 1), dtype=np.float32), y)
            return
        Xm = self.encoder_.transform(frame)
        Xm_val = None if X_val is None else self._matrix(X_val)
        self.learner_ = self._make_learner()
        self._log(f"fitting {type(self.learner_).__name__}")
        fit_learner(self.learner_, Xm, y, Xm_val, y_val, categorical=self.encoder_.categorical_indices_,
                    n_iter_no_change=self.n_iter_no_change)
        self._log("done")

    def _matrix(self, X):
        frame = add_label_history(self, self.transformer_.transform(X), X)
        if not self.feature_names_:
            return np.zeros((len(X), 1), dtype=np.float32)
        return self.encoder_.transform(frame)

    def _predict_proba(self, X):
        return learner_proba(self.learner_, self._matrix(X), len(self.classes_))

    def _predict_values(self, X):
        return learner_values(self.learner_, self._matrix(X))

    # ------------------------------------------------------------------ inspection
    @property
    def feature_importances_(self) -> pd.Series:
        """Importances of the fitted learner by feature name (``feature_importances_``, or the
        mean absolute ``coef_`` for linear learners)."""
        check_is_fitted(self, "learner_")
        return importance_series(self.learner_, self.feature_names_)

    @property
    def pruning_summary_(self) -> pd.DataFrame:
        """The pruned feature definitions and why (see :class:`~skrel.features.DFSTransformer`)."""
        check_is_fitted(self, "transformer_")
        return self.transformer_.pruning_summary_

    def get_feature_names_out(self, input_features=None):
        """Names of the features the learner sees: the DFS features, then the label history's."""
        check_is_fitted(self, "transformer_")
        names = self.transformer_.get_feature_names_out()
        if self.label_history:
            from ..features.label_history import LABEL_HISTORY_FEATURES

            names = np.concatenate([np.asarray(names, dtype=object), np.asarray(LABEL_HISTORY_FEATURES, dtype=object)])
        return names

    # ------------------------------------------------------------------ loss surface (neural learners)
    def _has_network(self) -> bool:
        return is_neural_learner(self.learner)

    @property
    def module_(self):
        """The trained torch network of a neural learner (``learner="mlp"``, ``"resnet"``,
        ``"ft_transformer"`` or a :class:`~skrel.estimators.TorchFrameLearner`).

        Raises AttributeError for the other learners (LightGBM, TabPFN, scikit-learn estimators),
        and NotFittedError (an AttributeError) before ``fit``.
        """
        if not self._has_network():
            raise AttributeError(
                f"DFSEstimator(learner={self.learner!r}) has no torch module: only the neural learners "
                f"{list(NEURAL_LEARNERS)} (or a TorchFrameLearner) have one."
            )
        check_is_fitted(self, "learner_")
        if not hasattr(self.learner_, "module_"):  # no feature at fit: the training prior
            raise AttributeError("this DFSEstimator found no feature at fit and predicts the training prior; it "
                                 "has no torch module.")
        return self.learner_.module_

    @available_if(_has_network)
    def probe_batches(self, X, y, max_batches: int | None = None) -> list:
        """A fixed probe set for loss-landscape measurements (neural learners only).

        The DFS features of ``X`` (as for ``predict``) in evaluation batches of the neural
        learner; ``self.module_.loss(self.module_(batch), batch.y)`` is its training loss on a
        batch. Absent (``hasattr`` is False) for the other learners.

        Parameters
        ----------
        X : RelationalDataset
        y : array-like of shape (n,)
            Labels in the user's encoding (as passed to ``fit``).
        max_batches : int or None, default=None
            Keep the first batches only.

        Returns
        -------
        list of pytorch-frame ``TensorFrame`` batches, each with ``batch.y``
        """
        self.module_  # noqa: B018 - raises when there is no trained network
        X = check_relational_X(X)
        y = self._encode_target(np.asarray(y), fitting=False)
        return self.learner_.probe_batches(self._matrix(X), y, max_batches=max_batches)

