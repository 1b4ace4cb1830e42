"""Point-in-time deep feature synthesis as a scikit-learn transformer.

:class:`DFSTransformer` turns a :class:`~skrel.data.RelationalDataset` (rows of entity id and
cutoff) into one feature row per input row. Feature definitions follow featuretools' deep
feature synthesis (same names, same values; see :mod:`skrel.features._definitions`); they are
computed by one of two engines:

- ``"duckdb"`` (default): the definitions compiled to one SQL query run in DuckDB, out of core
  when ``memory_limit`` / ``temp_directory`` are set;
- ``"featuretools"``: featuretools itself, the reference semantics (slow).

Point-in-time rule (skrel's, and featuretools' with ``include_cutoff_time=True``): a row of a
table with a time column is visible at cutoff ``t`` when its time is ``<= t``; rows of tables
without a time column are always visible. An aggregation over a window of ``w`` days sees the
rows dated in ``[t - w, t]`` (featuretools' ``use_previous``).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..data import HORIZONS, RelationalDataset, SchemaError, horizon_cutoffs
from ._definitions import AGG_PRIMITIVES, build_features, infer_schema, used_columns, window_days

__all__ = ["DFSTransformer", "AGG_PRIMITIVES", "compute_features"]


def _duckdb_engine(*args, **kwargs):
    from ._duckdb import compute_duckdb

    return compute_duckdb(*args, **kwargs)


def _featuretools_engine(*args, **kwargs):
    from ._featuretools import compute_featuretools

    return compute_featuretools(*args, **kwargs)


#: Engines by name; each takes ``(db, schema, features, entity_table, entity_ids, cutoffs, **options)``.
ENGINES = {"duckdb": _duckdb_engine, "featuretools": _featuretools_engine}


def compute_features(engine: str, db, schema, features, entity_table, entity_ids, cutoffs, **options) -> pd.DataFrame:
    """Run ``engine`` (looked up in :data:`ENGINES` at call time)."""
    return ENGINES[engine](db, schema, features, entity_table, entity_ids, cutoffs, **options)


def _logical_of(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_timedelta64_dtype(s.dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "datetime"
    return "categorical-or-boolean"


class DFSTransformer(TransformerMixin, BaseEstimator):
    """Deep feature synthesis at each row's cutoff: ``RelationalDataset`` -> feature frame.

    Parameters
    ----------
    max_depth : int in [1, 3], default=2
        Maximum feature depth (featuretools' ``max_depth``): 1 gives the entity's columns,
        aggregates over tables that reference it and its parents' columns; 2 stacks once more
        (aggregates of parents' columns of related rows, aggregates of aggregates, rows two
        hops away).
    agg_primitives : list of str, optional
        Aggregation primitives among ``"count"``, ``"max"``, ``"mean"``, ``"min"``, ``"mode"``,
        ``"num_unique"``, ``"std"``, ``"sum"`` and ``"time_since_last"`` (all by default).
    windows : list of int or Timedelta-like, optional
        Look-back windows in whole days (e.g. ``[30, 90, 365]``). Each adds a copy of every
        aggregation of the entity over a table with a time column, restricted to rows dated in
        ``[cutoff - window, cutoff]``, named ``"MEAN(orders.qty, Last 30 Days)"``.
    tables : list of str, optional
        Tables to use (default: all; the entity table is always used).
    ignore_columns : dict of str to list of str, optional
        Columns not to use, per table (keys and time columns cannot be ignored).
    max_categories : int or float, default=0.5
        A string column is categorical (used by ``mode`` and ``num_unique``) when it has at
        most this many distinct values (an int) or at most this fraction of its non-missing
        values (a float); other string columns (names, free text) are not used.
    engine : {"duckdb", "featuretools"}, default="duckdb"
        ``"featuretools"`` computes the same features with featuretools (the reference; slow).
    memory_limit : str, optional
        DuckDB's memory limit, e.g. ``"2GB"``; beyond it DuckDB spills to ``temp_directory``.
    temp_directory : str or path, optional
        Where DuckDB spills (default: DuckDB's own choice).
    n_jobs : int, optional
        DuckDB threads (default: DuckDB's, all cores).
    horizon : {"cutoff", "data"}, default="cutoff"
        The time features are computed at. ``"cutoff"``: each row's cutoff. ``"data"``: the
        earlier of the row's cutoff and the last time in the database's used tables, so rows
        whose cutoff lies beyond the end of the data describe the entity as of the data's end
        (windows and ``time_since_last`` count back from it) instead of as inactive since then.
        Both see only rows dated at or before the row's cutoff; they differ only for cutoffs
        past the data, as in RelBench's protocol (test rows over the database cut at the test
        timestamp).
    verbose : int, default=0
        Print progress to stderr.

    Attributes
    ----------
    schema_ : Schema
        Column types and relationships inferred at fit.
    features_ : list
        Feature definitions, in output order.
    entity_table_ : str
        The entity table seen at fit.

    Notes
    -----
    Features of the same rows are computed once per database, feature configuration and engine:
    they are cached in ``X.db.cache`` (a per-process cache, never pickled), so grid searches over
    the learner of a pipeline do not recompute them.

    ``transform`` returns a pandas DataFrame (numeric and boolean features as float64,
    categorical ones as object); ``set_output(transform="pandas")`` keeps it so.

    Examples
    --------
    >>> from skrel.features import DFSTransformer
    >>> X, y = task.split(db, "train")  # doctest: +SKIP
    >>> F = DFSTransformer(max_depth=2, windows=[30]).fit_transform(X)  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        "max_depth": [Interval(Integral, 1, 3, closed="both")],
        "agg_primitives": [list, tuple, None],
        "windows": [list, tuple, None],
        "tables": [list, tuple, None],
        "ignore_columns": [dict, None],
        "max_categories": [Interval(Integral, 1, None, closed="left"), Interval(Real, 0, 1, closed="right")],
        "engine": [StrOptions(set(ENGINES))],
        "memory_limit": [str, None],
        "temp_directory": [str, os.PathLike, None],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
        "horizon": [StrOptions(set(HORIZONS))],
        "verbose": ["verbose"],
    }

    def __init__(self, max_depth=2, agg_primitives=None, windows=None, tables=None, ignore_columns=None,
                 max_categories=0.5, engine="duckdb", memory_limit=None, temp_directory=None, n_jobs=None,
                 horizon="cutoff", verbose=0):
        self.max_depth = max_depth
        self.agg_primitives = agg_primitives
        self.windows = windows
        self.tables = tables
        self.ignore_columns = ignore_columns
        self.max_categories = max_categories
        self.engine = engine
        self.memory_limit = memory_limit
        self.temp_directory = temp_directory
        self.n_jobs = n_jobs
        self.horizon = horizon
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Infer column types from ``X.db`` and build the feature definitions.

        Parameters
        ----------
        X : RelationalDataset
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        X = _check_X(X)
        prims = None if self.agg_primitives is None else list(self.agg_primitives)
        if prims is not None:
            unknown = [p for p in prims if p not in AGG_PRIMITIVES]
            if unknown or not prims:
                raise ValueError(
                    f"agg_primitives must be a non-empty list among {sorted(AGG_PRIMITIVES)}; unknown: {unknown}."
                )
        windows = sorted({window_days(w) for w in (self.windows or ())})
        self.schema_ = infer_schema(X.db, X.entity_table, self.tables, self.ignore_columns, self.max_categories)
        self.features_ = build_features(self.schema_, X.entity_table, self.max_depth, prims, windows)
        self.entity_table_ = X.entity_table
        self.windows_ = windows
        self.feature_names_out_ = unique_names([f.name for f in self.features_])
        self._columns = used_columns(self.schema_, self.features_)
        self._log(f"{len(self.features_)} features at depth {self.max_depth} over tables {sorted(self._columns)}")
        return self

    # ------------------------------------------------------------------ transform
    def transform(self, X) -> pd.DataFrame:
        """One feature row per row of ``X``, computed at the row's cutoff.

        Parameters
        ----------
        X : RelationalDataset
            Rows over a database with the tables and columns seen at fit.

        Returns
        -------
        pandas.DataFrame of shape (n_rows, n_features)
        """
        check_is_fitted(self, "features_")
        X = _check_X(X)
        if X.entity_table != self.entity_table_:
            raise ValueError(
                f"X is over entity table {X.entity_table!r}, but the transformer was fitted on {self.entity_table_!r}."
            )
        self._check_database(X.db)
        _check_entities(X)
        try:
            key = ("skrel.DFSTransformer", X.key, self._config_key())
        except TypeError:  # a column pandas cannot hash (lists): no fingerprint, no cache
            key = None
        cache = X.db.cache
        if key is not None and key in cache:
            self._log(f"{len(X)} rows: features from the cache")
            return cache[key].copy()
        t0 = time.perf_counter()
        options = {}
        if self.engine == "duckdb":
            options = dict(memory_limit=self.memory_limit, temp_directory=self.temp_directory, threads=self.n_jobs)
        cutoffs = horizon_cutoffs(X, self.horizon, tables=self._columns)
        out = compute_features(self.engine, X.db, self.schema_, self.features_, X.entity_table, X.entity_ids,
                               cutoffs, **options)
        out.columns = self.feature_names_out_
        if key is not None:
            cache[key] = out
        self._log(f"{len(X)} rows x {out.shape[1]} features with {self.engine} in {time.perf_counter() - t0:.1f}s")
        return out.copy()

    def get_feature_names_out(self, input_features=None):
        """Feature names, featuretools' spelling (e.g. ``"MEAN(orders.qty)"``)."""
        check_is_fitted(self, "features_")
        return np.asarray(self.feature_names_out_, dtype=object)

    # ------------------------------------------------------------------ helpers
    def _config_key(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.engine, self.horizon, self.schema_.signature(), [f.name for f in self.features_])).encode())
        return h.hexdigest()

    def _check_database(self, db) -> None:
        schema = self.schema_
        for t, cols in self._columns.items():
            if t not in db:
                raise SchemaError(f"Table {t!r}, used by the fitted features, is not in X's database.")
            tab = db[t]
            if tab.pkey != schema.pkeys[t] or tab.time_col != schema.time_cols[t]:
                raise SchemaError(
                    f"Table {t!r} has primary key {tab.pkey!r} and time column {tab.time_col!r} in X's database, "
                    f"but {schema.pkeys[t]!r} and {schema.time_cols[t]!r} at fit."
                )
            for c in cols:
                if c not in tab.df.columns:
                    raise SchemaError(f"Column {t}.{c}, used by the fitted features, is not in X's database.")
                fitted = schema.column(t, c).logical
                now = _logical_of(tab.df[c])
                if now != fitted and not (now == "categorical-or-boolean" and fitted in ("categorical", "boolean")):
                    raise SchemaError(
                        f"Column {t}.{c} was {fitted} at fit but has dtype {tab.df[c].dtype} in X's database."
                    )
        for r in schema.relationships:
            if r.child in self._columns and db[r.child].fkeys.get(r.fk) != r.parent:
                raise SchemaError(f"Foreign key {r.child}.{r.fk} -> {r.parent}, used at fit, is not in X's database.")

    def _log(self, message: str) -> None:
        if self.verbose:
            print(f"[DFSTransformer] {message}", file=sys.stderr, flush=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = False
        return tags


def unique_names(names) -> list[str]:
    """``names`` with repeats made unique: the second ``"x"`` becomes ``"x (2)"`` (a user's column
    may be named like a generated feature, e.g. ``"COUNT(orders)"``)."""
    seen: set[str] = set(names)
    count: dict[str, int] = {}
    out = []
    for n in names:
        k = count.get(n, 0) + 1
        count[n] = k
        if k == 1:
            out.append(n)
            continue
        while f"{n} ({k})" in seen:
            k += 1
        count[n] = k
        seen.add(f"{n} ({k})")
        out.append(f"{n} ({k})")
    return out


def _check_X(X) -> RelationalDataset:
    if not isinstance(X, RelationalDataset):
        raise TypeError(
            f"X must be a skrel RelationalDataset (rows of entity id and cutoff over a Database), got "
            f"{type(X).__name__}. Build one with task.split(db, 'train') or RelationalDataset(db, table, ids, cutoffs)."
        )
    if len(X) == 0:
        raise ValueError("X has no rows.")
    return X


def _check_entities(X: RelationalDataset) -> None:
    table = X.db[X.entity_table]
    known = pd.Index(table.df[table.pkey])
    ids = np.asarray(X.entity_ids)
    try:
        pos = known.get_indexer(ids)
    except (TypeError, ValueError) as exc:  # pragma: no cover - incomparable types
        raise SchemaError(f"Entity ids of X cannot be compared with {X.entity_table}.{table.pkey}: {exc}") from None
    if (pos < 0).any():
        bad = np.flatnonzero(pos < 0)
        raise SchemaError(
            f"{len(bad)} row(s) of X name entities missing from {X.entity_table}.{table.pkey} "
            f"(first: rows {bad[:5].tolist()}, ids {pd.unique(ids[bad])[:5].tolist()}). "
            f"Every entity id must be a primary-key value of {X.entity_table!r}."
        )
