"""Torch modules shared by the graph families (import torch lazily: ``import skrel`` stays light).

- :mod:`skrel.nn.encoders`: per-table pytorch-frame encoders, the relative-time encoder;
- :mod:`skrel.nn.sage`: heterogeneous GraphSAGE in pure torch;
- :mod:`skrel.nn.heads`: prediction heads with their losses;
- :mod:`skrel.nn.rdl`: RelBench's RDL model; :mod:`skrel.nn.relgt`: the Relational Graph Transformer.
"""

from ..utils import import_optional

import_optional("torch", "skrel.nn (the graph families' torch modules)")
