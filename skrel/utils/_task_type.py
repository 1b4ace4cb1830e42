"""The one rule that says what kind of task a target is."""

from __future__ import annotations

import numpy as np

__all__ = ["infer_task_type", "is_zero_one", "TASK_TYPES"]

TASK_TYPES = ("binary", "multiclass", "regression")


def infer_task_type(y) -> str:
    """``"binary"``, ``"multiclass"`` or ``"regression"`` for a target ``y``.

    A floating-point target is a regression (a position 1.0 ... 20.0 is a number, not twenty
    classes); otherwise scikit-learn's ``type_of_target`` decides: two values are binary, more
    are multiclass, and a continuous target is a regression. Anything else (several outputs, a
    single value of an unknown kind) is a ``ValueError`` asking for the task type.

    >>> infer_task_type([0, 1, 1]), infer_task_type(["a", "b", "c"]), infer_task_type([1.0, 2.0])
    ('binary', 'multiclass', 'regression')
    """
    from sklearn.utils.multiclass import type_of_target

    y = np.asarray(y)
    if y.dtype.kind == "f":
        return "regression"
    kind = type_of_target(y)
    if kind in ("binary", "multiclass"):
        return kind
    if kind == "continuous":
        return "regression"
    raise ValueError(f"Cannot infer a task type from y of type {kind!r}; set task_type explicitly.")


def is_zero_one(y: np.ndarray) -> bool:
    """Whether binary labels are 0/1 numbers or booleans; other values are kept as they are."""
    y = np.asarray(y)
    if y.dtype.kind == "b":
        return True
    if y.dtype.kind in "iuf":
        return bool(np.isin(y, (0, 1)).all())
    if y.dtype == object and len(y):
        return all(isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating)) and v in (0, 1) for v in y)
    return False
