"""The Spark engine: the DuckDB engine's plan, emitted as Spark SQL and run on a SparkSession.

The feature definitions compile to the same query as for DuckDB (:mod:`skrel.features._sql`: same
joins, same static/live split, same grouping), written in Spark's dialect
(:class:`~skrel.features._sql.SparkDialect`: ``mode(x, true)``, ``max_by``, ``collect_set``,
``div``, ``named_struct``, explicit column lists instead of DuckDB's ``* EXCLUDE``). It runs on the
session the user passes, or on the active one, or on a new ``local[*]`` session.

What moves where. The used columns of the used in-memory tables are sent to Spark once per call
(from the database's pandas frames through Arrow, times as int64 nanoseconds, categories as
codes). Tables that stay in Parquet files (:class:`~skrel.data.files.FileTable`) are read by
Spark where they lie (``session.read.parquet(path)``, see :func:`skrel.features._sql.spark.file_frame`): none of their rows
passes through the driver. The distinct (entity, cutoff) rows are sent per block; each block's
features come back to the driver (``toPandas``), so the result must fit in the driver's memory,
as with DuckDB. ``memory_limit`` sizes the queries and blocks exactly as for DuckDB (it bounds
the result held by the driver); Spark's own memory is the session's configuration.

File tables. The path goes to Spark as Spark sees it: a local path made absolute (on a cluster
every executor must reach it: a shared filesystem), a URL unchanged (``s3a://``, ``hdfs://``,
``gs://``, ...: the filesystem is the session's Hadoop configuration; fsspec-only protocols such
as ``memory://`` cannot be read by Spark and raise an error naming the table). The SQL over the
file mirrors the DuckDB engine's view of it: times as int64 nanoseconds (nanosecond Parquet
timestamps are read as longs with ``spark.sql.legacy.parquet.nanosAsLong``, set for the
duration of the call only and restored after; micro- and millisecond ones through
``unix_micros`` / ``timestampdiff``, independent of the session's time zone), durations as
seconds, categorical values as their strings, ``__pos`` from the file's row index
(``_metadata.row_index``) for tables without a time column, and the table's time bound
(:meth:`Database.upto`) as a filter on the file's rows. A column type Spark cannot read (e.g.
Parquet ``TIME``) raises an error naming the table and file.

Values. The same as DuckDB's but for floating-point rounding: Spark's ``sum``/``avg`` add in
partition order without compensation, DuckDB's ``fsum`` is compensated, so sums and means agree
to rounding (within 1e-9 relative on every test database; at 10^8 rows in
``benchmarks/distributed.py``, 5 of 1.9 million values, a STD of STDs, by up to 1.4e-9), not to
the last bit; every other primitive gives the same values.
"""

from __future__ import annotations

import logging
import os
import uuid

import numpy as np
import pandas as pd

from ._definitions import Feature, Schema
from ._sql import SPARK, plan_engine_queries, run_queries
from ._sql.spark import _has_nanos, file_frame

__all__ = ["compute_spark", "default_session", "java_available"]

logger = logging.getLogger("skrel.features.spark")

_INSTALL = "pip install 'skrel[spark]' (pyspark >= 4.0) and a Java runtime (17 or later; JAVA_HOME or java on PATH)"


def java_available() -> bool:
    """Is there a ``java`` executable (``JAVA_HOME/bin/java`` or on ``PATH``)?"""
    import shutil

    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return True
    return shutil.which("java") is not None


def _import_pyspark():
    try:
        import pyspark
        from pyspark.sql import SparkSession
    except ImportError:
        raise ImportError(f"engine='spark' needs pyspark: {_INSTALL}.") from None
    major = int(pyspark.__version__.split(".")[0])
    if major < 4:
        raise ImportError(f"engine='spark' needs pyspark >= 4.0 (deterministic mode()), found {pyspark.__version__}: "
                          f"{_INSTALL}.")
    return SparkSession


def default_session():
    """The active SparkSession, or a new ``local[*]`` one (shuffle partitions: twice the cores,
    no UI)."""
    SparkSession = _import_pyspark()
    session = SparkSession.getActiveSession()
    if session is not None:
        return session
    if not java_available():
        raise RuntimeError(f"engine='spark' found no Java runtime to start Spark: {_INSTALL}.")
    cores = os.cpu_count() or 1
    logger.info("starting a local[*] Spark session (%d cores)", cores)
    try:
        return (SparkSession.builder.master("local[*]").appName("skrel")
                .config("spark.sql.shuffle.partitions", str(2 * cores))
                .config("spark.ui.enabled", "false")
                .getOrCreate())
    except Exception as exc:  # the JVM did not start: say what is missing
        raise RuntimeError(f"engine='spark' could not start a local Spark session ({exc}); needs {_INSTALL}.") from exc


def _spark_schema(frame: pd.DataFrame):
    """The Spark schema of a prepared frame (generated column names, no datetimes)."""
    from pyspark.sql import types as T

    fields = []
    for c in frame.columns:
        dt = frame[c].dtype
        if pd.api.types.is_bool_dtype(dt):
            t = T.BooleanType()
        elif pd.api.types.is_integer_dtype(dt):
            t = T.LongType()
        elif pd.api.types.is_float_dtype(dt):
            t = T.DoubleType()
        elif dt == object or pd.api.types.is_string_dtype(dt):
            t = T.StringType()
        else:  # pragma: no cover - prepare_tables converts every other type
            raise TypeError(f"column {c!r} of dtype {dt} cannot be sent to Spark.")
        fields.append(T.StructField(str(c), t, nullable=True))
    return T.StructType(fields)


def _to_spark(session, frame: pd.DataFrame):
    if any(pd.api.types.is_unsigned_integer_dtype(frame[c].dtype) for c in frame.columns):
        frame = frame.astype({c: np.int64 for c in frame.columns
                              if pd.api.types.is_unsigned_integer_dtype(frame[c].dtype)})
    return session.createDataFrame(frame, schema=_spark_schema(frame))


_ARROW = "spark.sql.execution.arrow.pyspark.enabled"
_NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"


class _Confs:
    """Session settings while inside (each restored after, or unset if it was unset)."""

    def __init__(self, session, settings: dict[str, str]):
        self.session = session
        self.settings = dict(settings)

    def __enter__(self):
        self.before = {k: self.session.conf.get(k, None) for k in self.settings}
        for k, v in self.settings.items():
            self.session.conf.set(k, v)
        return self

    def __exit__(self, *exc):
        for k, v in self.before.items():
            if v is None:
                self.session.conf.unset(k)
            else:
                self.session.conf.set(k, v)


def compute_spark(db, schema: Schema, features: list[Feature], entity_table: str, entity_ids, cutoffs, *,
                  spark=None, return_sql: bool = False, queries: list[list[Feature]] | None = None,
                  block_rows: int | None = None, dtype="float64", progress=None):
    """Evaluate ``features`` for the rows ``(entity_ids[i], cutoffs[i])`` with Spark SQL.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession, optional
        The session to run on (default: :func:`default_session`).
    return_sql : bool, default=False
        Return the Spark SQL (a string, or a list with several queries) instead of running it.
    queries, block_rows, dtype, progress
        As :func:`~skrel.features._duckdb.compute_duckdb`.

    Returns
    -------
    pandas.DataFrame
        As :func:`~skrel.features._duckdb.compute_duckdb`.
    """
    prefix = f"skrel_{uuid.uuid4().hex[:12]}_"  # temporary views of this call only
    plan = plan_engine_queries(SPARK, db, schema, features, entity_table, entity_ids, cutoffs, queries, prefix)
    frame, codes, features, queries, tables, table_sql, compiled, columns, colnames = plan
    frame_sql = f"{prefix}frame"
    if return_sql:
        return compiled[0][0] if len(compiled) == 1 else [sql for sql, _ in compiled]

    session = spark if spark is not None else default_session()
    views = []
    settings = {_ARROW: "true"}
    if any(select is None and _has_nanos(df) for df, select in tables.values()):
        settings[_NANOS_AS_LONG] = "true"
    with _Confs(session, settings):
        try:
            for t, (df, select) in tables.items():
                if select is None:  # a table that stays in its file: Spark reads it there
                    file_frame(session, df, schema, t, columns[t], colnames[t]).createOrReplaceTempView(table_sql[t])
                    views.append(table_sql[t])
                    continue
                raw = f"{table_sql[t]}_raw"
                _to_spark(session, df).createOrReplaceTempView(raw)
                views.append(raw)
                session.sql(f"SELECT {select} FROM {raw}").createOrReplaceTempView(table_sql[t])
                views.append(table_sql[t])

            def execute(sql, part):
                _to_spark(session, part).createOrReplaceTempView(frame_sql)
                views.append(frame_sql)
                out = session.sql(sql).toPandas()
                return {c: out[c].to_numpy() for c in out.columns}

            return run_queries(execute, compiled, queries, features, frame, codes, block_rows, dtype, progress,
                               engine="Spark")
        finally:
            for v in dict.fromkeys(views):
                session.catalog.dropTempView(v)
