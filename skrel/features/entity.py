"""The entity table's own columns at each row's cutoff (the baseline's features)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..data import RelationalDataset, SchemaError, horizon_cutoffs
from ._definitions import _object_kind

__all__ = ["entity_columns", "entity_frame", "column_kind"]


def column_kind(s: pd.Series) -> str | None:
    """How the baseline reads a column: ``"numeric"`` (numbers, booleans, durations in seconds),
    ``"datetime"`` (an age in days), ``"categorical"`` (strings), or ``None`` (lists, arrays,
    dicts: unusable)."""
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if dtype == object and _object_kind(s) == "container":
        return None
    return "categorical"


def entity_columns(X: RelationalDataset) -> dict[str, str]:
    """The entity table's usable columns and their kinds (see :func:`column_kind`): every column
    but the key and foreign keys; the time column is used as the entity's age. Columns holding
    lists are left out with one warning."""
    table = X.db[X.entity_table]
    out = {}
    for col in table.df.columns:
        if col == table.pkey or col in table.fkeys:
            continue
        kind = column_kind(table.df[col])
        if kind is None:
            warnings.warn(
                f"Column {X.entity_table}.{col} holds lists, arrays or dicts, which the baseline cannot use; "
                "it is ignored.",
                UserWarning,
                stacklevel=3,
            )
            continue
        out[col] = kind
    return out


def entity_frame(X: RelationalDataset, columns: dict[str, str] | None = None, horizon: str = "cutoff") -> pd.DataFrame:
    """One row per row of ``X``: the entity's own columns, visible at the cutoff.

    Parameters
    ----------
    X : RelationalDataset
    columns : dict of str to str, optional
        Columns and kinds (default: :func:`entity_columns`). Every one must exist in ``X.db``
        with the same kind, else a :class:`~skrel.data.SchemaError` names it.
    horizon : {"cutoff", "data"}, default="cutoff"
        Where ages are counted from (:func:`~skrel.data.horizon_cutoffs`).

    Returns
    -------
    pandas.DataFrame
        Datetime columns, the entity table's time column included, become the number of days
        from the value to the row's (horizon) cutoff, an age, so a model never sees absolute
        future dates (timezone-aware values are taken in UTC, the cutoffs' convention);
        durations become seconds. If the entity table has a time column, an entity row dated
        after the cutoff is not visible and its features are missing.
    """
    table = X.db[X.entity_table]
    if columns is None:
        columns = entity_columns(X)
    for col, kind in columns.items():
        if col not in table.df.columns:
            raise SchemaError(
                f"Column {X.entity_table}.{col}, used at fit, is not in X's database; the columns are "
                f"{list(table.df.columns)}. Predict on a database with the tables and columns seen at fit."
            )
        now = column_kind(table.df[col])
        if now != kind:
            raise SchemaError(
                f"Column {X.entity_table}.{col} was {kind} at fit but has dtype {table.df[col].dtype} in X's "
                "database. Give it the dtype it had at fit."
            )
    df = table.df.set_index(table.pkey)
    pos = df.index.get_indexer(X.entity_ids)
    if (pos < 0).any():
        unknown = pd.unique(X.entity_ids[pos < 0])[:5].tolist()
        raise SchemaError(
            f"{int((pos < 0).sum())} row(s) of X name entities missing from {X.entity_table}.{table.pkey} "
            f"(first: {unknown})."
        )
    rows = df.iloc[pos].reset_index(drop=True)
    cutoff = pd.Series(X.cutoffs)
    at = pd.Series(horizon_cutoffs(X, horizon, tables=[X.entity_table]))
    visible = np.ones(len(rows), dtype=bool)
    if table.time_col is not None:
        visible = (rows[table.time_col] <= cutoff).to_numpy()
    out = {}
    for col, kind in columns.items():
        s = rows[col]
        if kind == "datetime":
            if isinstance(s.dtype, pd.DatetimeTZDtype):  # cutoffs are naive UTC, as the database's time columns
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            s = (at - s.astype("datetime64[ns]")).dt.total_seconds() / 86400.0
        elif pd.api.types.is_timedelta64_dtype(s.dtype):
            s = s.dt.total_seconds()
        elif kind == "categorical":
            s = s.astype("string")
        out[col] = s.where(visible)
    return pd.DataFrame(out, index=pd.RangeIndex(len(X)))
