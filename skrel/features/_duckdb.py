"""The DuckDB engine: deep feature synthesis compiled to DuckDB SQL (:mod:`skrel.features._sql`)
and run on an in-process connection.

The tables are the database's own DataFrames, scanned in place through views (a table that stays
in a Parquet file is read where it lies). DuckDB spills to disk beyond ``memory_limit``.
"""

from __future__ import annotations

import tempfile

from ._definitions import Feature, Schema
from ._sql import DUCKDB, plan_engine_queries, run_queries

__all__ = ["compute_duckdb"]


def compute_duckdb(db, schema: Schema, features: list[Feature], entity_table: str, entity_ids, cutoffs, *,
                   memory_limit=None, temp_directory=None, threads=None, return_sql: bool = False,
                   queries: list[list[Feature]] | None = None, block_rows: int | None = None,
                   dtype="float64", progress=None):
    """Evaluate ``features`` for the rows ``(entity_ids[i], cutoffs[i])`` in DuckDB.

    Parameters
    ----------
    memory_limit, temp_directory, threads
        DuckDB's ``memory_limit`` (beyond it DuckDB spills to ``temp_directory``, a private
        temporary directory by default) and threads.
    queries : list of list of Feature, optional
        The features split into queries (each a list of whole :func:`query_groups`), run one
        after the other; default: one query.
    block_rows : int, optional
        Distinct (entity, cutoff) rows per execution of each query (default: all at once).
    dtype : {"float64", "float32"}, default="float64"
        Storage of numeric features.
    progress : callable, optional
        Called with the number of features done after each (query, block).

    Returns
    -------
    pandas.DataFrame
        One column per feature (named as the feature), one row per input row; numeric features
        as ``dtype``, categorical ones as object (str or None), booleans as numbers (0/1).
    """
    from ..data.files import FileTable, connect

    plan = plan_engine_queries(DUCKDB, db, schema, features, entity_table, entity_ids, cutoffs, queries)
    frame, codes, features, queries, tables, table_sql, compiled, columns, colnames = plan
    if return_sql:
        return compiled[0][0] if len(compiled) == 1 else [sql for sql, _ in compiled]

    config = {}
    if memory_limit is not None:
        config["memory_limit"] = str(memory_limit)
    if threads is not None:
        config["threads"] = int(threads)
    # DuckDB spills to ./.tmp by default; a private temporary directory leaves nothing behind
    with tempfile.TemporaryDirectory(prefix="skrel-duckdb-") as spill:
        config["temp_directory"] = str(temp_directory) if temp_directory is not None else spill
        con = connect([db[t].path for t in tables if isinstance(db[t], FileTable)], config)
        try:
            con.execute("SET preserve_insertion_order = false")
            for t, (df, select) in tables.items():
                if isinstance(df, str):  # a table that stays in its file: read where it lies
                    con.execute(f"CREATE TEMP VIEW {table_sql[t]} AS SELECT {select} FROM {df}")
                    continue
                con.register(f"raw_{table_sql[t]}", df)
                con.execute(f"CREATE TEMP VIEW {table_sql[t]} AS SELECT {select} FROM raw_{table_sql[t]}")

            def execute(sql, part):
                con.register("frame", part)
                try:
                    return con.execute(sql).fetchnumpy()
                finally:
                    con.unregister("frame")

            return run_queries(execute, compiled, queries, features, frame, codes, block_rows, dtype, progress)
        finally:
            con.close()
