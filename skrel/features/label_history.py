"""The entity's own label history as features: its labels at earlier cutoffs whose windows have closed.

For a row (entity ``e``, cutoff ``t``) over the database ``X.db`` and a task with window ``D``,
the history is the task's labels of ``e`` at the cutoffs ``c`` of the task's grid (the union of its
train, val and test cutoffs) **computed by the task's own label query on** ``X.db``, keeping
those with

    c + D <= t        (the label's window (c, c + D] has closed by the cutoff), and
    c + D <= end      (``end``: the last time in ``X.db``; a window reaching past the data the
                       database holds would give a partial label).

So a row uses nothing after its cutoff, provided the label query, like every RelBench query,
reads only rows dated up to ``c + D`` for the label at ``c``. Under RelBench's protocol (``X``
over the database cut at the test timestamp) test rows see only the labels whose windows closed
before that cut; as of each cutoff (``"test_asof"``) they also see the test cutoffs' labels
whose windows have closed.

Features (float32, names prefixed ``label_history.``): ``count`` (0 without history), ``mean``,
``last``, ``mean_last3`` and ``days_since_last`` (days from the row's time, see ``horizon``, to
the close ``c + D`` of the last label's window); NaN without history. Binary labels are used as
0/1 (the second class is 1); regression labels as numbers; multiclass tasks are refused (a mean
class index means nothing).

Torch-free; the history table of a database is cached in ``X.db.cache``. Everything is vectorised:
one label query per database, then cumulative statistics per entity and one ``merge_asof``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..data import RelationalDataset, SchemaError, Task
from ..data.dataset import horizon_cutoffs
from ..data.task import LabelWarning
from ..utils import is_zero_one

__all__ = ["label_history_features", "LABEL_HISTORY_FEATURES", "PREFIX"]

PREFIX = "label_history."
#: The feature names, in order.
LABEL_HISTORY_FEATURES = tuple(PREFIX + n for n in ("count", "mean", "last", "mean_last3", "days_since_last"))


def _task_grid(db, task: Task) -> pd.DatetimeIndex:
    """The union of the task's train, val and test cutoffs as computed on ``db``.

    A split whose cutoffs ``db`` cannot give (a database too short for it) is left out; the
    warnings about windows without data are silenced: such labels are dropped by the rule
    ``c + window <= end`` anyway.
    """
    stamps = []
    for split in ("train", "val", "test"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LabelWarning)
                stamps.append(task.cutoffs(db, split))
        except SchemaError:
            continue
    if not stamps:
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    return pd.DatetimeIndex(np.unique(np.concatenate([s.to_numpy().astype("datetime64[ns]") for s in stamps])))


def _history(db, task: Task) -> pd.DataFrame:
    """The labels of every entity at the task's grid on ``db`` (windows within the data), with
    per-entity cumulative statistics, sorted by entity then time: columns ``entity``,
    ``closes`` (``timestamp + window``), ``y``, ``count``, ``mean``, ``mean_last3``."""
    key = ("label_history", task.name, task.entity_table, task.entity_col, task.target_col, task.task_type,
           task.label_sql, task.window, task.val_timestamp, task.test_timestamp, task.num_eval_timestamps)
    cached = db.cache.get(key)
    if cached is not None:
        return cached
    end = db.max_time
    grid = _task_grid(db, task)
    if pd.notna(end):
        grid = grid[grid + task.window <= end]
    if len(grid):
        labels = task.labels_at(db, grid)
    else:
        labels = pd.DataFrame({"timestamp": pd.DatetimeIndex([]), task.entity_col: [], task.target_col: []})
    hist = pd.DataFrame({
        "entity": labels[task.entity_col].to_numpy(),
        "closes": (pd.DatetimeIndex(labels["timestamp"]) + task.window).to_numpy().astype("datetime64[ns]"),
        "raw": labels[task.target_col].to_numpy(),
    })
    hist = hist.sort_values(["entity", "closes"], kind="stable").reset_index(drop=True)
    db.cache[key] = hist
    return hist


def _encode(raw: np.ndarray, task: Task, classes) -> np.ndarray:
    if len(raw) == 0:
        return np.zeros(0)
    if task.task_type == "regression":
        return pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=np.float64)
    if classes is not None:
        classes = np.asarray(classes)
        if len(classes) != 2:
            raise ValueError(f"label history of a binary task needs two classes, got {classes.tolist()}.")
        out = np.full(len(raw), np.nan)
        out[raw == classes[0]] = 0.0
        out[raw == classes[1]] = 1.0
        return out
    if is_zero_one(raw):
        return raw.astype(np.float64)
    raise ValueError(
        f"Task {task.name!r}: its binary labels are not 0/1 ({pd.unique(raw)[:2].tolist()}); pass classes=(negative, "
        "positive) to encode the label history."
    )


def label_history_features(X: RelationalDataset, task: Task, *, classes=None, horizon: str = "cutoff") -> pd.DataFrame:
    """The entity's own past labels, point in time, as features of the rows of ``X``.

    Parameters
    ----------
    X : RelationalDataset
        Rows (entity, cutoff) over ``X.db``; the history labels are computed on ``X.db``.
    task : Task
        A binary or regression task with a label query (``label_sql``) over ``X.entity_table``.
    classes : array-like of two values, optional
        Binary tasks whose labels are not 0/1: the negative and positive class (a fitted
        estimator's ``classes_``); labels equal to ``classes[1]`` count 1.
    horizon : {"cutoff", "data"}, default="cutoff"
        Where ``days_since_last`` is counted from: the row's cutoff, or the earlier of it and the
        last time in ``X.db`` (:func:`skrel.data.horizon_cutoffs`). Which labels are used does
        not depend on it.

    Returns
    -------
    pandas.DataFrame of float32, shape (len(X), 5)
        Columns :data:`LABEL_HISTORY_FEATURES`, index ``range(len(X))``.

    Raises
    ------
    ValueError
        For a multiclass task, a task with supplied label tables (no query to compute labels on
        ``X.db`` with), or a task over another entity table.

    Examples
    --------
    >>> from skrel.datasets import load_f1  # doctest: +SKIP
    >>> db, tasks = load_f1("../shared/data/f1")  # doctest: +SKIP
    >>> X, y = tasks["driver-dnf"].split(db, "test")  # doctest: +SKIP
    >>> label_history_features(X, tasks["driver-dnf"]).describe()  # doctest: +SKIP
    """
    if task.task_type == "multiclass":
        raise ValueError(
            f"Task {task.name!r} is multiclass: a label history summarises labels by their mean, which means nothing "
            "for class indices. Label history supports binary and regression tasks."
        )
    if task.label_sql is None:
        raise ValueError(
            f"Task {task.name!r} has supplied label tables: the label history is computed with the task's label "
            "query on the rows' own database (so that no label reaches past the data the row is evaluated "
            "against), and this task has none."
        )
    if X.entity_table != task.entity_table:
        raise ValueError(f"X is over entity table {X.entity_table!r}, but task {task.name!r} is over "
                         f"{task.entity_table!r}.")
    hist = _history(X.db, task)
    y = _encode(hist["raw"].to_numpy(), task, classes)
    keep = ~np.isnan(y)
    entity, closes, y = hist["entity"].to_numpy()[keep], hist["closes"].to_numpy()[keep], y[keep]

    # cumulative statistics per entity (hist is sorted by entity, then time)
    index = pd.Index(pd.unique(entity))
    code = index.get_indexer(entity).astype(np.int64)
    s = pd.Series(y)
    g = s.groupby(code, sort=False)
    count = g.cumcount().to_numpy() + 1.0
    mean = g.cumsum().to_numpy() / count
    last3 = (s + g.shift(1).fillna(0.0) + g.shift(2).fillna(0.0)).to_numpy() / np.minimum(count, 3.0)
    right = pd.DataFrame({"code": code, "closes": closes, "count": count, "mean": mean, "last": y,
                          "mean_last3": last3}).sort_values("closes", kind="stable")

    # a label is available at t when its window closed by t and within the data X.db holds
    cutoffs = np.asarray(X.cutoffs).astype("datetime64[ns]")
    end = X.db.max_time
    available_at = cutoffs if pd.isna(end) else np.minimum(cutoffs, np.datetime64(end, "ns"))
    left = pd.DataFrame({"code": index.get_indexer(np.asarray(X.entity_ids)).astype(np.int64),
                         "at": available_at, "row": np.arange(len(X))}).sort_values("at", kind="stable")
    merged = pd.merge_asof(left, right, left_on="at", right_on="closes", by="code", direction="backward",
                           allow_exact_matches=True).sort_values("row")

    described = np.asarray(horizon_cutoffs(X, horizon)).astype("datetime64[ns]")
    days = (described - merged["closes"].to_numpy().astype("datetime64[ns]")) / np.timedelta64(1, "D")
    out = pd.DataFrame({
        LABEL_HISTORY_FEATURES[0]: merged["count"].fillna(0.0).to_numpy(),
        LABEL_HISTORY_FEATURES[1]: merged["mean"].to_numpy(),
        LABEL_HISTORY_FEATURES[2]: merged["last"].to_numpy(),
        LABEL_HISTORY_FEATURES[3]: merged["mean_last3"].to_numpy(),
        LABEL_HISTORY_FEATURES[4]: days,
    }).astype(np.float32)
    return out
