"""Paths and URLs."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["is_url", "check_directory"]


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL with a scheme (``s3://``, ``memory://``, ...), not a local path.

    >>> is_url("s3://bucket/x.parquet"), is_url("/data/x.parquet")
    (True, False)
    """
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", str(path)) is not None


def check_directory(path) -> None:
    """Raise FileNotFoundError, naming it, when the directory ``path`` would be written in is missing.

    skrel never creates directories for the files it writes: a mistyped path is an error, not a new
    directory.
    """
    parent = Path(path).parent
    if not parent.is_dir():
        raise FileNotFoundError(f"Cannot write {str(path)!r}: directory {str(parent)!r} does not exist. Create it "
                                "first (skrel does not create directories).")
