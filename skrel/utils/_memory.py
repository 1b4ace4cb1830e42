"""Memory sizes: parsing ``"2GB"``-style budgets and the default budget."""

from __future__ import annotations

import re

import numpy as np

__all__ = ["parse_memory", "default_memory_limit", "DEFAULT_MEMORY_SHARE", "DEFAULT_MEMORY_CAP"]

#: Share of the available memory a default budget takes.
DEFAULT_MEMORY_SHARE = 0.4
#: The largest default budget.
DEFAULT_MEMORY_CAP = 2 * 2**30
_FLOOR = 256 * 2**20
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(value, name: str = "memory_limit") -> int:
    """Bytes from an int or a string such as ``"2GB"``, ``"512 MiB"``; ``name`` is the parameter
    named in the error.

    >>> parse_memory("512MiB")
    536870912
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}.")
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS or float(m.group(1)) <= 0:
        raise ValueError(f"{name} must be bytes (int) or a size such as '2GB' or '512MiB', got {value!r}.")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def default_memory_limit() -> int:
    """40% of the memory available now (psutil), between 256 MiB and 2 GiB (DuckDB spills
    beyond it; a larger budget mostly makes queries wider, not faster)."""
    import psutil

    return min(max(int(psutil.virtual_memory().available * DEFAULT_MEMORY_SHARE), _FLOOR), DEFAULT_MEMORY_CAP)
