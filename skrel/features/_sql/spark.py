"""Spark SQL's dialect (Spark >= 4.0) and how Spark reads a table that stays in its file."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ...utils import is_url
from .._definitions import Schema
from .dialect import Dialect, register_dialect

__all__ = ["SparkDialect", "SPARK", "file_frame", "spark_path"]


class SparkDialect(Dialect):
    """Spark SQL (Spark >= 4.0: ``mode(x, true)``); valid with and without ANSI mode.

    In-memory tables always go to Spark as new frames over the generated column names, with
    times already in int64 nanoseconds (Spark's timestamps are microseconds). A table that stays
    in its file is ``(file_table, None)``: the engine reads it with :func:`file_frame`, with
    the same conversions in Spark SQL.
    """

    name = "spark"
    string_type = "STRING"
    order_rows = False
    always_rename = True
    aggregates = {
        "count": "count(*)",
        "max": "CAST(max({x}) AS DOUBLE)",
        # avg, not sum / count (a division by zero is an error under ANSI mode); its sum is not
        # compensated (DuckDB's fsum is), so the two agree to rounding, not to the last bit
        "mean": "avg(CAST({x} AS DOUBLE))",
        "min": "CAST(min({x}) AS DOUBLE)",
        "mode": "mode({x}, true)",  # deterministic: ties to the smallest value
        "num_unique": "CASE WHEN count(*) > 0 THEN size(collect_set({x})) END",
        "std": "stddev_samp(CAST({x} AS DOUBLE))",
        "sum": "sum(CAST({x} AS DOUBLE))",
        "time_since_last": "max_by({x}, {order})",
    }

    def quote(self, name: str) -> str:
        return _bq(name)

    def int_div(self, a: str, b) -> str:
        return f"({a}) div {b}"  # truncates toward zero, as DuckDB's //

    def struct(self, fields: dict[str, str]) -> str:
        return "named_struct(" + ", ".join(f"'{k}', {v}" for k, v in fields.items()) + ")"

    def literal(self, value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "NULL"
        return f"CAST({float(value)!r} AS DOUBLE)"  # a bare 0.0 is a DECIMAL in Spark

    def star_except(self, alias: str, columns: list[str], excluded: list[str]) -> str:
        return ", ".join(f"{alias}.{c}" for c in columns if c not in set(excluded))

    def datetime_column(self, s: pd.Series):
        ts = s.astype("datetime64[ns]")
        return pd.arrays.IntegerArray(ts.to_numpy().view(np.int64), ts.isna().to_numpy()), None

    def file_table(self, tab, schema: Schema, t: str, cols: list[str], sql_names: dict[str, str]):
        return tab, None  # read by Spark where it lies (file_frame, given the session)


def _has_nanos(tab) -> bool:
    """Does the file hold a nanosecond timestamp (which Spark reads only as a long)?"""
    import pyarrow as pa

    return any(pa.types.is_timestamp(f.type) and f.type.unit == "ns" for f in tab._arrow_schema)


def spark_path(path: str) -> str:
    """``path`` as Spark reads it: a URL unchanged, a local path absolute."""
    return path if is_url(path) else os.path.abspath(path)


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

    As :meth:`DuckDBDialect.file_table <skrel.features._sql.duckdb.DuckDBDialect.file_table>`:
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


SPARK = register_dialect(SparkDialect())
