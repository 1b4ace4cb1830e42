"""The Relational Graph Transformer: token elements, local and global modules, the model."""

from .batch import ContextLoader, TokenBatch, make_batch
from .global_ import GlobalCentroidAttention
from .local import LocalTransformer
from .model import ABLATABLE, RelGT
from .structure import SubgraphStructureEncoder
from .tokens import ELEMENTS, HopEncoder, RelativeTimeEncoder, TokenFeatures, TokenMixer, TypeEncoder

__all__ = [
    "RelGT",
    "ABLATABLE",
    "ELEMENTS",
    "TokenBatch",
    "make_batch",
    "ContextLoader",
    "TokenFeatures",
    "TypeEncoder",
    "HopEncoder",
    "RelativeTimeEncoder",
    "TokenMixer",
    "SubgraphStructureEncoder",
    "LocalTransformer",
    "GlobalCentroidAttention",
]
