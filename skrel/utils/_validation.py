"""Validation helpers shared by every layer."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["check_labels_present"]


def check_labels_present(y, name: str = "y") -> None:
    """Refuse missing labels (None, NaN), counting them and naming the first rows: the task type
    cannot be inferred from them, nor a class or a value learned."""
    missing = np.asarray(pd.isna(y), dtype=bool)
    if missing.any():
        raise ValueError(f"{name} has {int(missing.sum())} missing label(s) of {len(missing)} (first rows: "
                         f"{np.flatnonzero(missing)[:5].tolist()}); drop those rows or fill them.")
