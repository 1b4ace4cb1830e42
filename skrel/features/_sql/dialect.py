"""What a SQL engine spells its own way: one :class:`Dialect` subclass per engine.

The compiler (:mod:`.compiler`) writes one plan for every engine; each construct that engines
spell differently goes through the dialect: identifier quoting, the aggregate of each primitive
(:attr:`Dialect.aggregates`, keyed by the primitive's name), integer division, struct and number
literals, "every column but these", the type of strings, and how a table is presented to the
engine (an in-memory frame with its converted columns, or a file read where it lies). Adding an
engine is one subclass (and its tests): :func:`register_dialect` makes it known by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._definitions import Primitive, Schema, as_seconds

__all__ = ["Dialect", "DIALECTS", "register_dialect", "get_dialect"]


def _strings(s: pd.Series) -> pd.Series:
    """A categorical column's values as Python strings (None where missing)."""
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty") and not isinstance(s.dtype, pd.CategoricalDtype):
        return s
    return s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))


class Dialect:
    """The spellings of one SQL engine (abstract: see :class:`~.duckdb.DuckDBDialect`).

    Attributes
    ----------
    name : str
        The engine's name (``DFSTransformer(engine=name)``).
    string_type : str
        The type categorical features are cast to.
    order_rows : bool
        End the query with ``ORDER BY __r`` (free in DuckDB; a global sort in Spark, where the
        rows are put in order by ``__r`` after fetching anyway).
    aggregates : dict of str to str
        Per primitive name (:data:`~skrel.features._definitions.AGG_PRIMITIVES`), the aggregate
        over the values ``{x}`` of a group's rows; ``{order}`` is an expression ordering the
        rows by time (then primary key), or by position.
    always_rename : bool
        Whether in-memory tables are always sent as new frames with the generated column names
        (else the database's own frame is scanned in place when no column needs converting).
    """

    name: str = ""
    string_type: str = "VARCHAR"
    order_rows: bool = True
    aggregates: dict = {}
    always_rename: bool = False

    # ------------------------------------------------------------------ spellings
    def quote(self, name: str) -> str:
        """An identifier, quoted."""
        raise NotImplementedError

    def aggregate(self, p: Primitive) -> str:
        """The aggregate of primitive ``p`` (a template with ``{x}`` and ``{order}``)."""
        try:
            return self.aggregates[p.name]
        except KeyError:
            raise NotImplementedError(
                f"The {self.name} SQL dialect has no aggregate for primitive {p.name!r}; add it to "
                f"{type(self).__name__}.aggregates."
            ) from None

    def int_div(self, a: str, b) -> str:
        """Integer division truncating toward zero."""
        raise NotImplementedError

    def struct(self, fields: dict[str, str]) -> str:
        """A struct value (compared field by field, in order)."""
        raise NotImplementedError

    def literal(self, value) -> str:
        """A float literal typed as DOUBLE; NULL for None or NaN."""
        raise NotImplementedError

    def star_except(self, alias: str, columns: list[str], excluded: list[str]) -> str:
        """Every column of ``alias`` (whose columns are ``columns``) but ``excluded``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ tables
    def datetime_column(self, s: pd.Series):
        """``(converted series or None, select template or None)`` of a datetime column: how an
        in-memory time column is sent and read back as int64 nanoseconds."""
        raise NotImplementedError

    def file_table(self, tab, schema: Schema, t: str, cols: list[str], sql_names: dict[str, str]):
        """``(source, select)`` of a table that stays in its file (a
        :class:`~skrel.data.files.FileTable`)."""
        raise NotImplementedError

    def prepare_tables(self, db, schema: Schema, columns: dict[str, list[str]]):
        """The tables as the engine reads them.

        Returns ``{table: (frame, select)}``, ``{(table, column): categories}`` and
        ``{table: {column: sql name}}``. ``frame`` is a DataFrame to register (the database's
        own, not copied, unless a column needs converting or the dialect always renames) and
        ``select`` the select list of a view over it; a file table is what :meth:`file_table`
        gives. The view renames every used column to a generated identifier (``u0``, ``u1``,
        ...): the generated SQL never names a user's column, so no user name can collide with
        the names it uses internally. The view also has ``__pos``, the row position (for tables
        without a time column, where it orders rows; else 0), times as int64 nanoseconds, and
        categorical columns as codes into their sorted categories (so the smallest code is the
        smallest string, and lists of codes are small); string keys stay strings.
        """
        from ...data.files import FileTable

        out, categories, names = {}, {}, {}
        for t, cols in columns.items():
            sql_names = {c: f"u{j}" for j, c in enumerate(cols)}
            names[t] = sql_names
            if isinstance(db[t], FileTable):
                out[t] = self.file_table(db[t], schema, t, cols, sql_names)
                continue
            out[t] = self._memory_table(db[t].df, schema, t, cols, sql_names, categories)
        return out, categories, names

    def _memory_table(self, df: pd.DataFrame, schema: Schema, t: str, cols: list[str], sql_names: dict[str, str],
                      categories: dict):
        converted = {}
        exprs = {}
        for c in cols:
            col = schema.column(t, c)
            s = df[c]
            if col.logical == "datetime":
                conv, expr = self.datetime_column(s)
                if conv is not None:
                    converted[c] = conv
                if expr is not None:
                    exprs[c] = expr
            elif col.logical == "categorical" and col.tags == frozenset({"category"}):
                codes, uniques = pd.factorize(_strings(s), sort=True)
                converted[c] = codes.astype(np.int32)
                categories[(t, c)] = np.asarray(uniques, dtype=object)
                exprs[c] = "NULLIF({}, -1)"
            elif col.logical == "categorical" and "numeric" not in col.tags:
                strings = _strings(s)
                if strings is not s:
                    converted[c] = strings
            elif col.logical == "boolean":
                if s.dtype == object:
                    converted[c] = s.astype("boolean")
            elif pd.api.types.is_timedelta64_dtype(s.dtype):
                converted[c] = as_seconds(s)
        positions = schema.time_cols[t] is None
        if converted or positions or any(c == "" for c in df.columns) or self.always_rename:
            # a new frame over generated column names (its columns are views of the database's
            # arrays where pandas allows; converted ones are new)
            frame = pd.DataFrame({sql_names[c]: converted.get(c, df[c]) for c in cols}, copy=False)
            if positions:
                frame["__pos"] = np.arange(len(df), dtype=np.int64)
            src = {c: sql_names[c] for c in cols}
        else:
            frame = df
            src = {c: self.quote(c) for c in cols}
        select = [f"{exprs.get(c, '{}').format(src[c])} AS {sql_names[c]}" for c in cols]
        select.append("__pos" if positions else "CAST(0 AS BIGINT) AS __pos")
        return frame, ", ".join(select)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: The known dialects by name.
DIALECTS: dict[str, Dialect] = {}


def register_dialect(dialect: Dialect) -> Dialect:
    """Make ``dialect`` known by its name; returns it."""
    if not isinstance(dialect, Dialect) or not dialect.name:
        raise TypeError("register_dialect needs a Dialect instance with a name.")
    DIALECTS[dialect.name] = dialect
    return dialect


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"Unknown SQL dialect {name!r}; known: {sorted(DIALECTS)}.") from None
