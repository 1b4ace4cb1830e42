"""Features over relational databases: point-in-time deep feature synthesis (:class:`DFSTransformer`)."""

from .dfs import AGG_PRIMITIVES, DFSTransformer

__all__ = ["DFSTransformer", "AGG_PRIMITIVES"]
