"""The Spark engine: the DuckDB engine's plan, emitted as Spark SQL and run on a SparkSession.

The feature definitions compile to the same query as in :mod:`skrel.features._duckdb` (same
joins, same static/live split, same grouping), written in Spark's dialect
(:data:`~skrel.features._duckdb.SPARK`: ``mode(x, true)``, ``max_by``, ``collect_set``, ``div``,
``named_struct``, explicit column lists instead of DuckDB's ``* EXCLUDE``). It runs on the
session the user passes, or on the active one, or on a new ``local[*]`` session.

What moves where. The used columns of the used in-memory tables are sent to Spark once per call
(from the database's pandas frames through Arrow, times as int64 nanoseconds, categories as
codes). Tables that stay in Parquet files (:class:`~skrel.data.files.FileTable`) are read by
Spark where they lie (``session.read.parquet(path)``, see :func:`file_frame`): none of their rows
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

from ._definitions import Feature, Schema, used_columns
from ._duckdb import SPARK, _compile, frame_rows, prepare_tables, run_queries

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


def _has_nanos(tab) -> bool:
    """Does the file hold a nanosecond timestamp (which Spark reads only as a long)?"""
    import pyarrow as pa

    return any(pa.types.is_timestamp(f.type) and f.type.unit == "ns" for f in tab._arrow_schema)


def spark_path(path: str) -> str:
    """``path`` as Spark reads it: a URL unchanged, a local path absolute."""
    from ..data.files import _is_url

    return path if _is_url(path) else os.path.abspath(path)


def _bq(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


_UNIT_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def _nanoseconds(src: str, spark_type, arrow_type, where: str) -> str:
    """Spark SQL giving the int64 nanoseconds of a timestamp column read from Parquet."""
    from pyspark.sql import types as T

    if isinstance(spark_type, T.LongType) and arrow_type.unit == "ns":  # read with nanosAsLong
        return src
    if isinstance(spark_type, T.TimestampNTZType):  # wall-clock times: no session time zone involved
        return f"timestampdiff(MICROSECOND, TIMESTAMP_NTZ'1970-01-01 00:00:00', {src}) * 1000"
    if isinstance(spark_type, T.TimestampType):
        return f"unix_micros({src}) * 1000"
    raise TypeError(f"{where} is a Parquet timestamp ({arrow_type}) that Spark reads as {spark_type.simpleString()}; "
                    "engine='spark' cannot convert it to a time. Rewrite the column as microsecond or nanosecond "
                    "timestamps, or use engine='duckdb'.")


def file_frame(session, tab, schema: Schema, t: str, cols: list[str], sql_names: dict[str, str]):
    """The Spark DataFrame of a table that stays in its file, read where it lies.

    As :func:`~skrel.features._duckdb._file_view` (the DuckDB engine's view of a file table):
    columns renamed to ``sql_names``, times as int64 nanoseconds, durations as seconds,
    categorical values as strings, ``__pos`` the row's position in the file for tables without
    a time column (else 0), and only the rows within the table's time bound (``upto``; rows
    with a missing time are then left out). Nanosecond timestamps need
    ``spark.sql.legacy.parquet.nanosAsLong`` set while the frame is read and queried
    (:func:`compute_spark` sets it).
    """
    import pyarrow as pa
    from pyspark.sql import types as T

    path = spark_path(tab.path)
    try:
        raw = session.read.parquet(path)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"engine='spark' cannot read table {t!r} from {path!r}: {first}. Spark reads files through its "
            "Hadoop filesystems (local paths, hdfs://, s3a://, gs://, abfss:// with their connectors configured "
            "in the session) and Parquet types it supports (not TIME or INTERVAL). Use engine='duckdb', or read "
            "the table into memory (Database.from_parquet with a larger memory_rows)."
        ) from exc
    types = {f.name: f.dataType for f in raw.schema.fields}
    keys = {schema.pkeys[t], *tab.fkeys}

    def where(c):
        return f"column {t}.{c} of {tab.path}"

    def ns_of(c):
        return _nanoseconds(_bq(c), types[c], tab.arrow_type(c), where(c))

    select = []
    for c in cols:
        col = schema.column(t, c)
        src = _bq(c)
        at = tab.arrow_type(c)
        dtype = tab.schema_frame[c].dtype
        if col.logical == "datetime":
            e = ns_of(c)
        elif pa.types.is_duration(at):
            if not isinstance(types[c], T.LongType):
                raise TypeError(f"{where(c)} is a Parquet duration ({at}) that Spark reads as "
                                f"{types[c].simpleString()}; rewrite it as seconds (a number), or use engine='duckdb'.")
            e = f"CAST({src} AS DOUBLE) / 1e{_UNIT_DIGITS[at.unit]}"
        elif col.logical == "categorical" and dtype != object and "numeric" not in col.tags:
            e = f"CAST({src} AS STRING)"
        elif col.logical == "numeric" and isinstance(types[c], T.DecimalType) and c not in keys:
            e = f"CAST({src} AS DOUBLE)"  # UINT64 columns arrive as DECIMAL(20,0); avg would round to 4 digits
        else:
            e = src
        select.append(f"{e} AS {sql_names[c]}")
    positions = schema.time_cols[t] is None
    select.append("CAST(_metadata.row_index AS BIGINT) AS __pos" if positions else "CAST(0 AS BIGINT) AS __pos")
    if tab.upto is not None:
        raw = raw.where(f"{ns_of(tab.time_col)} <= {int(tab.upto.value)}")
    return raw.selectExpr(*select)


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
    frame, codes = frame_rows(db, schema, entity_table, entity_ids, cutoffs)
    features = list(features)
    queries = [features] if queries is None else [list(q) for q in queries]
    columns = used_columns(schema, features)
    columns.setdefault(entity_table, [schema.pkeys[entity_table]])
    tables, categories, colnames = prepare_tables(db, schema, columns, dialect=SPARK)
    prefix = f"skrel_{uuid.uuid4().hex[:12]}_"  # temporary views of this call only
    table_sql = {t: f"{prefix}t{i}" for i, t in enumerate(tables)}
    frame_sql = f"{prefix}frame"
    compiled = [_compile(schema, q, entity_table, columns, table_sql, colnames, categories, SPARK, frame_sql)
                for q in queries]
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
