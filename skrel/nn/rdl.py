"""RelBench's relational deep learning model: table encoders + time encoding + hetero GraphSAGE + head.

Fey et al., "Relational Deep Learning: Graph Representation Learning on Relational Databases"
(ICML 2024), the recipe of RelBench's ``examples/gnn_entity.py``: each sampled node is encoded by
its table's ResNet, plus an encoding of its age relative to the seed's cutoff (timed tables);
then ``num_layers`` heterogeneous GraphSAGE layers; the seeds' vectors go to a linear head.

Each distinct node of a batch is encoded once and gathered to its positions (the encoder is a
function of the row alone; with dropout in training a row shares one mask within a batch).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .encoders import HeteroTableEncoder, TimeEncoder
from .heads import PredictionHead
from .sage import HeteroSAGE

__all__ = ["RDLModel"]


class RDLModel(nn.Module):
    """The RDL model over :class:`skrel.graph.loader.GraphBatch` batches.

    Parameters
    ----------
    col_names_dict, col_stats : dict
        Per table TensorFrame layout and statistics (from :class:`skrel.graph.FeatureSpec`).
    node_types : list of str
    edge_types : list of (src, rel, dst)
    timed_types : list of str
        Node types with times (they get a time encoding).
    channels : int, default=128
    num_layers : int, default=2
        GraphSAGE layers (use as many sampling hops).
    aggr : {"sum", "mean", "max"}, default="sum"
    encoder_layers : int, default=4
        Residual blocks of each table's ResNet.
    encoder_dropout : float, default=0.2
    task_type : {"binary", "regression", "multiclass"}, default="binary"
    n_classes : int, default=2
    clamp : tuple of float, optional
        Regression output bounds.
    target_loc, target_scale : float (or array for multiclass) and float, default=0.0 and None
        Output offset and regression scale (see :class:`~skrel.nn.heads.PredictionHead`; for
        regression, :func:`skrel.nn.heads.regression_target_stats` gives both with ``clamp``).

    Shapes
    ------
    ``embed(batch)`` -> ``(B, channels)`` seed embeddings; ``forward(batch)`` -> head outputs
    ``(B,)`` or ``(B, n_classes)``.
    """

    def __init__(self, col_names_dict: dict, col_stats: dict, node_types, edge_types, timed_types, *,
                 channels: int = 128, num_layers: int = 2, aggr: str = "sum", encoder_layers: int = 4,
                 encoder_dropout: float = 0.2, task_type: str = "binary", n_classes: int = 2,
                 clamp: tuple | None = None, target_loc=0.0, target_scale: float | None = None):
        super().__init__()
        self.channels = channels
        self.encoder = HeteroTableEncoder(channels, col_names_dict, col_stats, encoder_layers, encoder_dropout)
        self.time_encoder = TimeEncoder(list(timed_types), channels)
        self._timed = set(timed_types)
        self.gnn = HeteroSAGE(node_types, edge_types, channels, num_layers, aggr)
        self.head = PredictionHead(channels, task_type, n_classes, clamp, target_loc, target_scale)

    def reset_parameters(self):
        self.encoder.reset_parameters()
        self.time_encoder.reset_parameters()
        self.gnn.reset_parameters()
        self.head.reset_parameters()

    def node_features(self, batch) -> dict:
        """Initial vectors of every sampled node: ``{t: (N_t, channels)}``."""
        x = {}
        for t, inv in batch.inverse.items():
            if inv.numel() == 0:
                continue
            h = self.encoder.encode(t, batch.tf[t]).index_select(0, inv)
            if t in batch.rel_days and t in self._timed:
                # Seeds share cutoffs and nodes: few distinct ages, each encoded once.
                ages, where = torch.unique(batch.rel_days[t], return_inverse=True)
                h = h + self.time_encoder(t, ages).index_select(0, where)
            x[t] = h
        return x

    def embed(self, batch) -> Tensor:
        x = self.node_features(batch)
        out = self.gnn(x, batch.edge_index, batch.num_sampled_nodes, batch.num_sampled_edges)
        return out[batch.seed_type][: batch.num_seeds]

    def forward(self, batch) -> Tensor:
        return self.head(self.embed(batch))

    def loss(self, raw: Tensor, y: Tensor) -> Tensor:
        return self.head.loss(raw, y)
