"""Cross-validation over cutoff times."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator

from ..data import RelationalDataset

__all__ = ["TemporalSplit"]


class TemporalSplit(BaseCrossValidator):
    """Expanding-window splits over the cutoff times of a :class:`RelationalDataset`.

    The distinct cutoffs are cut into ``n_splits + 1`` consecutive blocks. Fold ``k`` validates
    on block ``k + 1`` and trains on every row whose cutoff is at least ``gap`` before the
    earliest validation cutoff, so a training label window ``(t, t + gap]`` never overlaps the
    validation rows' history.

    Parameters
    ----------
    n_splits : int, default=3
    gap : str or pandas.Timedelta
        The label window length (``task.window``).

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score  # doctest: +SKIP
    >>> cross_val_score(est, X, y, cv=TemporalSplit(3, gap=task.window))  # doctest: +SKIP
    """

    def __init__(self, n_splits=3, gap=None):
        self.n_splits = n_splits
        self.gap = gap

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits

    def split(self, X, y=None, groups=None):
        if not isinstance(X, RelationalDataset):
            raise TypeError(f"TemporalSplit splits a skrel RelationalDataset, got {type(X).__name__}.")
        if self.gap is None:
            raise ValueError("TemporalSplit needs gap=, the label window (for example task.window).")
        if int(self.n_splits) < 1:
            raise ValueError(f"n_splits must be at least 1, got {self.n_splits}.")
        gap = pd.Timedelta(self.gap).to_timedelta64()
        times = X.cutoffs
        unique = np.unique(times)
        if len(unique) < self.n_splits + 1:
            raise ValueError(
                f"TemporalSplit(n_splits={self.n_splits}) needs at least {self.n_splits + 1} distinct cutoffs, "
                f"X has {len(unique)}."
            )
        blocks = np.array_split(unique, self.n_splits + 1)
        for k in range(self.n_splits):
            val_block = blocks[k + 1]
            first_val = val_block[0]
            val = np.flatnonzero((times >= val_block[0]) & (times <= val_block[-1]))
            train = np.flatnonzero(times <= first_val - gap)
            if not len(train):
                raise ValueError(
                    f"TemporalSplit fold {k}: no training cutoff is at least {pd.Timedelta(gap)} before "
                    f"{pd.Timestamp(first_val)}; use fewer splits or a smaller gap."
                )
            yield train, val

    def _iter_test_indices(self, X=None, y=None, groups=None):  # pragma: no cover - split is overridden
        for _, val in self.split(X, y, groups):
            yield val
