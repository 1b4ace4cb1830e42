"""The entity table's own columns at each row's cutoff (the baseline's features)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import RelationalDataset, SchemaError

__all__ = ["entity_frame"]


def entity_frame(X: RelationalDataset) -> pd.DataFrame:
    """One row per row of ``X``: the entity's own columns, visible at the cutoff.

    Datetime columns become the number of days from the value to the cutoff (an age), so a
    model never sees absolute future dates. If the entity table has a time column, an entity
    row dated after the cutoff is not visible and its features are missing.
    """
    table = X.db[X.entity_table]
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
    visible = np.ones(len(rows), dtype=bool)
    if table.time_col is not None:
        visible = (rows[table.time_col] <= cutoff).to_numpy()
    out = {}
    for col in df.columns:
        if col in table.fkeys or col == table.time_col:
            continue
        s = rows[col]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = (cutoff - s.astype("datetime64[ns]")).dt.total_seconds() / 86400.0
        elif not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
            s = s.astype("string")
        out[col] = s.where(visible)
    return pd.DataFrame(out)
