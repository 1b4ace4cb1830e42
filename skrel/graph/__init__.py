"""Databases as heterogeneous temporal graphs: the builder, the temporal sampler, text embedders."""

from .hetero import NEVER, FeatureSpec, RelationalGraph, build_graph, feature_spec, materialize, to_hetero_data
from .text import CallableTextEmbedder, HashingTextEmbedder

__all__ = [
    "NEVER",
    "RelationalGraph",
    "FeatureSpec",
    "build_graph",
    "feature_spec",
    "materialize",
    "to_hetero_data",
    "HashingTextEmbedder",
    "CallableTextEmbedder",
]
