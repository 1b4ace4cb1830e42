"""Paths and URLs."""

from __future__ import annotations

import re

__all__ = ["is_url"]


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL with a scheme (``s3://``, ``memory://``, ...), not a local path.

    >>> is_url("s3://bucket/x.parquet"), is_url("/data/x.parquet")
    (True, False)
    """
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", str(path)) is not None
