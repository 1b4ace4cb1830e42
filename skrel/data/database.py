"""The relational database: named tables with primary keys, foreign keys and time columns.

The data core imports pandas, numpy, DuckDB and pyarrow only; never torch.

Point-in-time convention (the one used by every family in skrel): a row is *visible at cutoff t*
when its time is ``<= t``. Rows of tables without a time column are always visible. This is
RelBench's convention (``Database.upto``).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..utils import quote_identifier
from ._cache import CacheStore, DatabaseCache, estimate_nbytes

__all__ = ["Table", "Database", "SchemaError", "DanglingForeignKeyWarning", "column_kind"]

logger = logging.getLogger(__name__)

# Cache namespaces: one per database content (a database cut from another derives its own).
_NAMESPACES = itertools.count()


class SchemaError(ValueError):
    """Raised when a database or a task does not satisfy skrel's schema rules."""


class DanglingForeignKeyWarning(UserWarning):
    """Foreign-key values without a matching primary key were set to missing."""


def _kind(dtype) -> str:
    """'number', 'bool' or 'other': a coarse type, to explain keys that never match."""
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return "other"


def _first(values: Iterable, k: int = 5) -> list:
    out = []
    for v in values:
        out.append(v.item() if hasattr(v, "item") else v)
        if len(out) == k:
            break
    return out


_NS_RANGE = "1677-09-22..2262-04-11"

# Databases whose pickled tables are at least this large are pickled zstd-compressed.
_COMPRESS_MIN_BYTES = 1 << 20


def _parse_times(raw: pd.Series, where: str) -> tuple[pd.Series, bool]:
    """Parse a non-datetime column to naive datetime64[ns]; aware values become naive UTC.

    Works on positions, never on index labels (the caller's index may repeat labels).
    """
    if pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
        raise SchemaError(
            f"Time column {where} holds numbers ({raw.dtype}), not datetimes. "
            "Convert it with pandas.to_datetime (choosing the unit) before building the Database."
        )
    present = raw.notna().to_numpy()
    non_null = pd.Series(raw.to_numpy(dtype=object)[present])
    with warnings.catch_warnings():
        # pandas warns about mixed offsets / format inference; both cases are handled below.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            parsed = pd.to_datetime(non_null, errors="raise", format="mixed")
        except (ValueError, TypeError, OverflowError) as exc:
            text = str(exc).lower()
            if "mix" in text and ("tz" in text or "timezone" in text or "offset" in text) or "tz-aware" in text:
                raise SchemaError(
                    f"Time column {where} mixes timezone-aware and naive values. Make them all aware or all naive."
                ) from None
            coerced = pd.to_datetime(non_null, errors="coerce", format="mixed", utc=True)
            bad = coerced.isna().to_numpy()
            raise SchemaError(
                f"Time column {where} has {int(bad.sum())} value(s) that are not datetimes, or lie outside the "
                f"range {_NS_RANGE} that datetime64[ns] holds (first: {_first(non_null[bad])}). "
                "Fix them or convert the column yourself."
            ) from None
        if parsed.dtype == object:
            # Aware values with different UTC offsets, or aware and naive values together.
            aware = np.array([getattr(v, "tzinfo", None) is not None for v in parsed])
            if not aware.all():
                raise SchemaError(
                    f"Time column {where} mixes timezone-aware and naive values. Make them all aware or all naive."
                )
            parsed = pd.to_datetime(non_null, errors="raise", format="mixed", utc=True)
    is_aware = isinstance(parsed.dtype, pd.DatetimeTZDtype)
    if is_aware:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    values = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[ns]")
    values[present] = parsed.to_numpy(dtype="datetime64[ns]")
    return pd.Series(values, index=raw.index, name=raw.name), is_aware


def column_kind(col: pd.Series, sample: int = 1000) -> str:
    """The coarse kind of a column, as reported by :meth:`Database.schema`.

    One of ``"boolean"``, ``"numeric"``, ``"datetime"``, ``"timedelta"``, ``"categorical"``
    (a pandas categorical), ``"text"`` (strings), ``"list"`` (list, tuple, set or array values),
    ``"empty"`` (every value missing) or ``"other"`` (mixed or other objects). Object columns are
    judged on their first ``sample`` non-missing values.

    Examples
    --------
    >>> import pandas as pd
    >>> column_kind(pd.Series([[1, 2], [3]])), column_kind(pd.Series(pd.to_timedelta([1, 2], "D")))
    ('list', 'timedelta')
    """
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return "text"
    values = col.dropna()
    if len(values) == 0:
        return "empty"
    head = values.iloc[:sample]
    kinds = set()
    for v in head:
        if isinstance(v, str):
            kinds.add("text")
        elif isinstance(v, (list, tuple, set, frozenset, np.ndarray)):
            kinds.add("list")
        elif isinstance(v, (bool, np.bool_)):
            kinds.add("boolean")
        elif isinstance(v, (int, float, np.number)):
            kinds.add("numeric")
        elif isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat") and hasattr(v, "year"):
            kinds.add("datetime")
        elif isinstance(v, (pd.Timedelta, np.timedelta64)):
            kinds.add("timedelta")
        else:
            kinds.add("other")
        if len(kinds) > 1:
            return "other"
    return kinds.pop()


# ---------------------------------------------------------------------- read-only tables
# A database's tables are read-only: every numpy buffer under a table's DataFrame has
# ``writeable=False``, so writing values in place (``df.loc[i, c] = v``, ``df[c].fillna(0,
# inplace=True)``, ``df[c].to_numpy()[i] = v``) raises numpy's "assignment destination is
# read-only" ValueError. What replaces buffers instead of writing into them (assigning a column,
# ``df.drop(..., inplace=True)``, a new index, a new ``Table.df``) is seen by comparing each table's
# structural token (the identities of its frame, block manager, blocks, buffers, columns and
# index, and its keys) on every cache access: a change clears the cache and the fingerprint. Both
# checks cost O(number of columns), not O(rows).


def _buffers(values) -> list:
    """The objects holding a block's data: numpy buffers, and Arrow arrays (replaced on write)."""
    if isinstance(values, np.ndarray):
        return [values]
    out = [values]
    for attr in ("_ndarray", "_data", "_mask", "_codes", "_sparse_values", "_pa_array"):
        x = getattr(values, attr, None)
        if x is not None and all(x is not y for y in out):
            out.append(x)
    return out


def _blocks(df: pd.DataFrame):
    mgr = getattr(df, "_mgr", None)
    return None if mgr is None else getattr(mgr, "blocks", None)


def _protect(df: pd.DataFrame, owned: bool) -> None:
    """Make every numpy buffer of ``df`` read-only (``owned``: they are skrel's own copies).

    When ``df`` is not known to own its buffers (a table edited in place), the columns whose
    buffers are still writeable are first replaced by copies, so that no array of the caller's
    is frozen.
    """
    blocks = _blocks(df)
    if blocks is None:  # pragma: no cover - a pandas without block managers
        return
    if not owned:
        writeable = []
        for b in blocks:
            if any(isinstance(x, np.ndarray) and x.flags.writeable for x in _buffers(b.values)):
                writeable.extend(int(i) for i in b.mgr_locs.as_array)
        for i in sorted(set(writeable)):
            df.isetitem(i, df.iloc[:, i].copy(deep=True))
    df._consolidate_inplace()
    for b in _blocks(df):
        for x in _buffers(b.values):
            if isinstance(x, np.ndarray):
                x.flags.writeable = False


def _token(t: "Table") -> tuple:
    """``(objects, schema)``: what an in-place change of the table replaces (objects compared by identity).

    Pandas replaces the block manager, a block tuple, an axis or (for Arrow-backed columns) the
    Arrow array when a frame changes without writing into a numpy buffer; buffers themselves are
    read-only. Holding the objects (not their ids) keeps an id from being reused.
    """
    if _is_file(t):  # rows in a file: identified by the file and its time bound
        return (t,), (t.pkey, t.time_col, tuple(t.fkeys.items()), t.identity())
    df = t.df
    mgr = getattr(df, "_mgr", None)
    blocks = getattr(mgr, "blocks", None)
    if blocks is None:  # pragma: no cover - a pandas without block managers: hash the content
        return (df,), (t.pkey, t.time_col, tuple(t.fkeys.items()), tuple(df.columns),
                       int(pd.util.hash_pandas_object(df, index=True).sum()))
    objs = [df, mgr, blocks, df.columns, df.index]
    for b in blocks:
        values = b.values
        objs.append(values)
        if not isinstance(values, np.ndarray):
            objs.append(getattr(values, "_pa_array", None))
    return tuple(objs), (t.pkey, t.time_col, tuple(t.fkeys.items()))


def _is_file(t) -> bool:
    """Is ``t`` a table that stays in its file (:class:`~skrel.data.files.FileTable`)?"""
    from .files import FileTable

    return isinstance(t, FileTable)


def _columns(t) -> list:
    return t.columns if _is_file(t) else list(t.df.columns)


def _same(a: tuple, b: tuple) -> bool:
    return len(a[0]) == len(b[0]) and all(x is y for x, y in zip(a[0], b[0])) and a[1] == b[1]


@dataclass
class Table:
    """One table: a DataFrame plus its keys and time column.

    Parameters
    ----------
    df : pandas.DataFrame
        The rows.
    pkey : str or None
        Primary-key column, unique and non-null.
    fkeys : dict of str to str
        Foreign-key column -> name of the table whose primary key it references.
    time_col : str or None
        Column holding the time at which each row becomes visible.

    Notes
    -----
    Inside a :class:`Database`, ``df`` is read-only: writing values into it raises
    ``ValueError: assignment destination is read-only``, because caches derived from the
    database (features, graphs, labels) would silently go stale. Build a new database from an
    edited copy instead (``df = db[name].df.copy()``). Replacing a column or the whole frame is
    detected on the next cache access, which then clears the database's caches.

    Assigning a frame to ``df`` stores a copy of it (as :class:`Database` copies the frames it is
    given): after ``table.df = new``, changing ``new`` leaves the table unchanged.
    """

    df: pd.DataFrame
    pkey: str | None = None
    fkeys: dict[str, str] = field(default_factory=dict)
    time_col: str | None = None

    def __setattr__(self, name, value):
        # A frame assigned after construction is copied, so that the caller's frame never aliases a
        # database's table. The constructor's own assignment keeps its frame (the database copies it).
        if name == "df" and "df" in self.__dict__ and isinstance(value, pd.DataFrame) \
                and value is not self.__dict__["df"]:
            value = value.copy()
        object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        return (
            f"Table(rows={len(self.df)}, columns={list(self.df.columns)}, pkey={self.pkey!r}, "
            f"fkeys={self.fkeys!r}, time_col={self.time_col!r})"
        )



def _hash_rows(df: pd.DataFrame) -> bytes:
    """Row hashes of ``df`` as bytes; cells pandas cannot hash (lists, dicts) are hashed by ``repr``."""
    try:
        return pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()
    except TypeError:
        cols = {c: (df[c].map(repr) if df[c].dtype == object else df[c]) for c in df.columns}
        return pd.util.hash_pandas_object(pd.DataFrame(cols, index=df.index), index=False).to_numpy().tobytes()

class Database:
    """Named tables with primary keys, foreign keys and time columns, validated on construction.

    Parameters
    ----------
    tables : dict of str to Table or pandas.DataFrame
        The tables. A DataFrame is taken with the keys given in ``primary_keys``,
        ``foreign_keys`` and ``time_columns``.
    primary_keys, foreign_keys, time_columns : dict, optional
        Schema for tables given as plain DataFrames: ``{table: column}``,
        ``{table: {column: referenced_table}}`` and ``{table: column}``.
    dangling : {"raise", "null"}, default="raise"
        What to do with foreign-key values that match no primary key: raise a
        :class:`SchemaError`, or set them to missing with a
        :class:`DanglingForeignKeyWarning` that counts them.
    cache_bytes : int, optional
        Size bound of the database's cache (:attr:`cache`), in bytes; 0 disables caching. The
        default is :func:`skrel.data.get_cache_bytes` (1 GiB, or an eighth of physical memory
        when that is smaller; change it with :func:`skrel.data.set_cache_bytes`).

    Notes
    -----
    The caller's DataFrames are copied, never mutated. Time columns are converted to
    ``datetime64[ns]``; timezone-aware columns are converted to UTC and made naive, and a
    database that mixes aware and naive time columns is rejected.

    The tables are read-only once the database is built (see :class:`Table`): caches derived
    from a database can then never go stale silently.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrel import Database
    >>> users = pd.DataFrame({"id": [0, 1]})
    >>> orders = pd.DataFrame({"oid": [0, 1, 2], "user": [0, 1, 1],
    ...                        "at": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01"])})
    >>> db = Database({"users": users, "orders": orders},
    ...               primary_keys={"users": "id", "orders": "oid"},
    ...               foreign_keys={"orders": {"user": "users"}}, time_columns={"orders": "at"})
    >>> len(db.upto(pd.Timestamp("2020-02-01"))["orders"])
    2
    """

    def __init__(
        self,
        tables: Mapping[str, Table | pd.DataFrame],
        *,
        primary_keys: Mapping[str, str] | None = None,
        foreign_keys: Mapping[str, Mapping[str, str]] | None = None,
        time_columns: Mapping[str, str] | None = None,
        dangling: str = "raise",
        cache_bytes: int | None = None,
    ):
        if dangling not in ("raise", "null"):
            raise ValueError(f"dangling must be 'raise' or 'null', got {dangling!r}.")
        primary_keys = dict(primary_keys or {})
        foreign_keys = {k: dict(v) for k, v in (foreign_keys or {}).items()}
        time_columns = dict(time_columns or {})
        if not isinstance(tables, Mapping) or not tables:
            raise SchemaError("A Database needs a non-empty dict of tables {name: DataFrame or Table}.")
        for where, mapping in (
            ("primary_keys", primary_keys),
            ("foreign_keys", foreign_keys),
            ("time_columns", time_columns),
        ):
            unknown = sorted(set(mapping) - set(tables))
            if unknown:
                raise SchemaError(f"{where} names unknown table(s) {unknown}; tables are {sorted(tables)}.")
        built: dict[str, Table] = {}
        for name, t in tables.items():
            if not isinstance(name, str) or not name:
                raise SchemaError(f"Table names must be non-empty strings, got {name!r}.")
            if _is_file(t):
                if name in primary_keys or name in foreign_keys or name in time_columns:
                    raise SchemaError(f"Table {name!r} is a FileTable with its own schema; do not also give it in "
                                      "primary_keys / foreign_keys / time_columns.")
                built[name] = t  # never modified: its rows stay in the file
            elif isinstance(t, Table):
                if name in primary_keys or name in foreign_keys or name in time_columns:
                    raise SchemaError(
                        f"Table {name!r} is a Table with its own schema; do not also give it in "
                        "primary_keys / foreign_keys / time_columns."
                    )
                built[name] = Table(t.df.copy(), t.pkey, dict(t.fkeys), t.time_col)
            elif isinstance(t, pd.DataFrame):
                built[name] = Table(
                    t.copy(), primary_keys.get(name), dict(foreign_keys.get(name, {})), time_columns.get(name)
                )
            else:
                raise SchemaError(f"Table {name!r} must be a pandas DataFrame or a skrel Table, got {type(t).__name__}.")
        self.tables: dict[str, Table] = built
        self.dangling = dangling
        self._fingerprint: str | None = None
        self._init_cache(CacheStore(cache_bytes), next(_NAMESPACES))
        self._validate()
        self._freeze(owned=True)

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        lower: dict[str, str] = {}
        for name in self.tables:
            if name.lower() in lower:
                raise SchemaError(
                    f"Table names {lower[name.lower()]!r} and {name!r} clash: SQL engines compare names "
                    "case-insensitively. Rename one of them."
                )
            lower[name.lower()] = name
        for name, t in self.tables.items():
            if len(t) == 0:
                raise SchemaError(f"Table {name!r} is empty (0 rows). Drop it from the database or give it rows.")
            columns = _columns(t)
            bad = [c for c in columns if not isinstance(c, str)]
            if bad:
                raise SchemaError(
                    f"Table {name!r} has {len(bad)} non-string column name(s) (first: {bad[:5]}); column names "
                    "must be strings. Rename them, e.g. df.columns = [str(c) for c in df.columns]."
                )
            cols = list(columns)
            if "" in cols:
                raise SchemaError(
                    f"Table {name!r} has a column named '' (the empty string) at position {cols.index('')}; "
                    "SQL engines and feature names cannot refer to it. Rename it."
                )
            seen: dict[str, str] = {}
            for c in cols:
                if c.lower() in seen:
                    raise SchemaError(
                        f"Table {name!r} has clashing column names {seen[c.lower()]!r} and {c!r} "
                        "(equal up to case). Rename one of them."
                    )
                seen[c.lower()] = c
            for role, col in (("primary key", t.pkey), ("time column", t.time_col)):
                if col is not None and col not in cols:
                    raise SchemaError(f"Table {name!r} has no column {col!r} (its {role}); columns are {cols}.")
            for col in t.fkeys:
                if col not in cols:
                    raise SchemaError(f"Table {name!r} has no column {col!r} (a foreign key); columns are {cols}.")
            if t.pkey is not None:
                self._check_pkey(name, t)
        for name, t in self.tables.items():
            for col, ref in t.fkeys.items():
                if ref not in self.tables:
                    raise SchemaError(
                        f"Foreign key {name}.{col} references unknown table {ref!r}; tables are {sorted(self.tables)}."
                    )
                if self.tables[ref].pkey is None:
                    raise SchemaError(
                        f"Foreign key {name}.{col} references table {ref!r}, which has no primary key. "
                        f"Give {ref!r} a primary key."
                    )
        self._convert_times()
        for name, t in self.tables.items():
            for col, ref in t.fkeys.items():
                self._check_fkey(name, t, col, ref)

    def _check_pkey(self, name: str, t: Table) -> None:
        if _is_file(t):
            return self._check_file_pkey(name, t)
        key = t.df[t.pkey]
        nulls = int(key.isna().sum())
        if nulls:
            rows = _first(np.flatnonzero(key.isna().to_numpy()))
            raise SchemaError(
                f"Primary key {name}.{t.pkey} has {nulls} null value(s) (first at row positions {rows}). "
                "Fill or drop those rows."
            )
        dup = key.duplicated(keep=False)
        if dup.any():
            values = _first(pd.unique(key[dup]))
            raise SchemaError(
                f"Primary key {name}.{t.pkey} has {int(key.duplicated().sum())} duplicate value(s) "
                f"(first: {values}). Primary keys must be unique."
            )

    def _check_file_pkey(self, name: str, t) -> None:
        """The primary key of a file table, checked by SQL on the file."""
        k = quote_identifier(t.pkey)
        r = t.query(f"SELECT count(*) - count({k}) AS nulls, count({k}) - count(DISTINCT {k}) AS dups FROM {{t}}")
        nulls, dups = int(r["nulls"].iloc[0]), int(r["dups"].iloc[0])
        if nulls:
            raise SchemaError(f"Primary key {name}.{t.pkey} has {nulls} null value(s) in {t.path}. "
                              "Fill or drop those rows.")
        if dups:
            first = t.query(f"SELECT {k} AS v FROM {{t}} GROUP BY {k} HAVING count(*) > 1 ORDER BY {k} LIMIT 5")["v"]
            raise SchemaError(f"Primary key {name}.{t.pkey} has {dups} duplicate value(s) in {t.path} "
                              f"(first: {first.tolist()}). Primary keys must be unique.")

    def _check_file_fkey(self, name: str, t, col: str, ref: str) -> None:
        """A foreign key of (or to) a file table, checked by SQL (an anti-join) on the files."""
        from .files import connect, register_table

        target = self.tables[ref]
        paths = [x.path for x in (t, target) if _is_file(x)]
        con = connect(paths)
        try:
            register_table(con, "child", t)
            if _is_file(target):
                register_table(con, "parent", target)
            else:
                con.register("parent", target.df[[target.pkey]])
            c, k = quote_identifier(col), quote_identifier(target.pkey)
            sql = (f"SELECT c.{c} AS v FROM child c ANTI JOIN parent p ON c.{c} = p.{k} "
                   f"WHERE c.{c} IS NOT NULL")
            try:
                n_bad = int(con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0])
                first = con.execute(f"SELECT DISTINCT v FROM ({sql}) ORDER BY v LIMIT 5").df()["v"].tolist() \
                    if n_bad else []
            except Exception as exc:  # incomparable types
                raise SchemaError(f"Foreign key {name}.{col} cannot be compared with {ref}.{target.pkey}: {exc}") \
                    from None
        finally:
            con.close()
        if n_bad:
            raise SchemaError(
                f"Foreign key {name}.{col} has {n_bad} value(s) with no matching {ref}.{target.pkey} "
                f"(first: {first}). Fix the data (a file table's values cannot be set to missing in place)."
            )

    def _check_fkey(self, name: str, t: Table, col: str, ref: str) -> None:
        if _is_file(t) or _is_file(self.tables[ref]):
            return self._check_file_fkey(name, t, col, ref)
        values = t.df[col]
        target = self.tables[ref].df[self.tables[ref].pkey]
        present = values.notna().to_numpy()
        try:
            ok = values.isin(target).to_numpy()
        except TypeError as exc:  # pragma: no cover - incomparable dtypes
            raise SchemaError(f"Foreign key {name}.{col} cannot be compared with {ref}.{self.tables[ref].pkey}: {exc}")
        bad = present & ~ok
        n_bad = int(bad.sum())
        if not n_bad:
            return
        first = _first(pd.unique(values[bad]))
        hint = ""
        if n_bad == int(present.sum()) and _kind(values.dtype) != _kind(target.dtype):
            hint = (
                f" No value matches: {name}.{col} is {values.dtype} and {ref}.{self.tables[ref].pkey} is "
                f"{target.dtype}; convert one of them to the other's type."
            )
        if self.dangling == "raise":
            raise SchemaError(
                f"Foreign key {name}.{col} has {n_bad} value(s) with no matching {ref}.{self.tables[ref].pkey} "
                f"(first: {first}).{hint} Fix the data, or pass dangling='null' to set them to missing."
            )
        warnings.warn(
            f"Foreign key {name}.{col}: {n_bad} value(s) with no matching {ref}.{self.tables[ref].pkey} "
            f"(first: {first}) were set to missing (dangling='null').{hint}",
            DanglingForeignKeyWarning,
            stacklevel=4,
        )
        col_values = values.astype("Int64") if values.dtype.kind in "iub" else values.copy()
        col_values.iloc[np.flatnonzero(bad)] = pd.NA if col_values.dtype == "Int64" else None
        t.df[col] = col_values

    def _convert_times(self) -> None:
        aware, naive = [], []
        for name, t in self.tables.items():
            if t.time_col is None:
                continue
            if _is_file(t):
                dtype = t.schema_frame[t.time_col].dtype
                if isinstance(dtype, pd.DatetimeTZDtype):
                    raise SchemaError(f"Time column {name}.{t.time_col} of {t.path} is timezone-aware; a file "
                                      "table's times must be naive (UTC). Rewrite it without a timezone.")
                if pd.api.types.is_datetime64_any_dtype(dtype):
                    naive.append(name)
                else:
                    raise SchemaError(
                        f"Time column {name}.{t.time_col} of {t.path} has type {t.arrow_type(t.time_col)}; a file "
                        "table's time column must be a Parquet timestamp. Rewrite the file with the column as "
                        "timestamps (e.g. pd.to_datetime) or read it into memory with load_directory."
                    )
                continue
            raw = t.df[t.time_col]
            if isinstance(raw.dtype, pd.DatetimeTZDtype):
                converted = raw.dt.tz_convert("UTC").dt.tz_localize(None)
                aware.append(name)
            elif pd.api.types.is_datetime64_any_dtype(raw.dtype):
                converted = raw
                naive.append(name)
            else:
                converted, is_aware = _parse_times(raw, f"{name}.{t.time_col}")
                (aware if is_aware else naive).append(name)
            try:
                t.df[t.time_col] = converted.astype("datetime64[ns]")
            except (ValueError, OverflowError):  # OutOfBoundsDatetime
                raise SchemaError(
                    f"Time column {name}.{t.time_col} has values outside the range {_NS_RANGE} that "
                    "datetime64[ns] holds. Clip or drop them."
                ) from None
        if aware and naive:
            raise SchemaError(
                f"Time columns mix timezone-aware tables {aware} and naive tables {naive}. "
                "Use one convention for the whole database (skrel converts aware times to naive UTC)."
            )

    # ------------------------------------------------------------------ access
    def __getitem__(self, name: str) -> Table:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"No table {name!r}; tables are {sorted(self.tables)}.") from None

    def __contains__(self, name: str) -> bool:
        return name in self.tables

    def __iter__(self):
        return iter(self.tables)

    @property
    def table_names(self) -> list[str]:
        return list(self.tables)

    @property
    def min_time(self) -> pd.Timestamp:
        """Earliest time over all time columns."""
        times = [t.time_range()[0] if _is_file(t) else t.df[t.time_col].min()
                 for t in self.tables.values() if t.time_col is not None]
        times = [x for x in times if pd.notna(x)]
        return min(times) if times else pd.NaT

    @property
    def max_time(self) -> pd.Timestamp:
        """Latest time over all time columns."""
        return self.last_time()

    def last_time(self, tables=None) -> pd.Timestamp:
        """Latest time over the time columns of ``tables`` (all tables by default); NaT without any."""
        chosen = self.tables.values() if tables is None else (self.tables[n] for n in tables)
        times = [t.time_range()[1] if _is_file(t) else t.df[t.time_col].max()
                 for t in chosen if t.time_col is not None]
        times = [x for x in times if pd.notna(x)]
        return max(times) if times else pd.NaT

    def __repr__(self) -> str:
        body = ", ".join(f"{n}({len(t)})" for n, t in self.tables.items())
        return f"Database({body})"

    # ------------------------------------------------------------------ time
    def upto(self, t) -> "Database":
        """The rows visible at ``t``: time ``<= t`` (tables without a time column stay whole).

        Rows with a missing time are never visible in a cut database.
        """
        t = pd.Timestamp(t)
        if t is pd.NaT:
            raise ValueError("upto needs a time, got NaT.")
        if t.tzinfo is not None:  # times are stored as naive UTC
            t = t.tz_convert("UTC").tz_localize(None)
        key = ("upto", t)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        tables = {}
        for name, tab in self.tables.items():
            if _is_file(tab):
                tables[name] = tab.cut(t)
                continue
            df = tab.df
            if tab.time_col is not None:
                df = df.take(np.flatnonzero((df[tab.time_col] <= t).to_numpy()))
            else:
                df = df.copy(deep=False)  # shares the read-only buffers, not the frame
            tables[name] = Table(df, tab.pkey, dict(tab.fkeys), tab.time_col)
        out = Database._trusted(tables, self.dangling, store=self._cache_store, namespace=(self._cache_ns, key))
        out._shared_tables = frozenset(n for n, tab in self.tables.items()
                                       if tab.time_col is None and not _is_file(tab))
        self.cache[key] = out
        return out

    @classmethod
    def _trusted(cls, tables: dict[str, Table], dangling: str = "raise", *, store: CacheStore | None = None,
                 namespace=None) -> "Database":
        """Build without validation or copies, from tables already validated (internal).

        The tables' frames must be skrel's own (they are made read-only). ``store`` and
        ``namespace`` share a parent's cache store (a cut database).
        """
        obj = cls.__new__(cls)
        obj.tables = tables
        obj.dangling = dangling
        obj._fingerprint = None
        obj._init_cache(store if store is not None else CacheStore(),
                        namespace if namespace is not None else next(_NAMESPACES))
        obj._freeze(owned=True)
        return obj

    # ------------------------------------------------------------------ cache and read-only tables
    def _init_cache(self, store: CacheStore, namespace) -> None:
        self._cache_store = store
        self._cache_ns = namespace
        self._cache_view = DatabaseCache(self)
        self._tokens: dict = {}

    def _freeze(self, owned: bool, names=None) -> None:
        """Make the tables read-only and record their structural tokens."""
        for name in self.tables if names is None else names:
            if not _is_file(self.tables[name]):  # a file table's rows are read-only once read
                _protect(self.tables[name].df, owned)
        self._tokens = {name: _token(t) for name, t in self.tables.items()}

    def _check_unchanged(self) -> None:
        """Clear the caches and the fingerprint if a table was changed in place since the last check."""
        tokens = self._tokens
        if tokens.keys() == self.tables.keys() and all(
            _same(tokens[name], _token(t)) for name, t in self.tables.items()
        ):
            return
        with self._cache_store._lock:
            changed = [n for n, t in self.tables.items() if n not in tokens or not _same(tokens[n], _token(t))]
            removed = sorted(set(tokens) - set(self.tables))
            if not changed and not removed:
                return
            for name in changed:
                t = self.tables[name]
                if _is_file(t):
                    continue
                if name not in tokens or t.df is not tokens[name][0][0]:
                    # a new frame: take a copy, as the constructor does (a Table put into db.tables holds
                    # the caller's frame; one assigned to Table.df was copied already, a rare second copy)
                    object.__setattr__(t, "df", t.df.copy())
                    _protect(t.df, owned=True)
                else:
                    _protect(t.df, owned=False)
            self._tokens = {name: _token(t) for name, t in self.tables.items()}
            self._fingerprint = None
            self._cache_ns = next(_NAMESPACES)
            self._cache_store.clear()
        logger.info(
            "Database tables %s were changed in place (removed: %s): its caches were cleared. Build a new "
            "Database from edited copies instead of editing tables in place.", changed, removed,
        )

    @property
    def cache(self) -> DatabaseCache:
        """Per-process cache for what is derived from the database (labels, cuts, features, graphs).

        A mutable mapping (``in``, ``[]``, ``[]=``, ``get``, ``del``, ``len``, iteration, ``clear()``)
        over a least-recently-used store bounded in bytes, shared with the databases cut from this
        one (:meth:`upto`); ``hits``, ``misses``, ``evictions``, ``nbytes`` and ``max_bytes``
        (settable) describe the store. Keys must identify what they cache, for example by the
        class and parameters that computed it. Never pickled. See :mod:`skrel.data._cache`.

        Every operation first checks that no table was changed in place: a replaced column or
        frame clears the cache (values written into a table raise instead, see :class:`Table`).
        """
        return self._cache_view

    def clear_cache(self) -> None:
        """Drop every cached entry of this database and of the databases cut from it."""
        self._cache_store.clear()

    @property
    def cache_nbytes(self) -> int:
        """Estimated memory of the tables, in bytes (the size of a cut database held in a cache).

        A database cut with :meth:`upto` does not count the tables it shares with the database
        it was cut from (those without a time column).
        """
        shared = getattr(self, "_shared_tables", frozenset())
        return int(sum(estimate_nbytes(t.df) for n, t in self.tables.items()
                       if n not in shared and (not _is_file(t) or t.loaded)))

    def __sizeof__(self) -> int:
        # Every table held in memory, shared or not. Dask's ``sizeof`` (``sys.getsizeof``) reads this:
        # joblib's Dask backend scatters an argument once, rather than pickling it into every task,
        # only when it reports more than a kilobyte.
        return object.__sizeof__(self) + int(sum(estimate_nbytes(t.df) for t in self.tables.values()
                                                 if not _is_file(t) or t.loaded))

    # ------------------------------------------------------------------ identity and pickling
    @property
    def fingerprint(self) -> str:
        """A content hash of schema and rows, the key of skrel's per-database caches."""
        self._check_unchanged()
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            for name in sorted(self.tables):
                t = self.tables[name]
                if _is_file(t):  # the file (path, size, modification time) and the time bound, not the rows
                    h.update(repr((name, t.pkey, sorted(t.fkeys.items()), t.time_col, t.columns,
                                   t.identity())).encode())
                    continue
                h.update(repr((name, t.pkey, sorted(t.fkeys.items()), t.time_col, list(t.df.columns))).encode())
                h.update(repr([str(d) for d in t.df.dtypes]).encode())
                h.update(_hash_rows(t.df))
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def __getstate__(self):
        # Every parallel task (a cross-validation fold, a grid-search candidate) pickles the
        # database its rows refer to: compress the tables of a large one (zstd, on the exact
        # pickle bytes, so dtypes and values round-trip unchanged; about 10x smaller on rel-f1).
        # The cache is never pickled.
        self._check_unchanged()
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_cache_store", "_cache_ns", "_cache_view", "_tokens", "_shared_tables")}
        state["_cache_bytes"] = self._cache_store.max_bytes
        payload = pickle.dumps(state["tables"], protocol=pickle.HIGHEST_PROTOCOL)
        if len(payload) >= _COMPRESS_MIN_BYTES:
            import pyarrow as pa

            if pa.Codec.is_available("zstd"):
                del state["tables"]
                state["_tables_zstd"] = (len(payload), pa.compress(payload, codec="zstd", asbytes=True))
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.pop("_cache", None)  # pickles of skrel <= 0.x carried an (empty) dict cache
        cache_bytes = state.pop("_cache_bytes", None)
        packed = state.pop("_tables_zstd", None)
        if packed is not None:
            import pyarrow as pa

            size, data = packed
            state["tables"] = pickle.loads(pa.decompress(data, decompressed_size=size, codec="zstd", asbytes=True))
        self.__dict__.update(state)
        self._init_cache(CacheStore(cache_bytes), next(_NAMESPACES))
        self._freeze(owned=True)  # unpickled buffers are writeable again

    # ------------------------------------------------------------------ schema
    def schema(self) -> dict:
        """A JSON-serialisable description: rows, columns, column kinds, keys and time column per table.

        ``kinds`` maps each column to a coarse kind (see :func:`column_kind`): ``"numeric"``,
        ``"boolean"``, ``"datetime"``, ``"timedelta"``, ``"categorical"``, ``"text"``, ``"list"``
        (list, tuple or array values), ``"empty"`` (all missing) or ``"other"``. A database
        holds every kind; each family decides which it uses.
        """
        return {
            name: {
                "rows": int(len(t.df)),
                "columns": [str(c) for c in t.df.columns],
                "kinds": {str(c): column_kind(t.df[c]) for c in t.df.columns},
                "primary_key": t.pkey,
                "foreign_keys": dict(t.fkeys),
                "time_column": t.time_col,
            }
            for name, t in self.tables.items()
        }

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_sql(cls, url, **kwargs) -> "Database":
        """Read every table of a SQL database; see :func:`skrel.data.from_sql`."""
        from .sql import from_sql

        return from_sql(url, **kwargs)

    @classmethod
    def from_parquet(cls, path, schema=None, **kwargs) -> "Database":
        """Tables from Parquet files; the large ones stay in their files. See
        :func:`skrel.data.files.from_parquet` and :class:`skrel.data.files.FileTable`."""
        from .files import from_parquet

        return from_parquet(path, schema, **kwargs)

    @classmethod
    def from_relbench(cls, rdb, **kwargs) -> "Database":
        """Convert a relbench 3.x ``Database``; see :func:`skrel.data.from_relbench`."""
        from .relbench_io import from_relbench

        return from_relbench(rdb, **kwargs)

    def to_relbench(self):
        """Convert to a relbench 3.x ``Database`` (keys re-indexed to 0..n-1)."""
        from .relbench_io import to_relbench

        return to_relbench(self)
