"""Memory planning and the feature budget of deep feature synthesis.

Planning. Before computing, the transformer knows the rows (distinct entity and cutoff pairs)
and the feature definitions, so the size of the result, ``rows x features x itemsize``, is known.
The memory budget (``memory_limit``; by default 40% of the memory available when ``fit`` runs)
goes to DuckDB as its own ``memory_limit`` (it spills beyond it) and bounds what each query
produces: queries are made of whole groups of features that share a join (:func:`query_groups`)
and are run over blocks of rows, both sized so that a block's result, with a margin for DuckDB's
intermediate state (``_WORK_FACTOR``), stays within the budget.

The feature budget (``max_features``). When the definitions outnumber it, ``fit`` computes every
feature on a sample of the rows and prunes, in this order, recording each dropped feature and
why in the pruning summary:

1. ``"constant"``: one value (or only missing values) on the sample;
2. ``"duplicate"``: the same values as a feature kept before it (definitions are in order of
   depth, so the shallower, simpler one is kept);
3. ``"near-duplicate"``: numeric, with absolute Pearson correlation above 0.99 with a kept one
   (on up to 5,000 sample rows, missing values at the column mean);
4. ``"importance"``: a small LightGBM fitted on the sample (with ``y``) ranks the rest by total
   gain; the best feature of each source column (the column a feature aggregates, all windows
   and primitives together) is kept first, then the best of the others up to the budget.
   Without ``y`` the budget keeps the first features in definition order (``"budget"``).

With more than four times ``max_features`` definitions (wide databases give thousands at depth 2),
the screen is staged: the definitions of depth 0 and 1 (no aggregate of aggregates, cheap) are
screened first to ``max_features // 2``; source columns are ranked by the best gain of their
surviving features, and only the deeper definitions made from the best columns are computed, as
many columns as keep them within twice ``max_features`` (the others are pruned as ``"column
screened out at depth 1"``); the screen above then runs over the shallow and those deep
definitions together.

Only the kept features are compiled afterwards: scoring never computes a pruned feature.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ._definitions import Aggregation, Feature, Identity

__all__ = ["plan_queries", "prune", "source_column"]

logger = logging.getLogger("skrel.features.plan")

#: Bytes DuckDB and the copies around it need per byte of result (joins, groups, the fetched
#: block, the assembled frame); measured on rel-f1 and the wide benchmark, rounded up.
_WORK_FACTOR = 8
#: Features per query at most: DuckDB keeps every aggregate of a query in its hash tables at once,
#: and plans and compiles a query in time that grows with its width.
_MAX_QUERY_FEATURES = 256
def plan_queries(groups: list[list[Feature]], n_rows: int, budget: int, itemsize: int = 8):
    """Split feature groups into queries and rows into blocks so that each (query, block)
    result, times ``_WORK_FACTOR``, fits in ``budget`` bytes.

    Returns ``(queries, block_rows)``.
    """
    per_cell = itemsize * _WORK_FACTOR
    cap = max(1, min(_MAX_QUERY_FEATURES, budget // max(1, per_cell * max(n_rows, 1))))  # features per query
    queries, current = [], []
    for g in groups:
        if current and len(current) + len(g) > cap:
            queries.append(current)
            current = []
        g = list(g)
        while len(g) > _MAX_QUERY_FEATURES:  # a group wider than a query: split (its join repeats per part)
            queries.append(g[:_MAX_QUERY_FEATURES])
            g = g[_MAX_QUERY_FEATURES:]
        current = current + g
    if current:
        queries.append(current)
    widest = max((len(q) for q in queries), default=1)
    block_rows = max(1000, budget // max(1, per_cell * widest))
    return queries, (None if block_rows >= n_rows else int(block_rows))


def source_column(f: Feature) -> tuple:
    """The column a feature is made from (``(table, column)``; ``COUNT`` counts its path's last
    table): windows and primitives over one column share it."""
    while not isinstance(f, Identity):
        if isinstance(f, Aggregation) and f.spec.input == "index":
            return (f.child, "*")
        f = f.base
    return (f.table, f.name)


def _column_hash(s: pd.Series) -> int:
    return int(pd.util.hash_array(np.asarray(s.astype(object) if s.dtype == object else s.to_numpy(np.float64))
                                  ).sum(dtype=np.uint64))


def prune(frame: pd.DataFrame, features: list[Feature], max_features: int | None, y=None, task: str | None = None,
          random_state: int = 0, gains: dict | None = None):
    """Features to keep and a summary of the pruned ones.

    Parameters
    ----------
    frame : DataFrame
        The features on a sample of rows, one column per feature (positions match ``features``).
    features : list of Feature
    max_features : int or None
        The budget (``None``: drop constant and duplicate features only).
    y : array-like, optional
        Labels of the sample rows, for the importance screen.
    task : {"regression", "classification"}, optional
    random_state : int
    gains : dict, optional
        Filled with ``{position: gain}`` of the importance screen, when it runs.

    Returns
    -------
    keep : ndarray of int
        Positions of the kept features, in their original order.
    summary : DataFrame
        Columns ``feature`` and ``reason``, one row per pruned feature.
    """
    n = frame.shape[1]
    reason: dict[int, str] = {}
    alive = []
    seen: dict[int, int] = {}
    for j in range(n):
        s = frame.iloc[:, j]
        if s.nunique(dropna=True) <= 1 and not (s.isna().any() and s.notna().any()):
            reason[j] = "constant"
            continue
        h = _column_hash(s)
        if h in seen and frame.iloc[:, seen[h]].equals(s):
            reason[j] = "duplicate"
            continue
        seen[h] = j
        alive.append(j)
    if max_features is not None and len(alive) > max_features:
        alive = _near_duplicates(frame, alive, reason, random_state)
    if max_features is not None and len(alive) > max_features:
        alive = _screen(frame, features, alive, reason, max_features, y, task, random_state, gains)
    keep = np.asarray(sorted(alive), dtype=np.intp)
    names = [features[j].name for j in sorted(reason)]
    summary = pd.DataFrame({"feature": names, "reason": [reason[j] for j in sorted(reason)]})
    return keep, summary


def _numeric_sample(frame, cols, rows):
    m = np.column_stack([pd.to_numeric(frame.iloc[rows, j], errors="coerce").to_numpy(np.float64) for j in cols])
    means = np.nanmean(np.where(np.isfinite(m), m, np.nan), axis=0)
    m = np.where(np.isfinite(m), m, np.where(np.isnan(means), 0.0, means))
    return m


def _near_duplicates(frame, alive, reason, random_state, threshold: float = 0.99, max_rows: int = 5000):
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(len(frame), min(max_rows, len(frame)), replace=False))
    num = [j for j in alive if frame.dtypes.iloc[j] != object]
    if len(num) < 2:
        return alive
    m = _numeric_sample(frame, num, rows)
    m = m - m.mean(axis=0)
    norm = np.sqrt((m * m).sum(axis=0))
    ok = norm > 0
    m[:, ok] /= norm[ok]
    kept_cols: list[int] = []
    dropped = set()
    block = 256
    kept_mat = np.empty((m.shape[0], 0))
    for lo in range(0, len(num), block):
        cand = list(range(lo, min(lo + block, len(num))))
        sub = m[:, cand]
        corr_prev = np.abs(kept_mat.T @ sub) if kept_mat.shape[1] else np.zeros((0, len(cand)))
        corr_self = np.abs(sub.T @ sub)
        new = []
        for i, c in enumerate(cand):
            if not ok[c]:
                new.append(c)
                continue
            if (corr_prev.shape[0] and corr_prev[:, i].max() > threshold) or any(
                    corr_self[i, k - lo] > threshold for k in new if ok[k]):
                dropped.add(num[c])
                reason[num[c]] = "near-duplicate"
            else:
                new.append(c)
        kept_cols.extend(new)
        kept_mat = np.concatenate([kept_mat, m[:, [c for c in new if ok[c]]]], axis=1)
    return [j for j in alive if j not in dropped]


def _screen(frame, features, alive, reason, max_features, y, task, random_state, gains=None):
    if y is None:
        for j in alive[max_features:]:
            reason[j] = "budget"
        return alive[:max_features]
    import lightgbm as lgb

    cols = {}
    for j in alive:
        s = frame.iloc[:, j]
        cols[j] = pd.factorize(s)[0].astype(np.float32) if s.dtype == object else s.to_numpy(np.float32)
    X = np.column_stack([np.where(cols[j] < 0, np.nan, cols[j]) if frame.dtypes.iloc[j] == object else cols[j]
                         for j in alive])
    y = np.asarray(y)
    params = dict(n_estimators=100, learning_rate=0.1, num_leaves=15, colsample_bytree=0.5, subsample=0.8,
                  subsample_freq=1, random_state=random_state, deterministic=True, force_row_wise=True,
                  importance_type="gain", n_jobs=1, verbose=-1)  # LightGBM's all-core default spins when shared
    model = lgb.LGBMRegressor(**params) if task == "regression" else lgb.LGBMClassifier(**params)
    model.fit(X, y)
    gain = np.asarray(model.feature_importances_, dtype=np.float64)
    if gains is not None:
        gains.update({alive[i]: float(g) for i, g in enumerate(gain)})
    order = np.argsort(-gain, kind="stable")
    chosen: list[int] = []
    best_of: set = set()
    for i in order:  # the best feature of each source column first
        src = source_column(features[alive[i]])
        if src not in best_of and gain[i] > 0:
            best_of.add(src)
            chosen.append(i)
    chosen = chosen[:max_features]
    rest = [i for i in order if i not in set(chosen)]
    chosen += rest[: max_features - len(chosen)]
    kept = {alive[i] for i in chosen}
    for j in alive:
        if j not in kept:
            reason[j] = "importance"
    logger.info("importance screen on %d rows kept %d of %d features", len(y), len(kept), len(alive))
    return [j for j in alive if j in kept]
