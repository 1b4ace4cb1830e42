"""The entry points: :func:`embed_task` over arrays ``(X, y, X_val, y_val)``, and
:func:`task_embedding` over a database and a task's train and val splits."""

from __future__ import annotations

import logging
import time
from numbers import Integral

import numpy as np
import pandas as pd

from ...data import Database, RelationalDataset, SchemaError, Task
from ...estimators._base import resolve_fit_input
from ...utils import check_labels_present
from ...utils import TASK_TYPES
from ._common import EmbeddingRows, EmbeddingSettings, TaskEmbedding, logger
from ._registry import COMPONENTS, REGISTRY, check_components

__all__ = ["embed_task", "task_embedding"]


def _check_max_pairs(max_pairs) -> None:
    if max_pairs is not None and (isinstance(max_pairs, bool) or not isinstance(max_pairs, Integral)
                                  or max_pairs < 1):
        raise ValueError(f"max_pairs must be a positive int or None, got {max_pairs!r}.")


def _ordered(db: Database, X: RelationalDataset, y: np.ndarray):
    """``X``'s rows over ``db`` and their labels, in (cutoff, entity) order: the embedding does not
    depend on the order the rows come in."""
    order = pd.DataFrame({"t": X.cutoffs, "e": X.entity_ids}).sort_values(["t", "e"], kind="stable").index
    order = order.to_numpy()
    return RelationalDataset(db, X.entity_table, X.entity_ids[order], X.cutoffs[order]), y[order]


def _sample(n: int, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``size`` of ``n`` row positions in a seeded random order (any prefix is a uniform subsample)."""
    idx = rng.permutation(n)
    return idx if size is None else idx[:size]


def embed_task(
    X: RelationalDataset,
    y,
    X_val: RelationalDataset | None = None,
    y_val=None,
    *,
    task_type: str,
    components=COMPONENTS,
    max_pairs: int | None = 2_000_000,
    max_hops: int = 3,
    max_train_rows: int | None = 1000,
    max_val_rows: int | None = 500,
    path_rows: tuple[int, int] = (500, 250),
    random_state: int = 0,
    feature_learner=None,
    model_path=None,
    n_jobs: int | None = None,
    verbose: int = 0,
    name: str = "task",
) -> TaskEmbedding:
    """Relatron's task embedding of training rows ``(X, y)`` and validation rows ``(X_val, y_val)``.

    Parameters
    ----------
    X : RelationalDataset
        Training rows (entity, cutoff) over a database.
    y : array-like of shape (len(X),)
        Their labels: class labels or codes (classification), numbers (regression).
    X_val, y_val : RelationalDataset and array-like, optional
        Validation rows over the same database and entity table, and their labels; the
        affinities need them (without them, choose other ``components``).
    task_type : {"binary", "multiclass", "regression"}
    components : sequence of str, default=COMPONENTS
        Among ``"homophily"``, ``"path_affinity"``, ``"feature_affinity"``, ``"temporal"`` and
        ``"scale"`` (:data:`~skrel.relatron.embedding.COMPONENTS`); they run in that order.
    max_pairs : int or None, default=2_000_000
        Per meta-path cap on the expected size of the pair join; beyond it anchor entities are
        Bernoulli-sampled and the ``*_se`` entries give the estimator's standard errors.
        ``None``: exact always.
    max_hops : int, default=3
        Most foreign-key hops from the entity table to a meta-path's pivot table.
    max_train_rows, max_val_rows : int or None, default=1000 and 500
        Seeded row subsamples for the feature affinity (``None``: all rows).
    path_rows : (int, int), default=(500, 250)
        The path affinity uses the first this many training and validation rows of those
        subsamples (a forward pass of the network is the costliest step).
    random_state : int, default=0
        Seed of every sample and of the untrained network; the same seed gives the same embedding.
    feature_learner : scikit-learn estimator, optional
        Learner of the feature affinity, cloned and fitted on the numeric DFS features that are not
        entirely missing (default: LightGBM with 50 trees of at most 15 leaves, L1 objective for
        regression, categorical features included).
    model_path : str or path-like, optional
        A local TabPFN checkpoint; the feature affinity then uses TabPFN (never downloaded).
    n_jobs : int, optional
        Threads for DuckDB, torch and LightGBM (None: DuckDB's default, one torch thread for the
        untrained networks, which are faster on one, and one LightGBM thread).
    verbose : int, default=0
        1 logs one line per component, 2 also one per meta-path (``logging`` at INFO on
        ``skrel.relatron.embedding``; DEBUG otherwise).
    name : str, default="task"
        The task's name, in log lines.

    Returns
    -------
    TaskEmbedding
        A dict of entry name -> float; ``.seconds`` gives seconds per component.

    Raises
    ------
    ValueError
        Unknown components, labels that do not match the rows or are missing, validation rows
        over another database or table, an affinity asked for without validation rows.

    Notes
    -----
    Leakage guarantee: everything is computed on ``X.db`` cut at the last training or validation
    cutoff and on the labels given; rows dated after every cutoff never enter. Rows are taken in
    (cutoff, entity) order, so their order does not change the embedding.

    Examples
    --------
    >>> from skrel.datasets import make_synthetic
    >>> db, tasks = make_synthetic(n_entities=50, n_rows=1000)
    >>> X, y = tasks["synthetic"].split(db, "train")
    >>> emb = embed_task(X, y, task_type="binary", components=("homophily", "scale"))
    >>> round(emb["scale.log_tables"], 3)
    1.792
    >>> sorted(emb.seconds)
    ['homophily', 'scale']
    """
    names = check_components(components)
    _check_max_pairs(max_pairs)
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type must be one of {list(TASK_TYPES)}, got {task_type!r}.")
    X, y, X_val, y_val = resolve_fit_input(X, y, X_val, y_val)
    check_labels_present(y, "y")
    if X_val is not None:
        check_labels_present(y_val, "y_val")
        if X_val.entity_table != X.entity_table:
            raise ValueError(f"X and X_val are rows of different tables ({X.entity_table!r}, "
                             f"{X_val.entity_table!r}).")
        if X_val.db is not X.db and X_val.db.fingerprint != X.db.fingerprint:
            raise ValueError("X and X_val are over different databases; build both from the same Database.")
    need_val = [c for c in names if REGISTRY[c].needs_validation]
    if X_val is None and need_val:
        raise ValueError(f"The component(s) {need_val} score validation rows: pass X_val and y_val, or leave "
                         "them out of components.")
    if task_type == "regression":
        y = y.astype(np.float64)
        y_val = None if y_val is None else y_val.astype(np.float64)
    last = X.cutoffs.max() if X_val is None else max(X.cutoffs.max(), X_val.cutoffs.max())
    cut = X.db.upto(pd.Timestamp(last))
    train, y_train = _ordered(cut, X, y)
    val, y_val = _ordered(cut, X_val, y_val) if X_val is not None else (None, None)
    rng = np.random.default_rng(random_state)
    train_sample = _sample(len(train), max_train_rows, rng)
    val_sample = _sample(0 if val is None else len(val), max_val_rows, rng)
    rows = EmbeddingRows(cut, train, y_train, val, y_val, train_sample, val_sample, task_type, name)
    settings = EmbeddingSettings(max_pairs=max_pairs, max_hops=max_hops, path_rows=tuple(path_rows),
                                 random_state=random_state, feature_learner=feature_learner, model_path=model_path,
                                 n_jobs=n_jobs, verbose=verbose)
    level = logging.INFO if verbose else logging.DEBUG
    entries: dict[str, float] = {}
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for component in names:
        t0, c0 = time.perf_counter(), time.process_time()
        entries.update(REGISTRY[component].compute(rows, settings))
        seconds[component] = time.perf_counter() - t0
        cpu[component] = time.process_time() - c0
        logger.log(level, "task %s: %s in %.2fs", name, component, seconds[component])
    return TaskEmbedding({k: float(v) for k, v in entries.items()}, seconds, task_type, cpu)


def _split_rows(db: Database, task: Task, labels: pd.DataFrame):
    X = RelationalDataset(db, task.entity_table, labels[task.entity_col].to_numpy(), labels["timestamp"].to_numpy())
    return X, labels[task.target_col].to_numpy()


def task_embedding(
    db: Database,
    task: Task,
    *,
    max_pairs: int | None = 2_000_000,
    max_hops: int = 3,
    max_train_rows: int | None = 1000,
    max_val_rows: int | None = 500,
    path_rows: tuple[int, int] = (500, 250),
    random_state: int = 0,
    components=COMPONENTS,
    feature_learner=None,
    model_path=None,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> TaskEmbedding:
    """Relatron's task embedding of a task's train and val splits: :func:`embed_task` over them.

    Parameters
    ----------
    db : Database
    task : Task
        An entity task with train and val splits; its test labels are never read.
    max_pairs, max_hops, max_train_rows, max_val_rows, path_rows
        As :func:`embed_task`.
    random_state, components, feature_learner, model_path, n_jobs, verbose
        As :func:`embed_task`.

    Returns
    -------
    TaskEmbedding

    Raises
    ------
    SchemaError
        The task's entity table is not in ``db``; the task has no training rows, or no
        validation rows while an affinity is asked for.

    Notes
    -----
    Everything is computed on ``db`` cut at the last training or validation cutoff, so rows dated
    after every cutoff do not change the embedding (labels come from the task, as given).

    Examples
    --------
    >>> from skrel.datasets import make_synthetic
    >>> db, tasks = make_synthetic(n_entities=50, n_rows=1000)
    >>> emb = task_embedding(db, tasks["synthetic"], components=("homophily", "scale"))
    >>> round(emb["scale.log_tables"], 3)
    1.792
    >>> sorted(emb.seconds)
    ['homophily', 'scale']
    """
    if not isinstance(db, Database):
        raise TypeError(f"db must be a skrel Database, got {type(db).__name__}.")
    if not isinstance(task, Task):
        raise TypeError(f"task must be a skrel Task, got {type(task).__name__}.")
    names = check_components(components)
    if task.entity_table not in db:
        raise SchemaError(f"Task {task.name!r}: entity table {task.entity_table!r} is not in the database; "
                          f"tables are {db.table_names}.")
    _check_max_pairs(max_pairs)
    train, val = task.labels(db, "train"), task.labels(db, "val")
    if len(train) == 0:
        raise SchemaError(f"Task {task.name!r} has no training rows.")
    if len(val) == 0 and any(REGISTRY[c].needs_validation for c in names):
        raise SchemaError(f"Task {task.name!r} has no validation rows; the affinities need them.")
    X, y = _split_rows(db, task, train)
    X_val, y_val = _split_rows(db, task, val) if len(val) else (None, None)
    return embed_task(X, y, X_val, y_val, task_type=task.task_type, components=names, max_pairs=max_pairs,
                      max_hops=max_hops, max_train_rows=max_train_rows, max_val_rows=max_val_rows,
                      path_rows=path_rows, random_state=random_state, feature_learner=feature_learner,
                      model_path=model_path, n_jobs=n_jobs, verbose=verbose, name=task.name)
