"""DuckDB's dialect: the spellings of :mod:`skrel.features._duckdb`'s queries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...utils import quote_identifier
from .._definitions import Schema
from .dialect import Dialect, register_dialect

__all__ = ["DuckDBDialect", "DUCKDB", "quote_identifier"]


class DuckDBDialect(Dialect):
    """DuckDB (>= 1.1)."""

    name = "duckdb"
    string_type = "VARCHAR"
    order_rows = True
    aggregates = {
        "count": "count(*)",
        "max": "CAST(max({x}) AS DOUBLE)",
        # a compensated sum (fsum), so that a mean does not depend on the order of the rows
        "mean": "fsum(CAST({x} AS DOUBLE)) / count({x})",
        "min": "CAST(min({x}) AS DOUBLE)",
        # the most frequent value, ties to the smallest (pandas' Series.mode()[0])
        "mode": ("list_min(list_transform(map_entries(list_aggregate(list({x}), 'histogram')), "
                 "lambda e: {{'n': -CAST(e.value AS BIGINT), 'k': e.key}})).k"),
        # list(x), not count(DISTINCT x) or histogram(x): DuckDB plans those as extra pipelines;
        # missing with no rows, 0 with rows whose values are all missing (featuretools')
        "num_unique": "CASE WHEN count(*) > 0 THEN length(list_distinct(list({x}))) END",
        "std": "stddev_samp(CAST({x} AS DOUBLE))",
        "sum": "fsum(CAST({x} AS DOUBLE))",
        # the value in the last row (by time, then primary key; by position without a time column)
        "time_since_last": "arg_max_null({x}, {order})",
    }

    def quote(self, name: str) -> str:
        return quote_identifier(name)

    def int_div(self, a: str, b) -> str:
        return f"({a}) // {b}"

    def struct(self, fields: dict[str, str]) -> str:
        return "{" + ", ".join(f"'{k}': {v}" for k, v in fields.items()) + "}"

    def literal(self, value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "NULL"
        return repr(float(value))

    def star_except(self, alias: str, columns: list[str], excluded: list[str]) -> str:
        return f"{alias}.* EXCLUDE ({', '.join(excluded)})"

    def datetime_column(self, s: pd.Series):
        return (s.astype("datetime64[ns]") if s.dtype != "datetime64[ns]" else None), "epoch_ns({})"

    def file_table(self, tab, schema: Schema, t: str, cols: list[str], sql_names: dict[str, str]):
        """``(relation, select)`` of a table that stays in its file: DuckDB reads it where it lies.

        As an in-memory table, but converted in SQL: times to nanoseconds, durations to seconds,
        categorical values to their strings (not to codes: no pass over the file to collect the
        categories; the outputs are the same strings).
        """
        positions = schema.time_cols[t] is None
        select = []
        for c in cols:
            col = schema.column(t, c)
            src = self.quote(c)
            dtype = tab.schema_frame[c].dtype
            if col.logical == "datetime":
                e = f"epoch_ns({src})"
            elif pd.api.types.is_timedelta64_dtype(dtype):
                e = f"epoch({src})"
            elif col.logical == "categorical" and dtype != object and "numeric" not in col.tags:
                e = f"CAST({src} AS VARCHAR)"
            else:
                e = src
            select.append(f"{e} AS {sql_names[c]}")
        select.append("CAST(file_row_number AS BIGINT) AS __pos" if positions else "CAST(0 AS BIGINT) AS __pos")
        return tab.relation(cols, row_number=positions), ", ".join(select)


DUCKDB = register_dialect(DuckDBDialect())
