"""Point-in-time deep feature synthesis as a scikit-learn transformer.

:class:`DFSTransformer` turns a :class:`~skrel.data.RelationalDataset` (rows of entity id and
cutoff) into one feature row per input row. Feature definitions follow featuretools' deep
feature synthesis (same names, same values; see :mod:`skrel.features._definitions`); they are
computed by one of three engines:

- ``"duckdb"`` (default): the definitions compiled to one SQL query run in DuckDB, out of core
  when ``memory_limit`` / ``temp_directory`` are set;
- ``"spark"``: the same query in Spark SQL, run on a SparkSession (``spark=``; by default the
  active one, else a new ``local[*]`` one), see :mod:`skrel.features._spark`;
- ``"featuretools"``: featuretools itself, the reference semantics (slow).

Point-in-time rule (skrel's, and featuretools' with ``include_cutoff_time=True``): a row of a
table with a time column is visible at cutoff ``t`` when its time is ``<= t``; rows of tables
without a time column are always visible. An aggregation over a window of ``w`` days sees the
rows dated in ``[t - w, t]`` (featuretools' ``use_previous``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from ..data import HORIZONS, RelationalDataset, SchemaError, horizon_cutoffs
from ._definitions import AGG_PRIMITIVES, build_features, infer_schema, used_columns, window_days
from ..utils import default_memory_limit, infer_task_type, parse_memory
from ._plan import _WORK_FACTOR, plan_queries, prune, source_column

logger = logging.getLogger("skrel.features.dfs")

#: Rows the feature budget's pruning looks at, at most.
_MAX_SAMPLE_ROWS = 20_000
#: Rows x definitions the pruning sample holds at most (many definitions: fewer rows, at least 1000).
_SAMPLE_CELLS = 20_000_000
#: With more than this many times ``max_features`` definitions, pruning screens the shallow ones first.
_STAGE_FACTOR = 4

__all__ = ["DFSTransformer", "AGG_PRIMITIVES", "compute_features"]


def _duckdb_engine(*args, **kwargs):
    from ._duckdb import compute_duckdb

    return compute_duckdb(*args, **kwargs)


def _spark_engine(*args, **kwargs):
    from ._spark import compute_spark

    return compute_spark(*args, **kwargs)


def _featuretools_engine(*args, **kwargs):
    from ._featuretools import compute_featuretools

    return compute_featuretools(*args, **kwargs)


#: Engines by name; each takes ``(db, schema, features, entity_table, entity_ids, cutoffs, **options)``.
ENGINES = {"duckdb": _duckdb_engine, "spark": _spark_engine, "featuretools": _featuretools_engine}
#: Engines that compile the definitions to SQL (their queries are planned within the memory budget).
SQL_ENGINES = ("duckdb", "spark")


class SessionParam:
    """Estimators with a ``spark`` parameter (a SparkSession, which can be neither copied nor
    pickled): :func:`sklearn.base.clone` passes the session itself to the clone, and pickling
    leaves it out (an unpickled estimator has ``spark=None``: the active session, or a new local
    one, at its next ``fit``/``transform`` with ``engine="spark"``)."""

    def __sklearn_clone__(self):
        from sklearn.base import clone

        params = self.get_params(deep=False)
        session = params.pop("spark")
        return type(self)(**{k: clone(v, safe=False) for k, v in params.items()}, spark=session)

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ may hand out __dict__ itself
        if state.get("spark") is not None:
            state["spark"] = None
        return state


def check_session(spark) -> None:
    """``spark`` is None or looks like a SparkSession."""
    if spark is not None and not (hasattr(spark, "sql") and hasattr(spark, "createDataFrame")):
        raise TypeError(f"spark must be a pyspark.sql.SparkSession or None, got {type(spark).__name__}.")


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


class DFSTransformer(SessionParam, TransformerMixin, BaseEstimator):
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
    engine : {"duckdb", "spark", "featuretools"}, default="duckdb"
        ``"spark"`` runs the same query as Spark SQL on ``spark`` (values equal DuckDB's but for
        floating-point rounding of sums and means); ``"featuretools"`` computes the same
        features with featuretools (the reference; slow).
    spark : pyspark.sql.SparkSession or None, default=None
        The session of ``engine="spark"`` (``None``: the active session, else a new
        ``local[*]`` one); ignored by the other engines. Cloning keeps this very session;
        pickling drops it (``None`` after unpickling).
    max_features : int or None, default=None
        Feature budget. When set, ``fit`` computes every feature on a sample of the rows and
        prunes constant, duplicate and (over the budget) near-duplicate features, then keeps
        the ``max_features`` most important ones (with ``y``: a small LightGBM's gain, the best
        feature of each source column first); ``pruning_summary_`` says what was dropped and
        why, and only the kept features are ever computed again. ``None``: every definition.
    memory_limit : int, str or None, default=None
        Memory budget of feature computation, bytes or a size such as ``"2GB"``. ``None``: 40%
        of the memory available at ``fit``. It is DuckDB's own ``memory_limit`` (DuckDB spills
        beyond it to ``temp_directory``) and sizes the queries and row blocks features are
        computed in (see :mod:`skrel.features._plan`); with Spark it sizes the queries and
        blocks only (the result each brings back to the driver), Spark's memory is the
        session's.
    temp_directory : str or path, optional
        Where DuckDB spills (default: a private temporary directory, removed afterwards).
    n_jobs : int, optional
        DuckDB threads (default: DuckDB's, all cores); Spark's parallelism is the session's.
    dtype : {"float64", "float32"}, default="float64"
        Storage of numeric features (``"float32"`` halves memory).
    random_state : int, RandomState instance or None, default=None
        Seeds the row sample and the importance screen of ``max_features``.
    horizon : {"cutoff", "data"}, default="cutoff"
        The time features are computed at. ``"cutoff"``: each row's cutoff. ``"data"``: the
        earlier of the row's cutoff and the last time in the database's used tables, so rows
        whose cutoff lies beyond the end of the data describe the entity as of the data's end
        (windows and ``time_since_last`` count back from it) instead of as inactive since then.
        Both see only rows dated at or before the row's cutoff; they differ only for cutoffs
        past the data, as in RelBench's protocol (test rows over the database cut at the test
        timestamp).
    verbose : int, default=0
        0: silent; 1: a progress bar (tqdm) over the features computed, and log lines through
        the ``logging`` logger ``skrel.features.dfs``.

    Attributes
    ----------
    schema_ : Schema
        Column types and relationships inferred at fit.
    features_ : list
        Feature definitions computed by ``transform``, in output order (the kept ones when
        ``max_features`` is set).
    feature_names_out_ : list of str
        Their names; a name that repeats (a user's column named like a generated feature) gets
        a suffix: ``"COUNT(orders) (2)"``.
    pruning_summary_ : pandas.DataFrame
        ``feature`` and ``reason`` (``"constant"``, ``"duplicate"``, ``"near-duplicate"``,
        ``"importance"`` or ``"budget"``) of each pruned definition; empty without pruning.
    n_definitions_ : int
        Feature definitions before pruning.
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
        "spark": "no_validation",
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
        "memory_limit": [str, Interval(Integral, 1, None, closed="left"), None],
        "temp_directory": [str, os.PathLike, None],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
        "dtype": [StrOptions({"float64", "float32"})],
        "random_state": ["random_state"],
        "horizon": [StrOptions(set(HORIZONS))],
        "verbose": ["verbose"],
    }

    def __init__(self, max_depth=2, agg_primitives=None, windows=None, tables=None, ignore_columns=None,
                 max_categories=0.5, engine="duckdb", spark=None, max_features=None, memory_limit=None,
                 temp_directory=None, n_jobs=None, dtype="float64", random_state=None, horizon="cutoff", verbose=0):
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
        self.dtype = dtype
        self.random_state = random_state
        self.horizon = horizon
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Infer column types from ``X.db`` and build the feature definitions.

        Parameters
        ----------
        X : RelationalDataset
        y : array-like of shape (n_rows,), optional
            Labels, used only by the importance screen of ``max_features``.

        Returns
        -------
        self
        """
        self._validate_params()
        check_session(self.spark)
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
        features = build_features(self.schema_, X.entity_table, self.max_depth, prims, windows)
        self.entity_table_ = X.entity_table
        self.windows_ = windows
        self.n_definitions_ = len(features)
        self._budget = parse_memory(self.memory_limit) if self.memory_limit is not None else default_memory_limit()
        # the horizon's "end of the data" is over every table a definition reads, pruned or not
        self._horizon_tables = sorted(used_columns(self.schema_, features))
        itemsize = np.dtype(self.dtype).itemsize
        logger.info("%d feature definitions at depth %d over tables %s; %d rows x %d features = %.0f MB "
                    "(memory budget %.0f MB)", len(features), self.max_depth, self._horizon_tables, len(X),
                    len(features), len(X) * len(features) * itemsize / 1e6, self._budget / 1e6)
        self.pruning_summary_ = pd.DataFrame({"feature": pd.Series(dtype=object), "reason": pd.Series(dtype=object)})
        if self.max_features is None:
            self._set_features(features)
            return self
        # prune on a sample: all rows when they fit the budget (then the result is exact and
        # reused by transform(X)), else a random sample of whole rows
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(2**31 - 1))
        fit_rows = max(1000, min(self._budget // max(1, len(features) * 8 * _WORK_FACTOR),
                                 _SAMPLE_CELLS // max(1, len(features))))
        n_sample = int(min(len(X), _MAX_SAMPLE_ROWS, fit_rows))
        rows = np.arange(len(X)) if n_sample >= len(X) else np.sort(rng.choice(len(X), n_sample, replace=False))
        Xs = X if n_sample >= len(X) else X[rows]
        task = None
        if y is not None:
            y = np.asarray(y)[rows]
            task = "regression" if infer_task_type(y) == "regression" else "classification"
        staged = []
        if len(features) > _STAGE_FACTOR * self.max_features and any(f.depth > 1 for f in features):
            # many definitions: screen the shallow ones first (cheap: no aggregate of aggregates),
            # then compute only the deep definitions made from a column that proved useful
            shallow = [f for f in features if f.depth <= 1]
            deep = [f for f in features if f.depth > 1]
            frame1 = self._cached(Xs, shallow)
            gains: dict = {}
            keep1, _ = prune(frame1, shallow, max(1, self.max_features // 2), y, task, seed, gains)
            best: dict = {}
            for j in keep1:
                src = source_column(shallow[j])
                best[src] = max(best.get(src, 0.0), gains.get(j, 0.0))
            n_deep: dict = {}
            for f in deep:
                n_deep[source_column(f)] = n_deep.get(source_column(f), 0) + 1
            useful, total = set(), 0
            for src in sorted(best, key=lambda c: -best[c]):  # the best columns, within 2 x max_features
                if useful and total + n_deep.get(src, 0) > 2 * self.max_features:
                    continue
                useful.add(src)
                total += n_deep.get(src, 0)
            staged = [f for f in deep if source_column(f) not in useful]
            candidates = shallow + [f for f in deep if source_column(f) in useful]
            logger.info("staged screen: %d of %d deep definitions read one of the best columns at depth 1", len(
                candidates) - len(shallow), len(deep))
            deep_frame = self._cached(Xs, candidates[len(shallow):])
            frame = pd.concat([frame1, deep_frame], axis=1) if len(deep_frame.columns) else frame1
        else:
            candidates = features
            frame = self._cached(Xs, features)
        keep, summary = prune(frame, candidates, self.max_features, y, task, seed)
        if staged:
            summary = pd.concat([summary, pd.DataFrame({"feature": [f.name for f in staged],
                                                        "reason": "column screened out at depth 1"})],
                                ignore_index=True)
        self.pruning_summary_ = summary
        features = candidates
        self._set_features([features[j] for j in keep])
        logger.info("kept %d of %d features (%s)", len(self.features_), len(features),
                    self.pruning_summary_["reason"].value_counts().to_dict())
        if Xs is X:
            key = self._cache_key(X)
            if key is not None:
                kept = frame.iloc[:, keep]
                kept.columns = self.feature_names_out_
                X.db.cache[key] = kept
        return self

    def _set_features(self, features) -> None:
        self.features_ = list(features)
        self.feature_names_out_ = unique_names([f.name for f in self.features_])
        self._columns = used_columns(self.schema_, self.features_)

    def _compute(self, X, features) -> pd.DataFrame:
        """``features`` at the rows of ``X`` (no cache), planned within the memory budget."""
        if not features:
            return pd.DataFrame(index=pd.RangeIndex(len(X)))
        t0 = time.perf_counter()
        options = {}
        cutoffs = horizon_cutoffs(X, self.horizon, tables=self._horizon_tables)
        n_pairs = len(pd.MultiIndex.from_arrays([np.asarray(X.entity_ids), cutoffs]).unique())
        itemsize = np.dtype(self.dtype).itemsize
        with tqdm(total=len(features), desc="DFS features", unit="feature", disable=not self.verbose,
                  leave=False) as bar:
            if self.engine in SQL_ENGINES:
                from ._sql import query_groups

                queries, block_rows = plan_queries(query_groups(features), n_pairs, self._budget, itemsize)
                logger.info("%d rows x %d features: %d queries, %s rows per block", n_pairs, len(features),
                            len(queries), block_rows or "all")
                options = dict(queries=queries, block_rows=block_rows, dtype=self.dtype,
                               progress=lambda k: bar.update(k))
                if self.engine == "duckdb":
                    options.update(memory_limit=f"{max(self._budget // 2**20, 64)}MiB",
                                   temp_directory=self.temp_directory, threads=self.n_jobs)
                else:
                    check_session(self.spark)
                    options.update(spark=self.spark)
            out = compute_features(self.engine, X.db, self.schema_, features, X.entity_table, X.entity_ids,
                                   cutoffs, **options)
            if self.engine not in SQL_ENGINES:
                bar.update(len(features))
        for j, t in enumerate(out.dtypes):  # the featuretools engine returns float64
            if t != object and t != self.dtype:
                out.isetitem(j, out.iloc[:, j].astype(self.dtype))
        logger.info("%d rows x %d features with %s in %.1fs", len(X), len(features), self.engine,
                    time.perf_counter() - t0)
        return out

    def _cache_key(self, X, features=None):
        try:
            return ("skrel.DFSTransformer", X.key, self._config_key(features))
        except TypeError:  # a column pandas cannot hash (lists): no fingerprint, no cache
            return None

    def _cached(self, X, features) -> pd.DataFrame:
        """``features`` at the rows of ``X`` through the database's cache (not copied: the
        caller must not modify it)."""
        key = self._cache_key(X, features)
        if key is not None and key in X.db.cache:
            logger.info("%d rows: features from the cache", len(X))
            return X.db.cache[key]
        out = self._compute(X, features)
        if key is not None:
            X.db.cache[key] = out
        return out

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
        key = self._cache_key(X)
        cache = X.db.cache
        if key is not None and key in cache:
            logger.info("%d rows: features from the cache", len(X))
            return cache[key].copy()
        out = self._compute(X, self.features_)
        out.columns = self.feature_names_out_
        if key is not None:
            cache[key] = out
        return out.copy()

    def get_feature_names_out(self, input_features=None):
        """Feature names, featuretools' spelling (e.g. ``"MEAN(orders.qty)"``)."""
        check_is_fitted(self, "features_")
        return np.asarray(self.feature_names_out_, dtype=object)

    # ------------------------------------------------------------------ helpers
    def _config_key(self, features=None) -> str:
        features = self.features_ if features is None else features
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.engine, self.horizon, self.dtype, self._horizon_tables, self.schema_.signature(),
                       [f.key() for f in features])).encode())
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
            frame = tab.schema_frame if hasattr(tab, "schema_frame") else tab.df  # a file table: its schema
            for c in cols:
                if c not in frame.columns:
                    raise SchemaError(f"Column {t}.{c}, used by the fitted features, is not in X's database.")
                fitted = schema.column(t, c).logical
                now = _logical_of(frame[c])
                if now != fitted and not (now == "categorical-or-boolean" and fitted in ("categorical", "boolean")):
                    raise SchemaError(
                        f"Column {t}.{c} was {fitted} at fit but has dtype {frame[c].dtype} in X's database."
                    )
        for r in schema.relationships:
            if r.child in self._columns and db[r.child].fkeys.get(r.fk) != r.parent:
                raise SchemaError(f"Foreign key {r.child}.{r.fk} -> {r.parent}, used at fit, is not in X's database.")

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
    known = pd.Index(table.column(table.pkey) if hasattr(table, "column") else table.df[table.pkey])
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
