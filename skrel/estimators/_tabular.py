"""Tabular learners over feature frames: the default LightGBM, any scikit-learn estimator.

Shared by the baseline and the DFS family. Feature frames may hold numeric, boolean, datetime
and string columns; :class:`FrameEncoder` turns them into a numeric matrix with the categories
frozen at fit time, so train and predict agree.
"""

from __future__ import annotations

import inspect
import os
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.utils import check_random_state
from sklearn.utils._tags import ClassifierTags, RegressorTags

from ..utils import import_optional

__all__ = ["NEURAL_LEARNERS", "is_neural_learner", "FrameEncoder", "default_learner", "prepare_learner", "fit_learner", "learner_proba", "learner_values",
           "TabPFNLearner", "importance_series", "prior_learner", "check_label_history", "add_label_history"]


class FrameEncoder:
    """Encode a feature frame to float32: numbers as they are, booleans as 0/1, datetimes as days
    since 1970 (timezone-aware ones in UTC), strings and categories as integer codes of the categories seen in ``fit``
    (unseen and missing: NaN)."""

    def fit(self, frame: pd.DataFrame) -> "FrameEncoder":
        self.columns_ = list(frame.columns)
        self.categories_: dict[str, pd.Index] = {}
        for col in self.columns_:
            s = frame[col]
            if not (_is_numeric(s) or pd.api.types.is_datetime64_any_dtype(s.dtype)):
                self.categories_[col] = pd.Index(pd.unique(s.dropna().astype(str))).sort_values()
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise ValueError(f"Feature frame lacks column(s) {missing[:5]} seen in fit.")
        out = np.empty((len(frame), len(self.columns_)), dtype=np.float32)
        for j, col in enumerate(self.columns_):
            s = frame.iloc[:, j] if list(frame.columns[j:j + 1]) == [col] else frame[col]
            if col in self.categories_:
                codes = self.categories_[col].get_indexer(s.astype(str).where(s.notna(), None))
                v = codes.astype(np.float64)
                v[(codes < 0) | s.isna().to_numpy()] = np.nan
            elif pd.api.types.is_datetime64_any_dtype(s.dtype):
                if isinstance(s.dtype, pd.DatetimeTZDtype):  # the instant in UTC, as skrel's naive times
                    s = s.dt.tz_convert("UTC").dt.tz_localize(None)
                v = (s.astype("datetime64[ns]").to_numpy().astype("int64") / 86_400e9).astype(np.float64)
                v[s.isna().to_numpy()] = np.nan
            else:
                v = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
            out[:, j] = v
        return out

    @property
    def categorical_indices_(self) -> list[int]:
        return [j for j, c in enumerate(self.columns_) if c in self.categories_]


#: The pytorch-frame models :class:`TorchFrameLearner` offers (``DFSEstimator(learner=...)`` names).
NEURAL_LEARNERS = ("mlp", "resnet", "ft_transformer")


def is_neural_learner(learner) -> bool:
    """Whether a ``learner`` parameter value names or is a neural (torch) learner: one of
    :data:`NEURAL_LEARNERS`, or an estimator with ``probe_batches`` (a :class:`TorchFrameLearner`)."""
    if isinstance(learner, str):
        return learner in NEURAL_LEARNERS
    return learner is not None and hasattr(learner, "probe_batches")


def check_label_history(est) -> None:
    """Refuse ``label_history=True`` without a task: ``fit(X, y)`` gives no label query nor window,
    and a guessed window would leak labels whose windows have not closed."""
    if getattr(est, "label_history", False) and getattr(est, "task_", None) is None:
        raise ValueError(
            f"{type(est).__name__}(label_history=True) needs the task: call fit(db, task). fit(X, y) carries no label "
            "query nor window, and the history of labels is only point-in-time with the task's own window."
        )


def add_label_history(est, frame: pd.DataFrame, X) -> pd.DataFrame:
    """``frame`` with the entity's label history appended (``label_history.*`` columns) when
    ``est.label_history`` is set; computed with ``est.task_`` on ``X.db`` (see
    :mod:`skrel.features.label_history`)."""
    if not getattr(est, "label_history", False):
        return frame
    from ..features.label_history import label_history_features

    classes = est.classes_ if est.task_type_ == "binary" else None
    hist = label_history_features(X, est.task_, classes=classes, horizon=est.horizon)
    hist.index = frame.index
    return pd.concat([frame, hist], axis=1)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype)


def default_learner(task_type: str, random_state=None, n_estimators: int = 1000, lr: float = 0.03,
                    num_leaves: int = 31, n_jobs=None, **kwargs):
    """LightGBM, classifier or regressor as the task needs (L1 objective for regression).

    Parameters
    ----------
    task_type : {"binary", "multiclass", "regression"}
    random_state : int or None
        LightGBM's seed (``None``: 0, so results repeat).
    n_estimators : int, default=1000
        Boosting rounds at most.
    lr : float, default=0.03
        Learning rate (shrinkage).
    num_leaves : int, default=31
    n_jobs : int or None, default=None
        LightGBM threads. ``None``: one thread, scikit-learn's meaning of ``None`` (LightGBM's
        own default, every core, spins: on a shared 2-core machine it made rel-f1's driver-dnf
        fit take 330 s instead of about 15 s). Training is deterministic
        (``deterministic=True``) at a fixed thread count.
    **kwargs
        Other LightGBM parameters.
    """
    import lightgbm as lgb

    params = dict(
        n_estimators=n_estimators,
        learning_rate=lr,
        num_leaves=num_leaves,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        random_state=0 if random_state is None else random_state,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1 if n_jobs is None else n_jobs,
        verbose=-1,
    )
    params.update(kwargs)
    if task_type == "regression":
        return lgb.LGBMRegressor(objective="l1", **params)
    return lgb.LGBMClassifier(**params)


def prepare_learner(learner, task_type: str, random_state=None, model_path=None, **default_params):
    """Clone a user's learner (or build the default with ``default_params``, see
    :func:`default_learner`) and check it fits the task type.

    ``learner="tabpfn"`` builds a :class:`TabPFNLearner` over the local weights ``model_path``;
    ``"mlp"``, ``"resnet"``, ``"ft_transformer"`` a
    :class:`~skrel.estimators._neural_tabular.TorchFrameLearner` with its default
    hyperparameters (``n_jobs`` from ``default_params``). A learner with a ``task_type``
    parameter left at ``"auto"`` gets ``task_type``.
    """
    if learner is None:
        return default_learner(task_type, random_state, **default_params)
    if isinstance(learner, str):
        if learner == "tabpfn":
            return TabPFNLearner(model_path=model_path, task_type=task_type, random_state=random_state)
        if learner not in NEURAL_LEARNERS:
            raise ValueError(f"learner must be None, 'tabpfn', one of {list(NEURAL_LEARNERS)} or a scikit-learn "
                             f"estimator, got {learner!r}.")
        TorchFrameLearner = import_optional("skrel.estimators._neural_tabular",
                                            f"DFSEstimator(learner={learner!r})").TorchFrameLearner
        return TorchFrameLearner(model=learner, task_type=task_type, random_state=random_state,
                                 n_jobs=default_params.get("n_jobs"))
    est = clone(learner)
    if est.get_params().get("task_type") == "auto":
        est.set_params(task_type=task_type)
    if task_type == "regression" and is_classifier(est):
        raise ValueError(f"learner {type(learner).__name__} is a classifier but the task is a regression.")
    if task_type != "regression" and is_regressor(est):
        raise ValueError(f"learner {type(learner).__name__} is a regressor but the task is a {task_type} one.")
    if random_state is not None and "random_state" in est.get_params() and est.get_params()["random_state"] is None:
        est.set_params(random_state=random_state)
    return est


def _is_lightgbm(est) -> bool:
    return type(est).__module__.startswith("lightgbm")


def fit_learner(est, Xm: np.ndarray, y: np.ndarray, Xm_val=None, y_val=None, categorical=None,
                n_iter_no_change: int | None = 50):
    """Fit ``est``; LightGBM gets native categoricals and, with validation rows, early stopping
    after ``n_iter_no_change`` rounds without a better validation score (``None``: none; the
    best iteration is kept whenever there are validation rows). A learner whose ``fit`` takes
    ``X_val`` and ``y_val`` (:class:`~skrel.estimators._neural_tabular.TorchFrameLearner`) gets
    the validation rows for its own early stopping (its own ``n_iter_no_change``)."""
    if _is_lightgbm(est):
        import lightgbm as lgb

        kwargs = {"categorical_feature": list(categorical or []) or "auto"}
        if Xm_val is not None and len(Xm_val) and len(np.unique(y_val)) > (1 if is_classifier(est) else 0):
            if "eval_X" in inspect.signature(est.fit).parameters:
                kwargs.update(eval_X=(Xm_val,), eval_y=(y_val,))
            else:  # lightgbm < 4.7
                kwargs["eval_set"] = [(Xm_val, y_val)]
            # without early stopping the model still predicts with its best validation iteration
            rounds = est.get_params()["n_estimators"] if n_iter_no_change is None else n_iter_no_change
            kwargs["callbacks"] = [lgb.early_stopping(rounds, verbose=False)]
        est.fit(Xm, y, **kwargs)
    elif {"X_val", "y_val"} <= set(inspect.signature(est.fit).parameters):
        has_val = Xm_val is not None and len(Xm_val)
        est.fit(Xm, y, X_val=Xm_val if has_val else None, y_val=y_val if has_val else None)
    else:
        est.fit(Xm, y)
    return est


def prior_learner(task_type: str, metric: str | None = None):
    """The model of a table with nothing to learn from: the training class frequencies, or the
    training median (MAE, the default regression metric, or no metric known) or mean."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if task_type != "regression":
        return DummyClassifier(strategy="prior")
    return DummyRegressor(strategy="median" if metric in (None, "mae") else "mean")


def importance_series(est, names) -> pd.Series:
    """Importances of a fitted learner by feature name (``feature_importances_``, or the mean
    absolute ``coef_`` for linear learners), as a Series named ``"importance"``."""
    names = list(names)
    if not names:
        values = np.zeros(0)
    elif hasattr(est, "feature_importances_"):
        values = np.asarray(est.feature_importances_, dtype=np.float64)
    elif hasattr(est, "coef_"):
        coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
        values = np.abs(coef).mean(axis=0)
    else:
        raise AttributeError(
            f"The learner {type(est).__name__} exposes neither feature_importances_ nor coef_; "
            "use sklearn.inspection.permutation_importance instead."
        )
    return pd.Series(values, index=pd.Index(list(names), name="feature"), name="importance")


def learner_proba(est, Xm: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over all ``n_classes`` (columns for classes missing in training are zero)."""
    proba = est.predict_proba(Xm)
    classes = getattr(est, "classes_", np.arange(proba.shape[1]))
    out = np.zeros((len(Xm), n_classes))
    out[:, np.asarray(classes, dtype=int)] = proba
    return out


def learner_values(est, Xm: np.ndarray) -> np.ndarray:
    return np.asarray(est.predict(Xm), dtype=np.float64)


class TabPFNLearner(BaseEstimator):
    """TabPFN from a local checkpoint, as a scikit-learn classifier or regressor.

    skrel never downloads weights: ``model_path`` must name an existing TabPFN checkpoint file.
    TabPFN refuses more than 1,000 training rows on CPU; this wrapper trains on at most
    ``max_train_rows`` rows, drawn at random (stratified by class for classification) with
    ``random_state``, and warns when it subsamples.

    Parameters
    ----------
    model_path : str or path
        A TabPFN checkpoint (``.ckpt``) on disk.
    task_type : {"binary", "multiclass", "regression"}, default="binary"
    max_train_rows : int, default=1000
        Training rows kept (TabPFN's CPU limit by default; raise it on a GPU).
    n_estimators : int, default=4
        TabPFN's ensemble size.
    device : str, default="cpu"
    random_state : int, RandomState instance or None, default=None
    """

    def __init__(self, model_path=None, task_type="binary", max_train_rows=1000, n_estimators=4, device="cpu",
                 random_state=None):
        self.model_path = model_path
        self.task_type = task_type
        self.max_train_rows = max_train_rows
        self.n_estimators = n_estimators
        self.device = device
        self.random_state = random_state

    def _check_path(self) -> str:
        if self.model_path is None:
            raise ValueError(
                "TabPFN needs model_path, a checkpoint file on disk (skrel never downloads weights). "
                "Download a TabPFN checkpoint yourself and pass its path."
            )
        path = os.fspath(self.model_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"TabPFN checkpoint {path!r} does not exist. skrel never downloads weights: put a TabPFN "
                "checkpoint file there (or pass the path of one you have)."
            )
        return path

    def fit(self, X, y):
        path = self._check_path()
        tabpfn = import_optional("tabpfn", "learner='tabpfn'")
        TabPFNClassifier, TabPFNRegressor = tabpfn.TabPFNClassifier, tabpfn.TabPFNRegressor

        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(2**31 - 1))
        n = len(X)
        if n > self.max_train_rows:
            keep = self._subsample(y, rng)
            warnings.warn(
                f"TabPFN: training on {len(keep)} of {n} rows (max_train_rows={self.max_train_rows}, "
                "TabPFN's CPU limit); raise max_train_rows on a GPU.",
                UserWarning,
                stacklevel=2,
            )
            X, y = X[keep], y[keep]
        cls = TabPFNRegressor if self.task_type == "regression" else TabPFNClassifier
        self.model_ = cls(model_path=path, device=self.device, n_estimators=self.n_estimators, random_state=seed)
        self.model_.fit(X, y)
        self.n_train_rows_ = len(X)
        if self.task_type != "regression":
            self.classes_ = self.model_.classes_
        return self

    def _subsample(self, y, rng) -> np.ndarray:
        m = self.max_train_rows
        if self.task_type == "regression":
            return np.sort(rng.choice(len(y), m, replace=False))
        classes, inverse = np.unique(y, return_inverse=True)
        picks = []
        for k in range(len(classes)):
            idx = np.flatnonzero(inverse == k)
            take = max(1, int(round(m * len(idx) / len(y))))
            picks.append(rng.choice(idx, min(take, len(idx)), replace=False))
        return np.sort(np.concatenate(picks))[: max(m, len(classes))]

    def predict_proba(self, X):
        return self.model_.predict_proba(np.asarray(X, dtype=np.float64))

    def predict(self, X):
        return self.model_.predict(np.asarray(X, dtype=np.float64))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.task_type == "regression":
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        else:
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=True)
        return tags
