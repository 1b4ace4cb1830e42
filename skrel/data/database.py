"""The relational database: named tables with primary keys, foreign keys and time columns.

The data core imports pandas, numpy, DuckDB and pyarrow only; never torch.

Point-in-time convention (the one used by every family in skrel): a row is *visible at cutoff t*
when its time is ``<= t``. Rows of tables without a time column are always visible. This is
RelBench's convention (``Database.upto``).
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["Table", "Database", "SchemaError", "DanglingForeignKeyWarning"]


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
    """

    df: pd.DataFrame
    pkey: str | None = None
    fkeys: dict[str, str] = field(default_factory=dict)
    time_col: str | None = None

    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        return (
            f"Table(rows={len(self.df)}, columns={list(self.df.columns)}, pkey={self.pkey!r}, "
            f"fkeys={self.fkeys!r}, time_col={self.time_col!r})"
        )


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

    Notes
    -----
    The caller's DataFrames are copied, never mutated. Time columns are converted to
    ``datetime64[ns]``; timezone-aware columns are converted to UTC and made naive, and a
    database that mixes aware and naive time columns is rejected.

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
            if isinstance(t, Table):
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
        self._cache: dict = {}
        self._validate()

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
            df = t.df
            if len(df) == 0:
                raise SchemaError(f"Table {name!r} is empty (0 rows). Drop it from the database or give it rows.")
            cols = [str(c) for c in df.columns]
            if any(not isinstance(c, str) for c in df.columns):
                raise SchemaError(f"Table {name!r} has non-string column names {list(df.columns)[:5]}; use strings.")
            seen: dict[str, str] = {}
            for c in cols:
                if c.lower() in seen:
                    raise SchemaError(
                        f"Table {name!r} has clashing column names {seen[c.lower()]!r} and {c!r} "
                        "(equal up to case). Rename one of them."
                    )
                seen[c.lower()] = c
            for role, col in (("primary key", t.pkey), ("time column", t.time_col)):
                if col is not None and col not in df.columns:
                    raise SchemaError(f"Table {name!r} has no column {col!r} (its {role}); columns are {cols}.")
            for col in t.fkeys:
                if col not in df.columns:
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

    def _check_fkey(self, name: str, t: Table, col: str, ref: str) -> None:
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
        times = [t.df[t.time_col].min() for t in self.tables.values() if t.time_col is not None]
        times = [x for x in times if pd.notna(x)]
        return min(times) if times else pd.NaT

    @property
    def max_time(self) -> pd.Timestamp:
        """Latest time over all time columns."""
        return self.last_time()

    def last_time(self, tables=None) -> pd.Timestamp:
        """Latest time over the time columns of ``tables`` (all tables by default); NaT without any."""
        chosen = self.tables.values() if tables is None else (self.tables[n] for n in tables)
        times = [t.df[t.time_col].max() for t in chosen if t.time_col is not None]
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
        if key in self._cache:
            return self._cache[key]
        tables = {}
        for name, tab in self.tables.items():
            df = tab.df
            if tab.time_col is not None:
                df = df[df[tab.time_col] <= t]
            tables[name] = Table(df, tab.pkey, dict(tab.fkeys), tab.time_col)
        out = Database._trusted(tables, self.dangling)
        self._cache[key] = out
        return out

    @classmethod
    def _trusted(cls, tables: dict[str, Table], dangling: str = "raise") -> "Database":
        """Build without validation or copies, from tables already validated (internal)."""
        obj = cls.__new__(cls)
        obj.tables = tables
        obj.dangling = dangling
        obj._fingerprint = None
        obj._cache = {}
        return obj

    # ------------------------------------------------------------------ identity and pickling
    @property
    def fingerprint(self) -> str:
        """A content hash of schema and rows, the key of skrel's per-database caches."""
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            for name in sorted(self.tables):
                t = self.tables[name]
                h.update(repr((name, t.pkey, sorted(t.fkeys.items()), t.time_col, list(t.df.columns))).encode())
                h.update(repr([str(d) for d in t.df.dtypes]).encode())
                h.update(pd.util.hash_pandas_object(t.df, index=False).to_numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    @property
    def cache(self) -> dict:
        """Per-process cache for derived structures (features, graphs); never pickled."""
        return self._cache

    def __getstate__(self):
        # Every parallel task (a cross-validation fold, a grid-search candidate) pickles the
        # database its rows refer to: compress the tables of a large one (zstd, on the exact
        # pickle bytes, so dtypes and values round-trip unchanged; about 10x smaller on rel-f1).
        state = self.__dict__.copy()
        state["_cache"] = {}
        payload = pickle.dumps(state["tables"], protocol=pickle.HIGHEST_PROTOCOL)
        if len(payload) >= _COMPRESS_MIN_BYTES:
            import pyarrow as pa

            if pa.Codec.is_available("zstd"):
                del state["tables"]
                state["_tables_zstd"] = (len(payload), pa.compress(payload, codec="zstd", asbytes=True))
        return state

    def __setstate__(self, state):
        state = dict(state)
        packed = state.pop("_tables_zstd", None)
        if packed is not None:
            import pyarrow as pa

            size, data = packed
            state["tables"] = pickle.loads(pa.decompress(data, decompressed_size=size, codec="zstd", asbytes=True))
        self.__dict__.update(state)
        self._cache = {}

    # ------------------------------------------------------------------ schema
    def schema(self) -> dict:
        """A JSON-serialisable description: rows, columns, keys and time column per table."""
        return {
            name: {
                "rows": int(len(t.df)),
                "columns": [str(c) for c in t.df.columns],
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
    def from_relbench(cls, rdb, **kwargs) -> "Database":
        """Convert a relbench 3.x ``Database``; see :func:`skrel.data.from_relbench`."""
        from .relbench_io import from_relbench

        return from_relbench(rdb, **kwargs)

    def to_relbench(self):
        """Convert to a relbench 3.x ``Database`` (keys re-indexed to 0..n-1)."""
        from .relbench_io import to_relbench

        return to_relbench(self)
