"""The ``temporal`` component: how labels persist over time, and how many validation entities
training has already seen."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import EmbeddingRows, EmbeddingSettings

__all__ = ["temporal"]


def _autocorr(a: np.ndarray, b: np.ndarray, task_type: str) -> float:
    """Pooled lag correlation: Pearson (binary, regression); Cohen's kappa (multiclass)."""
    if len(a) < 3:
        return np.nan
    if task_type == "multiclass":
        agree = float(np.mean(a == b))
        classes = np.union1d(a, b)
        chance = float(sum(np.mean(a == k) * np.mean(b == k) for k in classes))
        return (agree - chance) / (1.0 - chance) if chance < 1 else np.nan
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return np.nan
    return float(np.corrcoef(a, b)[0, 1])


def temporal(rows: EmbeddingRows, settings: EmbeddingSettings) -> dict[str, float]:
    """Lag-1, 2 and 3 autocorrelation of each entity's labels over the training cutoffs (pooled
    over entities, with the number of pairs), and the share of validation entities (and rows) whose
    entity has a training row. All training and validation rows, not the subsamples."""
    X, y = rows.train, rows.y_train
    cut = np.sort(pd.unique(X.cutoffs))
    df = pd.DataFrame({"e": X.entity_ids, "j": np.searchsorted(cut, X.cutoffs), "y": y})
    df = df.drop_duplicates(["e", "j"])
    out = {}
    for lag in (1, 2, 3):
        nxt = df.assign(j=df["j"] - lag)
        m = df.merge(nxt, on=["e", "j"], suffixes=("", "_next"))
        out[f"temporal.autocorr_lag{lag}"] = _autocorr(m["y"].to_numpy(), m["y_next"].to_numpy(), rows.task_type)
        out[f"temporal.autocorr_lag{lag}_pairs"] = float(len(m))
    seen = set(pd.unique(X.entity_ids))
    val_ids = pd.Series(rows.val.entity_ids) if rows.val is not None else pd.Series([], dtype=object)
    val_e = pd.unique(val_ids)
    out["temporal.val_entities_seen"] = float(np.mean([v in seen for v in val_e])) if len(val_e) else np.nan
    out["temporal.val_rows_seen"] = float(val_ids.isin(seen).mean()) if len(val_ids) else np.nan
    return out
