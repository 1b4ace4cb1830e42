"""Seeds from scikit-learn's ``random_state`` parameters."""

from __future__ import annotations

import numpy as np

__all__ = ["seed_from"]


def seed_from(random_state) -> int:
    """An integer seed from a ``random_state`` parameter (int, RandomState or None).

    >>> seed_from(7)
    7
    """
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    from sklearn.utils import check_random_state  # scikit-learn's import is heavy: import skrel stays light

    return int(check_random_state(random_state).randint(2**31 - 1))
