"""Conversions between skrel's :class:`~skrel.data.Database` and relbench 3.x ``Database``.

relbench demands primary keys ``0..n-1`` in row order, with foreign keys holding those row
indices. :func:`to_relbench` therefore re-indexes every primary key (keeping the row order),
maps every foreign key to the new indices (a missing value stays missing, as pandas ``Int64``),
and keeps the original key values in a column ``<pkey>__orig`` (:data:`ORIG_SUFFIX`) next to the
primary key, unless ``keep_original_keys=False``. :func:`from_relbench` restores the original keys
from those columns (and drops them) unless ``restore_keys=False``, so
``from_relbench(to_relbench(db))`` gives back ``db``'s tables.

A ``<pkey>__orig`` column is data, not a key: drop it before handing the relbench database to a
relbench model that infers features from every column (or convert with
``keep_original_keys=False``).

Tasks are not converted: a relbench ``EntityTask`` needs a relbench ``Dataset`` (with its own
loading and caching), which skrel does not build.

Neither function mutates its input.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..utils import import_optional

from .database import Database, DanglingForeignKeyWarning, SchemaError, Table

__all__ = ["from_relbench", "to_relbench", "ORIG_SUFFIX"]

#: Suffix of the column that keeps a table's original primary-key values in :func:`to_relbench`.
ORIG_SUFFIX = "__orig"


def _relbench_base():
    return import_optional("relbench.base", "Converting to and from relbench databases")


def to_relbench(db: Database, *, keep_original_keys: bool = True):
    """Convert a skrel :class:`Database` to a relbench 3.x ``Database``.

    Parameters
    ----------
    db : Database
    keep_original_keys : bool, default=True
        Keep each table's original primary-key values in a column ``<pkey>__orig``.

    Returns
    -------
    relbench.base.Database
        Primary keys ``0..n-1`` in the row order of ``db``; foreign keys hold those indices
        (``int64``, or ``Int64`` when some are missing). Foreign-key values with no matching
        primary key (possible in a database cut with ``upto``) become missing, with a
        :class:`DanglingForeignKeyWarning`.
    """
    if not isinstance(db, Database):
        raise TypeError(f"to_relbench converts a skrel Database, got {type(db).__name__}.")
    base = _relbench_base()
    index = {name: pd.Index(t.df[t.pkey]) for name, t in db.tables.items() if t.pkey is not None}
    for name, idx in index.items():
        if not idx.is_unique:  # pragma: no cover - Database validation guarantees it
            raise SchemaError(f"Primary key {name}.{db[name].pkey} is not unique.")
    out = {}
    for name, t in db.tables.items():
        df = t.df.copy()
        if t.pkey is not None:
            if keep_original_keys:
                orig = f"{t.pkey}{ORIG_SUFFIX}"
                if orig in df.columns:
                    raise SchemaError(
                        f"Table {name!r} already has a column {orig!r}, where to_relbench keeps the original "
                        f"{name}.{t.pkey} values. Rename it, or pass keep_original_keys=False."
                    )
                position = df.columns.get_loc(t.pkey) + 1
                df.insert(position, orig, t.df[t.pkey].to_numpy(copy=True))
            df[t.pkey] = np.arange(len(df), dtype=np.int64)
        for col, ref in t.fkeys.items():
            values = t.df[col]
            present = values.notna().to_numpy()
            pos = np.full(len(values), -1, dtype=np.int64)
            if present.any():
                pos[present] = index[ref].get_indexer(values[present])
            dangling = present & (pos < 0)
            if dangling.any():
                warnings.warn(
                    f"Foreign key {name}.{col}: {int(dangling.sum())} value(s) with no matching "
                    f"{ref}.{db[ref].pkey} were set to missing in the relbench database.",
                    DanglingForeignKeyWarning,
                    stacklevel=2,
                )
            missing = pos < 0
            if missing.any():
                df[col] = pd.array(np.where(missing, 0, pos), dtype="Int64")
                df.loc[missing, col] = pd.NA
            else:
                df[col] = pos
        out[name] = base.Table(df=df, fkey_col_to_pkey_table=dict(t.fkeys), pkey_col=t.pkey, time_col=t.time_col)
    return base.Database(out)


def from_relbench(rdb, dangling: str = "raise", *, restore_keys: bool = True) -> Database:
    """Convert a relbench 3.x ``Database`` to a skrel :class:`Database`.

    Parameters
    ----------
    rdb : relbench.base.Database
        For a relbench ``Dataset``, pass ``dataset.get_db()``.
    dangling : {"raise", "null"}, default="raise"
        Passed to :class:`Database`.
    restore_keys : bool, default=True
        Where a table has a ``<pkey>__orig`` column (written by :func:`to_relbench`), put those
        values back in the primary key and in the foreign keys that reference it, and drop the
        column.

    Returns
    -------
    Database
    """
    base = _relbench_base()
    if not isinstance(rdb, base.Database):
        hint = " Pass dataset.get_db()." if hasattr(rdb, "get_db") else ""
        raise TypeError(f"from_relbench converts a relbench.base.Database, got {type(rdb).__name__}.{hint}")
    tables: dict[str, Table] = {}
    for name, t in rdb.table_dict.items():
        if not isinstance(t, base.Table):
            raise TypeError(f"relbench table {name!r} is a {type(t).__name__}, not a relbench.base.Table.")
        tables[name] = Table(t.df.copy(), t.pkey_col, dict(t.fkey_col_to_pkey_table or {}), t.time_col)
    if restore_keys:
        _restore_keys(tables)
    return Database(tables, dangling=dangling)


def _restore_keys(tables: dict[str, Table]) -> None:
    """Put ``<pkey>__orig`` values back into keys (in place, on copies owned by the caller)."""
    originals: dict[str, pd.Series] = {}
    for name, t in tables.items():
        if t.pkey is None or f"{t.pkey}{ORIG_SUFFIX}" not in t.df.columns:
            continue
        key = t.df[t.pkey]
        if not (key.notna().all() and np.array_equal(key.to_numpy(), np.arange(len(key)))):
            raise SchemaError(
                f"Table {name!r} has a column {t.pkey}{ORIG_SUFFIX} but its primary key {t.pkey!r} is not "
                "0..n-1 in row order, so the original keys cannot be restored. Pass restore_keys=False."
            )
        originals[name] = t.df[f"{t.pkey}{ORIG_SUFFIX}"].reset_index(drop=True)
    for name, t in tables.items():
        for col, ref in t.fkeys.items():
            if ref not in originals:
                continue
            values = t.df[col]
            present = values.notna().to_numpy()
            pos = np.full(len(values), -1, dtype=np.int64)
            pos[present] = values[present].to_numpy().astype(np.int64)
            in_range = present & (pos >= 0) & (pos < len(originals[ref]))
            if (present & ~in_range).any():
                bad = values[present & ~in_range]
                raise SchemaError(
                    f"Foreign key {name}.{col} holds {len(bad)} value(s) outside 0..{len(originals[ref]) - 1} "
                    f"(first: {bad.iloc[:5].tolist()}), so its original keys cannot be restored."
                )
            orig = originals[ref]
            restored = orig.iloc[np.where(in_range, pos, 0)].reset_index(drop=True)
            restored.index = t.df.index
            if not in_range.all():
                restored = restored.astype("Int64") if restored.dtype.kind in "iu" else restored.astype(object)
                restored[~in_range] = pd.NA if restored.dtype == "Int64" else None
            t.df[col] = restored
    for name in originals:
        t = tables[name]
        t.df[t.pkey] = t.df[f"{t.pkey}{ORIG_SUFFIX}"]
        t.df.drop(columns=[f"{t.pkey}{ORIG_SUFFIX}"], inplace=True)  # in place: assigning Table.df copies
