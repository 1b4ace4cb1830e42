"""The ``scale`` component: how big the task and its database are, on a log scale."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import EmbeddingRows, EmbeddingSettings

__all__ = ["scale"]


def scale(rows: EmbeddingRows, settings: EmbeddingSettings) -> dict[str, float]:
    """``log1p`` of the training rows, entities and cutoffs, and of the tables and columns of the
    database (cut at the last training or validation cutoff)."""
    X = rows.train
    return {
        "scale.log_train_rows": float(np.log1p(len(X))),
        "scale.log_entities": float(np.log1p(pd.Series(X.entity_ids).nunique())),
        "scale.log_cutoffs": float(np.log1p(pd.Series(X.cutoffs).nunique())),
        "scale.log_tables": float(np.log1p(len(rows.db.tables))),
        "scale.log_columns": float(np.log1p(sum(t.df.shape[1] for t in rows.db.tables.values()))),
    }
