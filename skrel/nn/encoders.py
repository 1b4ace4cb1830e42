"""Node encoders shared by the graph families: per-table tabular encoders and a relative-time encoder.

- :class:`HeteroTableEncoder`: one pytorch-frame ``ResNet`` per table, mapping a
  ``TensorFrame`` of that table's rows to ``(n, channels)`` (RelBench's ``HeteroEncoder``).
- :class:`TimeEncoder`: per timed table, a sinusoidal encoding of ``seed time - node time`` in
  days followed by a linear layer (RelBench's ``HeteroTemporalEncoder``).
- :func:`relative_days`: that time difference from int64 ns times.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["HeteroTableEncoder", "TimeEncoder", "relative_days", "NS_PER_DAY"]

NS_PER_DAY = 86_400 * 10**9


def relative_days(seed_time: Tensor, node_time: Tensor) -> Tensor:
    """``(seed_time - node_time)`` in days, float32.

    Shapes: ``seed_time`` and ``node_time`` int64 ns of the same shape ``(n,)`` -> ``(n,)``.
    """
    return ((seed_time - node_time).to(torch.float64) / NS_PER_DAY).to(torch.float32)


def _default_stype_encoders():
    import torch_frame
    from torch_frame.nn import (
        EmbeddingEncoder,
        LinearEmbeddingEncoder,
        LinearEncoder,
        MultiCategoricalEmbeddingEncoder,
        TimestampEncoder,
    )

    return {
        torch_frame.categorical: EmbeddingEncoder(),
        torch_frame.numerical: LinearEncoder(),
        torch_frame.multicategorical: MultiCategoricalEmbeddingEncoder(),
        torch_frame.embedding: LinearEmbeddingEncoder(),
        torch_frame.timestamp: TimestampEncoder(),
    }


class HeteroTableEncoder(nn.Module):
    r"""One pytorch-frame ResNet per table: a table's rows to ``channels``-dimensional vectors.

    Parameters
    ----------
    channels : int
        Output (and hidden) width.
    col_names_dict : dict of str to dict
        Per table, the TensorFrame column layout ``{stype: [column, ...]}``
        (:attr:`skrel.graph.FeatureSpec.col_names_dict`).
    col_stats : dict of str to dict
        Per table, torch_frame column statistics (:attr:`skrel.graph.FeatureSpec.col_stats`).
    num_layers : int, default=4
        Residual blocks per ResNet.
    dropout : float, default=0.2
        Dropout of the residual blocks (pytorch-frame's default).

    Shapes
    ------
    ``forward({table: TensorFrame with n_t rows})`` -> ``{table: (n_t, channels)}``;
    ``encode(table, tf)`` -> ``(n, channels)``.
    """

    def __init__(self, channels: int, col_names_dict: dict, col_stats: dict, num_layers: int = 4,
                 dropout: float = 0.2):
        super().__init__()
        from torch_frame.nn.models import ResNet

        self.channels = int(channels)
        self.encoders = nn.ModuleDict()
        for table, names in col_names_dict.items():
            stype_encoders = {st: enc for st, enc in _default_stype_encoders().items() if st in names}
            self.encoders[table] = ResNet(
                channels=channels,
                out_channels=channels,
                num_layers=num_layers,
                col_stats=col_stats[table],
                col_names_dict=names,
                stype_encoder_dict=stype_encoders,
                dropout_prob=dropout,
            )

    def reset_parameters(self):
        for enc in self.encoders.values():
            enc.reset_parameters()

    def encode(self, table: str, tf) -> Tensor:
        if tf.num_rows == 0:
            return torch.zeros(0, self.channels, device=next(self.parameters()).device)
        return self.encoders[table](tf)

    def forward(self, tf_dict: dict) -> dict:
        return {t: self.encode(t, tf) for t, tf in tf_dict.items()}


class TimeEncoder(nn.Module):
    r"""Per node type, ``Linear(PositionalEncoding(rel_days))`` (RelBench's temporal encoder).

    Parameters
    ----------
    node_types : list of str
        The timed node types.
    channels : int
        Output width (even).

    Shapes
    ------
    ``forward(node_type, rel_days (n,))`` -> ``(n, channels)``.
    """

    def __init__(self, node_types, channels: int):
        super().__init__()
        from torch_geometric.nn import PositionalEncoding

        self.pe = nn.ModuleDict({t: PositionalEncoding(channels) for t in node_types})
        self.lin = nn.ModuleDict({t: nn.Linear(channels, channels) for t in node_types})

    def reset_parameters(self):
        for m in self.pe.values():
            m.reset_parameters()
        for m in self.lin.values():
            m.reset_parameters()

    def forward(self, node_type: str, rel_days: Tensor) -> Tensor:
        return self.lin[node_type](self.pe[node_type](rel_days))
