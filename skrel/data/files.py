"""Tables that stay in their Parquet files: :class:`FileTable` and :func:`from_parquet`.

A :class:`~skrel.data.Database` may hold, beside in-memory tables, tables that stay in a Parquet
file (a local path or any fsspec URL, e.g. ``s3://bucket/orders.parquet``). What is held in
memory for such a table: its schema (column names and types, an empty frame), its row count, and
nothing else until something asks for its rows.

Who reads the file where it lies, and who loads it:

- validation (primary keys unique and non-null, foreign keys matching, the time column's type)
  runs as SQL in DuckDB on the file;
- the DuckDB engine of deep feature synthesis reads the file out of core
  (``read_parquet(...)`` in its query): schema inference, the horizon and the entity check are
  SQL too, and the feature query never materialises the table;
- the Spark engine reads the file with Spark (``session.read.parquet(path)``, the time bound a
  filter in its query; see :func:`skrel.features._sql.spark.file_frame`): no row passes through the driver. Spark
  needs a path it can reach: a local path (on a cluster, one every executor sees) or a URL of a
  filesystem configured in the session (``s3a://``, ``hdfs://``, ...), not an fsspec-only one;
- task labels (:meth:`Task.make_labels`) run their SQL on the file, read through a pyarrow dataset
  registered on a DuckDB connection that can open no file itself (:func:`read_only_connection`);
- :meth:`Database.upto` cuts a file table lazily (a time bound applied when it is read);
- everything else (the graph families RDL and RelGT, the baseline, :meth:`Database.schema`)
  reads ``table.df``, which loads the (cut) table into memory on first use and keeps it: those
  families need every row in memory, as with in-memory tables.

Pickling a file table sends its path and time bound, not its rows: a worker of a parallel search
reopens the file (it must reach the same path). A file is identified by its path, size and
modification time when opened: rewriting it under an open database is not detected (caches keyed
by the database would then be stale); open the database again instead.
"""

from __future__ import annotations

import logging
import os
import tomllib

import numpy as np
import pandas as pd

from ..utils import is_url, quote_identifier

logger = logging.getLogger(__name__)

__all__ = ["FileTable", "from_parquet", "register_table", "connect", "read_only_connection", "register_read_only"]

#: Tables with at most this many rows are read into memory by :func:`from_parquet`.
DEFAULT_MEMORY_ROWS = 1_000_000


def connect(paths=(), config=None):
    """A DuckDB connection (with ``config``) that can read ``paths`` (fsspec URLs other than
    ``file://`` get their fsspec filesystem registered)."""
    import duckdb

    con = duckdb.connect(config=dict(config or {}))
    protocols = {p.split("://", 1)[0] for p in paths if is_url(p)} - {"file"}
    if protocols:
        import fsspec

        for proto in sorted(protocols):
            con.register_filesystem(fsspec.filesystem(proto))
    return con


#: Settings of :func:`read_only_connection`, fixed when the connection is created.
READ_ONLY_CONFIG = {
    "enable_external_access": False,  # no file or URL read or written, no ATTACH, COPY, INSTALL or LOAD
    "autoinstall_known_extensions": False,  # no download triggered by a function name
    "autoload_known_extensions": False,
    "allow_persistent_secrets": False,  # no credentials read from ~/.duckdb
    "python_enable_replacements": False,  # no DataFrame of the caller's frames read by its variable name
    "lock_configuration": True,  # no SET or RESET afterwards
}


def read_only_connection():
    """A DuckDB connection that reads only what is registered on it (:func:`register_read_only`).

    It opens no file or URL and loads no extension: :data:`READ_ONLY_CONFIG` is set when it
    is created and locked. Tables in files are registered as pyarrow datasets, which pyarrow
    (not DuckDB) reads. For queries written by users (a task's ``label_sql``).
    """
    import duckdb

    return duckdb.connect(config=dict(READ_ONLY_CONFIG))


def register_read_only(con, name: str, table) -> None:
    """Make ``table`` (a Table, a FileTable or a DataFrame) readable as ``name`` on a connection of
    :func:`read_only_connection`: a file table's rows are read by pyarrow, out of core, cut at its
    ``upto``."""
    if isinstance(table, FileTable):
        hidden = f"__skrel_file_{name}"
        con.register(hidden, table.dataset())
        source = table.relation(source=quote_identifier(hidden))
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_identifier(name)} AS SELECT * FROM {source}")
    else:
        con.register(name, table if isinstance(table, pd.DataFrame) else table.df)


def _literal(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


class FileTable:
    """A table that stays in a Parquet file; the interface of :class:`~skrel.data.Table`.

    Parameters
    ----------
    path : str or path-like
        One Parquet file: a local path or an fsspec URL.
    pkey, fkeys, time_col
        As :class:`~skrel.data.Table`.
    upto : Timestamp, optional
        Only rows with ``time_col <= upto`` are part of the table (set by
        :meth:`Database.upto`; rows with a missing time are then left out).

    Attributes
    ----------
    schema_frame : pandas.DataFrame
        No rows; the columns with the dtypes reading the file gives them.
    """

    def __init__(self, path, pkey=None, fkeys=None, time_col=None, *, upto=None, _meta=None):
        self.path = str(path) if not isinstance(path, os.PathLike) else os.fspath(path)
        self.pkey = pkey
        self.fkeys = dict(fkeys or {})
        self.time_col = time_col
        self.upto = None if upto is None else pd.Timestamp(upto)
        self._df = None
        self._stats: dict = {}
        if _meta is None:
            _meta = self._read_meta()
        self._arrow_schema, self._file_rows, self._file_id = _meta

    # ------------------------------------------------------------------ metadata
    def _open(self):
        import fsspec

        return fsspec.open(self.path, "rb").open()

    def _read_meta(self):
        import pyarrow.parquet as pq

        try:
            with self._open() as fh:
                meta = pq.ParquetFile(fh).metadata
                schema = meta.schema.to_arrow_schema()
                rows = meta.num_rows
        except FileNotFoundError:
            raise FileNotFoundError(f"Parquet file {self.path!r} does not exist.") from None
        except Exception as exc:  # not Parquet, unreadable
            raise ValueError(f"cannot read {self.path!r} as a Parquet file: {exc}") from None
        try:
            import fsspec

            fs, p = fsspec.core.url_to_fs(self.path)
            info = fs.info(p)
            file_id = (info.get("size"), str(info.get("mtime") or info.get("LastModified") or info.get("created")))
        except Exception:  # pragma: no cover - a filesystem without info
            file_id = None
        return schema, rows, file_id

    @property
    def schema_frame(self) -> pd.DataFrame:
        return self._arrow_schema.empty_table().to_pandas()

    @property
    def columns(self) -> list[str]:
        return list(self._arrow_schema.names)

    def arrow_type(self, column: str):
        return self._arrow_schema.field(column).type

    @property
    def loaded(self) -> bool:
        return self._df is not None

    def identity(self) -> tuple:
        """What identifies the rows: the file (path, size, modification time) and the time bound."""
        return (self.path, self._file_id, None if self.upto is None else self.upto.value)

    # ------------------------------------------------------------------ SQL
    def relation(self, columns=None, row_number: bool = False, source: str | None = None) -> str:
        """A DuckDB ``FROM`` item reading the table (cut at ``upto``); from ``source`` (a quoted name
        registered on the connection) instead of ``read_parquet`` of the file when given."""
        if source is not None and row_number:
            raise ValueError("row_number needs the file itself (read_parquet), not a registered source.")
        opts = ", file_row_number = true" if row_number else ""
        sel = "*" if columns is None else ", ".join(quote_identifier(c) for c in columns)
        if row_number and columns is not None:
            sel += ", file_row_number"
        where = ""
        if self.upto is not None:
            # a nanosecond literal: the bound is exact as in pandas and Spark (a TIMESTAMP literal drops
            # the digits below the microsecond)
            where = f" WHERE {quote_identifier(self.time_col)} <= TIMESTAMP_NS '{self.upto.isoformat(sep=' ')}'"
        item = f"read_parquet({_literal(self.path)}{opts})" if source is None else source
        return f"(SELECT {sel} FROM {item}{where})"

    def dataset(self):
        """The file as a ``pyarrow.dataset.Dataset`` (all rows: the cut at ``upto`` is the caller's),
        read through fsspec for a URL."""
        import pyarrow.dataset as ds

        if is_url(self.path):
            import fsspec

            fs, path = fsspec.core.url_to_fs(self.path)
            return ds.dataset(path, filesystem=fs, format="parquet")
        return ds.dataset(self.path, format="parquet")

    def query(self, sql: str) -> pd.DataFrame:
        """Run ``sql``, in which ``{t}`` stands for the table, in a fresh DuckDB connection."""
        con = connect([self.path])
        try:
            return con.execute(sql.format(t=self.relation())).df()
        finally:
            con.close()

    def __len__(self) -> int:
        if self.upto is None:
            return int(self._file_rows)
        if "rows" not in self._stats:
            self._stats["rows"] = int(self.query("SELECT count(*) AS n FROM {t}")["n"].iloc[0])
        return self._stats["rows"]

    def time_range(self) -> tuple:
        """``(min, max)`` of the time column (NaT without rows)."""
        if "range" not in self._stats:
            c = quote_identifier(self.time_col)
            r = self.query(f"SELECT min({c}) AS lo, max({c}) AS hi FROM {{t}}")
            self._stats["range"] = (pd.Timestamp(r["lo"].iloc[0]), pd.Timestamp(r["hi"].iloc[0]))
        return self._stats["range"]

    def column(self, name: str) -> pd.Series:
        """One column's values (read alone; the rest stays in the file)."""
        if self._df is not None:
            return self._df[name]
        return self.query(f"SELECT {quote_identifier(name)} FROM {{t}}")[name]

    def string_stats(self, name: str) -> tuple[int, int]:
        """``(distinct non-missing values as strings, non-missing values)`` of a column."""
        key = ("strings", name)
        if key not in self._stats:
            c = quote_identifier(name)
            r = self.query(f"SELECT count(DISTINCT CAST({c} AS VARCHAR)) AS u, count({c}) AS n FROM {{t}}")
            self._stats[key] = (int(r["u"].iloc[0]), int(r["n"].iloc[0]))
        return self._stats[key]

    # ------------------------------------------------------------------ rows
    @property
    def df(self) -> pd.DataFrame:
        """The rows, read into memory on first access (and kept)."""
        if self._df is None:
            logger.info("reading file table %s into memory (%d rows)", self.path, len(self))
            import pyarrow.parquet as pq

            filters = None
            if self.upto is not None:
                filters = [(self.time_col, "<=", self.upto.to_datetime64())]
            with self._open() as fh:
                df = pq.read_table(fh, filters=filters).to_pandas()
            if self.time_col is not None:
                df[self.time_col] = df[self.time_col].astype("datetime64[ns]")
            for b in df._mgr.blocks:  # read-only, as the tables of a Database
                if isinstance(b.values, np.ndarray):
                    b.values.flags.writeable = False
            self._df = df
        return self._df

    def cut(self, t) -> "FileTable":
        """The rows dated at or before ``t`` (lazily)."""
        if self.time_col is None:
            return self
        upto = pd.Timestamp(t) if self.upto is None else min(self.upto, pd.Timestamp(t))
        return FileTable(self.path, self.pkey, self.fkeys, self.time_col, upto=upto,
                         _meta=(self._arrow_schema, self._file_rows, self._file_id))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_df"] = None  # the rows stay in the file
        state["_stats"] = {}
        return state

    def __repr__(self) -> str:
        bound = f", upto={self.upto}" if self.upto is not None else ""
        return (f"FileTable({self.path!r}, columns={self.columns}, pkey={self.pkey!r}, fkeys={self.fkeys!r}, "
                f"time_col={self.time_col!r}{bound})")


def register_table(con, name: str, table) -> None:
    """Make ``table`` (a Table or a FileTable) readable as ``name`` on DuckDB connection ``con``
    (created with :func:`connect` for file tables)."""
    if isinstance(table, FileTable):
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_identifier(name)} AS SELECT * FROM {table.relation()}")
    else:
        con.register(name, table.df)


def from_parquet(path, schema=None, *, memory_rows: int | None = DEFAULT_MEMORY_ROWS, dangling: str = "raise",
                 cache_bytes=None, allow_outside: bool = False):
    """A Database whose large tables stay in their Parquet files.

    Parameters
    ----------
    path : str or path-like
        Directory (local or fsspec URL) holding one ``<table>.parquet`` per table.
    schema : str, path-like or dict, optional
        The ``schema.toml`` of :func:`~skrel.data.load_directory` (a path, or its content as a
        dict ``{"tables": {name: {"primary_key": ..., ...}}}``); default: ``path/schema.toml``.
    memory_rows : int or None, default=1,000,000
        Tables with at most this many rows are read into memory; larger ones stay in their files
        (:class:`FileTable`). ``0``: every table stays in its file. ``None``: no bound, every
        table is read into memory.
    dangling : {"raise"}, default="raise"
        Foreign keys must match: setting dangling values to missing would rewrite a file.
    cache_bytes : int, optional
        As :class:`~skrel.data.Database`.
    allow_outside : bool, default=False
        Read files the schema names outside ``path`` (an absolute path or URL, a path with
        ``..``, a symbolic link to another directory). By default they are refused with a
        :class:`~skrel.data.SchemaError`, as by :func:`~skrel.data.load_directory`.

    Returns
    -------
    Database
    """
    from .database import Database, SchemaError, Table

    from .directory import inside_directory

    root = str(path) if not isinstance(path, os.PathLike) else os.fspath(path)
    if memory_rows is not None and (isinstance(memory_rows, bool) or not isinstance(memory_rows, (int, np.integer))
                                    or memory_rows < 0):
        raise ValueError(f"from_parquet: memory_rows must be a non-negative integer (a row count), or None to read "
                         f"every table into memory; got {memory_rows!r}.")
    if dangling != "raise":
        raise ValueError("from_parquet supports dangling='raise' only: setting dangling foreign keys to missing "
                         "would rewrite the files. Fix the files, or read them into memory with load_directory.")
    if schema is None:
        schema = root.rstrip("/") + "/schema.toml"
    source = "the schema dict"
    if not isinstance(schema, dict):
        import fsspec

        source = str(schema)
        try:
            with fsspec.open(source, "rb") as fh:
                schema = tomllib.load(fh)
        except FileNotFoundError:
            raise FileNotFoundError(f"no schema file {source!r}: write one naming each table's primary_key, "
                                    "time_column and foreign_keys (see skrel.data.directory).") from None
        except tomllib.TOMLDecodeError as exc:
            raise SchemaError(f"{source} is not valid TOML: {exc}.") from None
    tables = schema.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise SchemaError(f"{source} describes no table: add a [tables.NAME] section per table.")
    built = {}
    for name, spec in tables.items():
        bad = sorted(set(spec) - {"primary_key", "time_column", "foreign_keys", "file"})
        if bad:
            raise SchemaError(f"{source}, table {name!r}: unknown key(s) {bad} for a Parquet table.")
        file = spec.get("file", f"{name}.parquet")
        if not isinstance(file, str) or not file:
            raise SchemaError(f"{source}, table {name!r}: file must be a non-empty string, got {file!r}.")
        if not file.lower().endswith((".parquet", ".pq")):
            raise SchemaError(f"{source}, table {name!r}: {file} is not a Parquet file (.parquet, .pq).")
        full = inside_directory(root, file, allow_outside, f"{source}, table {name!r}")
        ft = FileTable(full, spec.get("primary_key"), spec.get("foreign_keys", {}), spec.get("time_column"))
        for role, cols in (("primary_key", [ft.pkey]), ("time_column", [ft.time_col]), ("foreign_keys", list(ft.fkeys))):
            absent = [c for c in cols if c is not None and c not in ft.columns]
            if absent:
                raise SchemaError(f"{source}, table {name!r}: {role} names column(s) {absent} that {full} lacks; "
                                  f"its columns are {ft.columns}.")
        if memory_rows is None or len(ft) <= memory_rows:
            built[name] = Table(ft.df.copy(), ft.pkey, dict(ft.fkeys), ft.time_col)
            logger.info("table %s: %d rows read into memory", name, len(ft))
        else:
            built[name] = ft
            logger.info("table %s: %d rows stay in %s", name, len(ft), full)
    return Database(built, dangling=dangling, cache_bytes=cache_bytes)
