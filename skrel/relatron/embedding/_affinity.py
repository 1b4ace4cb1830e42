"""The affinity components: how well quick learners fitted on training rows score validation rows.

- ``path_affinity``: a linear model on the seed embeddings of an untrained RDL network (1, 2 and 3
  layers; :func:`skrel.estimators.rdl.seed_embeddings`, the network ``RDLEstimator.fit`` starts
  from).
- ``feature_affinity``: a small fixed-budget tabular learner on depth-1 and depth-2 DFS features
  (the DFS family's own learners: :func:`skrel.estimators._tabular.default_learner`, TabPFN
  from local weights, or a user's learner).

Scores: :func:`~skrel.relatron.embedding._common.affinity_score`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ...data import RelationalDataset
from ...estimators._tabular import default_learner, prepare_learner
from ...features.dfs import DFSTransformer
from ._common import EmbeddingRows, EmbeddingSettings, affinity_score

__all__ = ["feature_affinity", "path_affinity"]

# The untrained networks of the path affinity.
_RDL_LAYERS = (1, 2, 3)
_RDL_CHANNELS = 16
_RDL_FANOUT = 4  # RelBench's halving schedule: [4, 2, 1] neighbours per edge type at 3 layers
# The feature affinity's LightGBM: 50 trees of at most 15 leaves, and LightGBM's own defaults
# otherwise (no row or column subsampling), the learner the shipped bank's embeddings were made with.
_FEATURE_LIGHTGBM = dict(n_estimators=50, lr=0.1, num_leaves=15, min_child_samples=10, subsample=1.0,
                         subsample_freq=0, colsample_bytree=1.0, deterministic=False, force_row_wise=False)


def _samples(rows: EmbeddingRows, n_train=None, n_val=None):
    """``(X_tr, y_tr, X_va, y_va)``: the first ``n_train`` and ``n_val`` rows of the seeded subsamples."""
    tr, va = rows.train_sample[:n_train], rows.val_sample[:n_val]
    return rows.train[tr], rows.y_train[tr], rows.val[va], rows.y_val[va]


def _predict(learner, task_type: str, A):
    """Values (regression) or the probability matrix (classification) of a fitted learner."""
    return learner.predict(A) if task_type == "regression" else learner.predict_proba(A)


def _linear_score(task_type: str, Z_tr, y_tr, Z_va, y_va, random_state: int) -> float:
    """Standardise, then closed-form ridge (regression) or L2 logistic regression; score on val."""
    mean, std = Z_tr.mean(axis=0), Z_tr.std(axis=0)
    std[std == 0] = 1.0
    A, B = (Z_tr - mean) / std, (Z_va - mean) / std
    if task_type == "regression":
        A1, B1 = np.hstack([A, np.ones((len(A), 1))]), np.hstack([B, np.ones((len(B), 1))])
        reg = np.eye(A1.shape[1])
        reg[-1, -1] = 0.0  # no penalty on the intercept
        w = np.linalg.solve(A1.T @ A1 + reg, A1.T @ y_tr)
        shift = np.median(y_tr - A1 @ w)  # the MAE-optimal intercept, for the MAE-based score
        return affinity_score(task_type, y_tr, y_va, B1 @ w + shift)
    clf = LogisticRegression(C=1.0, max_iter=500, random_state=random_state).fit(A, y_tr)
    return affinity_score(task_type, y_tr, y_va, clf.predict_proba(B))


def path_affinity(rows: EmbeddingRows, settings: EmbeddingSettings) -> dict[str, float]:
    """The ``path_affinity`` component: ``path_affinity.rdl1..3`` and their maximum."""
    import torch  # the torch extra: only the path affinity needs it

    from ...estimators.rdl import seed_embeddings

    n_tr, n_va = settings.path_rows
    X_tr, y_tr, X_va, y_va = _samples(rows, n_tr, n_va)
    names = [f"path_affinity.rdl{layers}" for layers in _RDL_LAYERS]
    if rows.task_type != "regression" and len(np.unique(y_tr)) < 2:  # a single training class: nothing to fit
        return {**dict.fromkeys(names, np.nan), "path_affinity.max": np.nan}
    both = RelationalDataset(X_tr.db, X_tr.entity_table, np.concatenate([X_tr.entity_ids, X_va.entity_ids]),
                             np.concatenate([X_tr.cutoffs, X_va.cutoffs]))
    y_both = np.concatenate([y_tr, y_va])
    out = {}
    # Tiny networks: one torch thread unless told (the scatter adds of small tensors pay for the
    # threads' coordination; benchmarks/results/embedding_threads.md measures it on rel-f1).
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if settings.n_jobs is None else int(settings.n_jobs))
        for name, layers in zip(names, _RDL_LAYERS):
            Z = seed_embeddings(both, y_both, task_type=rows.task_type, channels=_RDL_CHANNELS, num_layers=layers,
                                fanouts=_RDL_FANOUT, encoder_layers=1, batch_size=2048,
                                random_state=settings.random_state)
            out[name] = _linear_score(rows.task_type, Z[: len(X_tr)], y_tr, Z[len(X_tr):], y_va,
                                      settings.random_state)
    finally:
        torch.set_num_threads(threads)
    vals = [v for v in out.values() if np.isfinite(v)]
    out["path_affinity.max"] = float(max(vals)) if vals else np.nan
    return out


def _tabular(F_tr: pd.DataFrame, F_va: pd.DataFrame, numeric_only: bool):
    """Feature frames a learner takes: categories from the training rows (or dropped, for learners
    without native categorical support), positional column names."""
    F_tr, F_va = F_tr.copy(), F_va.copy()
    for c in F_tr.columns:
        if F_tr[c].dtype == object or isinstance(F_tr[c].dtype, pd.CategoricalDtype):
            if numeric_only:
                F_tr, F_va = F_tr.drop(columns=c), F_va.drop(columns=c)
                continue
            cats = pd.Index(pd.unique(F_tr[c].dropna().astype(str)))
            F_tr[c] = pd.Categorical(F_tr[c].astype("string"), categories=cats)
            F_va[c] = pd.Categorical(F_va[c].astype("string"), categories=cats)
    if numeric_only:  # learners without native categorical support; some reject all-missing columns
        empty = [c for c in F_tr.columns if F_tr[c].isna().all()]
        F_tr, F_va = F_tr.drop(columns=empty), F_va.drop(columns=empty)
    names = [f"f{j}" for j in range(F_tr.shape[1])]  # DFS names hold characters LightGBM rejects
    F_tr.columns, F_va.columns = names, names
    return F_tr, F_va


def _feature_learner(task_type: str, settings: EmbeddingSettings):
    """The learner and whether it needs numeric features only: the user's learner (cloned), TabPFN
    from ``model_path``, or LightGBM (with native categoricals)."""
    if settings.feature_learner is not None:
        return prepare_learner(settings.feature_learner, task_type, settings.random_state), True
    if settings.model_path is not None:
        return prepare_learner("tabpfn", task_type, settings.random_state, model_path=settings.model_path), True
    # L1 objective for regression: the score is MAE-based
    return default_learner(task_type, settings.random_state, n_jobs=settings.n_jobs, **_FEATURE_LIGHTGBM), False


def feature_affinity(rows: EmbeddingRows, settings: EmbeddingSettings) -> dict[str, float]:
    """The ``feature_affinity`` component: ``feature_affinity.dfs1`` and ``.dfs2`` (with their
    feature counts)."""
    X_tr, y_tr, X_va, y_va = _samples(rows)
    out = {}
    for depth in (1, 2):
        dfs = DFSTransformer(max_depth=depth, windows=(), n_jobs=settings.n_jobs)
        F_tr = dfs.fit_transform(X_tr)
        F_va = dfs.transform(X_va)
        learner, numeric_only = _feature_learner(rows.task_type, settings)
        A, B = _tabular(F_tr, F_va, numeric_only)
        if rows.task_type != "regression" and len(np.unique(y_tr)) < 2:
            out[f"feature_affinity.dfs{depth}"] = np.nan
            continue
        learner.fit(A, y_tr)
        out[f"feature_affinity.dfs{depth}"] = affinity_score(rows.task_type, y_tr, y_va,
                                                             _predict(learner, rows.task_type, B))
        out[f"feature_affinity.dfs{depth}_features"] = float(A.shape[1])
    return out
