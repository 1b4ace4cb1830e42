"""Model selection over relational rows."""

from ._split import TemporalSplit

__all__ = ["TemporalSplit"]
