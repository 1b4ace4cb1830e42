"""Read a SQL database into a :class:`~skrel.data.Database` with SQLAlchemy.

Keys come from the database's own constraints; time columns are given or inferred. Rules:

- **Primary keys**: a table's single-column ``PRIMARY KEY``. skrel keys are single columns, so a
  *composite* primary key is not used: the table is read without a primary key and a
  :class:`SQLSchemaWarning` says so (such tables are typically link tables, whose single-column
  foreign keys still relate them to the rest of the database).
- **Foreign keys**: each single-column ``FOREIGN KEY`` that references the primary key of a table
  that is read. Others are skipped with a :class:`SQLSchemaWarning` naming them: composite foreign
  keys, references to a column other than the referenced table's primary key (a ``UNIQUE``
  column), to a table not read (not in ``tables``, another schema, or empty), and a second foreign
  key on the same column.
- **Time columns**: ``time_columns={table: column}`` as given (``{table: None}`` for none). For the
  other tables, a table with exactly one ``DATE`` / ``DATETIME`` / ``TIMESTAMP`` column that is not
  a key gets it as its time column. Every inference is reported in one
  :class:`TimeColumnInferenceWarning` (and logged at INFO on the ``skrel.data.sql`` logger),
  together with the tables left without a time column because they have several candidates. The
  choice is visible afterwards as ``db[table].time_col`` and in ``db.schema()``. Pass
  ``time_columns`` for every table to make the reading silent.
- **Rows** are ordered by primary key when the table has one (so the same database always gives
  the same :class:`Database` and fingerprint); otherwise in the order the engine returns them.
- **Types**: integer key columns holding NULLs become pandas ``Int64``; ``DATE`` / ``DATETIME``
  columns become ``datetime64[ns]``; ``TIMESTAMP WITH TIME ZONE`` columns are converted to UTC and
  made naive, as :class:`Database` stores every time (``DATE`` and ``TIMESTAMP`` values are taken as
  they are, that is as UTC; a :class:`SQLSchemaWarning` says so when time columns mix
  ``TIMESTAMP WITH TIME ZONE`` and ``TIMESTAMP``) (SQLite stores them as text: skrel parses the text with
  :func:`pandas.to_datetime` and leaves a column as it is if it does not parse; a time column
  that does not parse then fails :class:`Database` validation with a message naming it);
  ``NUMERIC`` becomes ``float64``.
- With ``tables=None``, views are not read and empty tables are skipped with a
  :class:`SQLSchemaWarning` (a :class:`Database` holds no empty table). A table named in
  ``tables`` is always read; an empty one then fails validation.
"""

from __future__ import annotations

import logging
import warnings
from typing import Mapping, Sequence

import pandas as pd

from .database import Database, SchemaError, Table

__all__ = ["from_sql", "TimeColumnInferenceWarning", "SQLSchemaWarning"]

logger = logging.getLogger(__name__)


class TimeColumnInferenceWarning(UserWarning):
    """Time columns were inferred from column types: check them, or pass ``time_columns``."""


class SQLSchemaWarning(UserWarning):
    """Part of the SQL schema was not used (a composite key, a key to a non-primary column, an empty
    table), or time columns mix time-zone conventions."""


def _is_temporal(sa_type) -> bool:
    import sqlalchemy as sa

    return isinstance(sa_type, (sa.types.Date, sa.types.DateTime))


def _is_integer(sa_type) -> bool:
    import sqlalchemy as sa

    return isinstance(sa_type, sa.types.Integer)


def from_sql(
    url_or_engine,
    *,
    tables: Sequence[str] | None = None,
    time_columns: Mapping[str, str | None] | None = None,
    schema: str | None = None,
    dangling: str = "raise",
) -> Database:
    """Read the tables of a SQL database, with keys from its constraints.

    Parameters
    ----------
    url_or_engine : str, sqlalchemy URL, Engine or Connection
        Where to read. An engine created here from a URL is disposed of afterwards.
    tables : list of str, optional
        Tables (or views) to read; all tables of ``schema`` by default.
    time_columns : dict of str to str or None, optional
        Time column per table (``None``: no time column). Tables not given have theirs inferred
        (see the module notes), with a :class:`TimeColumnInferenceWarning`.
    schema : str, optional
        Database schema to read (for example a PostgreSQL schema); the default schema otherwise.
    dangling : {"raise", "null"}, default="raise"
        Passed to :class:`Database`: foreign-key values without a matching primary key raise, or
        are set to missing with a warning.

    Returns
    -------
    Database

    Raises
    ------
    SchemaError
        A table or column named in ``tables`` / ``time_columns`` does not exist, the database has
        no table, or the data fail :class:`Database` validation.

    Examples
    --------
    >>> db = from_sql("sqlite:///shop.db", time_columns={"orders": "ordered_at"})  # doctest: +SKIP
    """
    import sqlalchemy as sa

    if dangling not in ("raise", "null"):
        raise ValueError(f"dangling must be 'raise' or 'null', got {dangling!r}.")
    if tables is not None and (isinstance(tables, str) or not all(isinstance(t, str) for t in tables)):
        raise TypeError(f"tables must be a list of table names, got {tables!r}.")
    time_columns = dict(time_columns or {})

    if isinstance(url_or_engine, (str, sa.engine.URL)):
        engine = sa.create_engine(url_or_engine)
        owned = True
    elif isinstance(url_or_engine, (sa.engine.Engine, sa.engine.Connection)):
        engine = url_or_engine
        owned = False
    else:
        raise TypeError(
            f"url_or_engine must be a URL string, a sqlalchemy URL, Engine or Connection, got {type(url_or_engine).__name__}."
        )
    try:
        if isinstance(engine, sa.engine.Connection):
            return _read(engine, tables, time_columns, schema, dangling)
        with engine.connect() as conn:
            return _read(conn, tables, time_columns, schema, dangling)
    finally:
        if owned:
            engine.dispose()


def _read(conn, tables, time_columns, schema, dangling) -> Database:
    import sqlalchemy as sa

    insp = sa.inspect(conn)
    where = f" in schema {schema!r}" if schema else ""
    available = list(insp.get_table_names(schema=schema))
    if tables is None:
        names = available
        explicit = False
    else:
        views = list(insp.get_view_names(schema=schema))
        unknown = [t for t in tables if t not in available and t not in views]
        if unknown:
            raise SchemaError(f"No table(s) {unknown}{where}; tables are {sorted(available)}, views {sorted(views)}.")
        if len(set(tables)) != len(tables):
            raise SchemaError(f"tables lists a table twice: {list(tables)}.")
        names = list(tables)
        explicit = True
    if not names:
        raise SchemaError(f"The SQL database has no tables{where}.")
    unknown = sorted(set(time_columns) - set(names))
    if unknown:
        raise SchemaError(f"time_columns names table(s) {unknown} that are not read; tables are {names}.")

    metadata = sa.MetaData()
    reflected = {name: sa.Table(name, metadata, schema=schema, autoload_with=conn) for name in names}
    skipped: list[str] = []

    # Primary keys.
    pkeys: dict[str, str | None] = {}
    for name in names:
        cols = insp.get_pk_constraint(name, schema=schema).get("constrained_columns") or []
        if len(cols) > 1:
            skipped.append(
                f"table {name!r} has a composite primary key {tuple(cols)}; skrel keys are single columns, "
                "so it is read without a primary key"
            )
        pkeys[name] = cols[0] if len(cols) == 1 else None

    # Rows.
    frames: dict[str, pd.DataFrame] = {}
    sqlite = conn.dialect.name == "sqlite"
    for name in names:
        tb = reflected[name]
        select_cols = [
            sa.type_coerce(c, sa.types.NullType()).label(c.name) if sqlite and _is_temporal(c.type) else c
            for c in tb.columns
        ]
        stmt = sa.select(*select_cols)
        if pkeys[name] is not None:
            stmt = stmt.order_by(tb.columns[pkeys[name]])
        df = pd.read_sql_query(stmt, conn)
        if df.empty and not explicit:
            skipped.append(f"table {name!r} is empty and is not read")
            continue
        for c in tb.columns:
            if _is_temporal(c.type) and not pd.api.types.is_datetime64_any_dtype(df[c.name].dtype):
                df[c.name] = _to_datetime_or_keep(df[c.name])
        frames[name] = df

    # Foreign keys.
    fkeys: dict[str, dict[str, str]] = {name: {} for name in frames}
    for name in frames:
        for fk in insp.get_foreign_keys(name, schema=schema):
            cols, ref, ref_cols = fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]
            label = f"{name}({', '.join(cols)}) -> {ref}({', '.join(ref_cols)})"
            ref_schema = fk.get("referred_schema")
            if ref_schema is not None and ref_schema != schema:
                skipped.append(f"foreign key {label} references schema {ref_schema!r}, which is not read")
            elif len(cols) != 1:
                skipped.append(f"foreign key {label} is composite; skrel keys are single columns")
            elif ref not in frames:
                skipped.append(f"foreign key {label} references table {ref!r}, which is not read")
            elif pkeys[ref] is None or ref_cols != [pkeys[ref]]:
                skipped.append(
                    f"foreign key {label} does not reference the primary key of {ref!r} "
                    f"({pkeys[ref]!r}); skrel foreign keys reference primary keys"
                )
            elif cols[0] in fkeys[name]:
                skipped.append(
                    f"foreign key {label}: column {name}.{cols[0]} already references {fkeys[name][cols[0]]!r}"
                )
            else:
                fkeys[name][cols[0]] = ref

    # Integer keys with NULLs come back as float: make them nullable integers.
    for name, df in frames.items():
        tb = reflected[name]
        for col in {pkeys[name], *fkeys[name]} - {None}:
            if _is_integer(tb.columns[col].type) and df[col].dtype.kind == "f":
                df[col] = df[col].astype("Int64")

    # Time columns.
    inferred, ambiguous = [], []
    times: dict[str, str | None] = {}
    for name in frames:
        tb = reflected[name]
        if name in time_columns:
            col = time_columns[name]
            if col is not None and col not in tb.columns:
                raise SchemaError(
                    f"time_columns gives {name}.{col}, but table {name!r} has no column {col!r}; "
                    f"columns are {[c.name for c in tb.columns]}."
                )
            times[name] = col
            continue
        keys = {pkeys[name], *fkeys[name]}
        candidates = [c.name for c in tb.columns if _is_temporal(c.type) and c.name not in keys]
        if len(candidates) == 1:
            times[name] = candidates[0]
            inferred.append(f"{name}.{candidates[0]}")
        else:
            times[name] = None
            if candidates:
                ambiguous.append(f"{name} ({', '.join(candidates)})")

    # skrel stores times as naive UTC: convert aware columns (TIMESTAMP WITH TIME ZONE) here, so that
    # they can sit next to DATE columns; warn when time columns mix them with naive TIMESTAMPs.
    aware_times, naive_times = [], []
    for name, df in frames.items():
        tb = reflected[name]
        for c in tb.columns:
            if isinstance(df[c.name].dtype, pd.DatetimeTZDtype):
                df[c.name] = df[c.name].dt.tz_convert("UTC").dt.tz_localize(None)
                if times[name] == c.name:
                    aware_times.append(f"{name}.{c.name}")
            elif times[name] == c.name and isinstance(c.type, sa.types.DateTime):
                naive_times.append(f"{name}.{c.name}")
    if aware_times and naive_times:
        skipped.append(
            f"time columns {aware_times} hold times with a time zone (converted to UTC) and {naive_times} "
            "times without one (taken as UTC); convert the latter to UTC if they are local times"
        )

    if skipped:
        warnings.warn(
            "from_sql did not use part of the SQL schema: " + "; ".join(skipped) + ".",
            SQLSchemaWarning,
            stacklevel=3,
        )
    if inferred or ambiguous:
        parts = []
        if inferred:
            parts.append(f"inferred time column(s) {', '.join(inferred)} (the only date/time column of each table)")
        if ambiguous:
            parts.append(f"left table(s) {'; '.join(ambiguous)} without a time column (several date/time columns)")
        message = (
            "from_sql " + " and ".join(parts) + ". Rows are visible at cutoff t when their time is <= t: pass "
            "time_columns={table: column or None} to choose."
        )
        logger.info(message)
        warnings.warn(message, TimeColumnInferenceWarning, stacklevel=3)

    return Database(
        {name: Table(df, pkeys[name], fkeys[name], times[name]) for name, df in frames.items()},
        dangling=dangling,
    )


def _to_datetime_or_keep(s: pd.Series) -> pd.Series:
    """Parse DATE/DATETIME values the driver returned as text or ``date`` objects; keep them if they do not parse."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = pd.to_datetime(s, format="mixed")
        except (ValueError, TypeError, OverflowError):
            return s
    if out.dtype == object:  # mixed offsets: keep the values, Database validation decides
        return s
    return out
