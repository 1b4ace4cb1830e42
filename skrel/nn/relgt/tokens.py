"""RelGT's multi-element tokens: features, table type, hop, relative time (and structure, in
:mod:`.structure`), each encoded by its own small module and mixed by a learned projection.

Shapes use ``B`` seeds, ``K`` tokens per seed and ``d = channels``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..encoders import HeteroTableEncoder, TimeEncoder

__all__ = ["TokenFeatures", "TypeEncoder", "HopEncoder", "RelativeTimeEncoder", "TokenMixer", "ELEMENTS"]

ELEMENTS = ("features", "type", "hop", "time", "structure")


class TokenFeatures(nn.Module):
    r"""Element 1: each token's row encoded by its table's pytorch-frame encoder.

    The per-table encoders are :class:`skrel.nn.encoders.HeteroTableEncoder` (the ones RDL uses).
    Each distinct row of a batch is encoded once.

    Parameters
    ----------
    channels : int
    tables : list of str
        Table names; token table ``i`` is ``tables[i]``.
    col_names_dict, col_stats : dict
        Per table, the TensorFrame layout and statistics (:class:`skrel.graph.FeatureSpec`).
    num_layers : int, default=2
        Residual blocks per table encoder.
    dropout : float, default=0.0

    Shapes
    ------
    ``forward(tf_dict, table (B, K) long, row (B, K) long, mask (B, K) bool)`` -> ``(B, K, d)``;
    padding tokens get zeros.
    """

    def __init__(self, channels: int, tables, col_names_dict: dict, col_stats: dict, num_layers: int = 2,
                 dropout: float = 0.0):
        super().__init__()
        self.channels = channels
        self.tables = list(tables)
        self.encoder = HeteroTableEncoder(channels, {t: col_names_dict[t] for t in self.tables},
                                          {t: col_stats[t] for t in self.tables}, num_layers=num_layers,
                                          dropout=dropout)

    def reset_parameters(self):
        self.encoder.reset_parameters()

    def forward(self, tf_dict: dict, table: Tensor, row: Tensor, mask: Tensor) -> Tensor:
        out = torch.zeros(*table.shape, self.channels, device=table.device)
        for i, name in enumerate(self.tables):
            sel = (table == i) & mask
            if not bool(sel.any()):
                continue
            rows, inverse = torch.unique(row[sel], return_inverse=True)
            enc = self.encoder.encode(name, tf_dict[name][rows])
            out[sel] = enc[inverse].to(out.dtype)
        return out


class TypeEncoder(nn.Module):
    r"""Element 2: the token's table, one embedding per table (plus one for padding).

    Shapes
    ------
    ``forward(table (B, K) long, -1 for padding)`` -> ``(B, K, d)``.
    """

    def __init__(self, num_tables: int, channels: int):
        super().__init__()
        self.num_tables = num_tables
        self.emb = nn.Embedding(num_tables + 1, channels)

    def reset_parameters(self):
        self.emb.reset_parameters()

    def forward(self, table: Tensor) -> Tensor:
        return self.emb(torch.where(table < 0, self.num_tables, table))


class HopEncoder(nn.Module):
    r"""Element 3: the token's hop from the seed (0, 1, 2; -1 for padding), one embedding each.

    Shapes
    ------
    ``forward(hop (B, K) long)`` -> ``(B, K, d)``.
    """

    def __init__(self, channels: int, max_hop: int = 2):
        super().__init__()
        self.max_hop = max_hop
        self.emb = nn.Embedding(max_hop + 2, channels)

    def reset_parameters(self):
        self.emb.reset_parameters()

    def forward(self, hop: Tensor) -> Tensor:
        return self.emb(torch.where(hop < 0, self.max_hop + 1, hop))


class RelativeTimeEncoder(nn.Module):
    r"""Element 4: the token's time relative to the seed's cutoff.

    ``encoding="linear"`` (the paper) maps the age ``cutoff - time``, in years, linearly to
    ``d`` dimensions; ``"sinusoidal"`` passes the age in days through
    :class:`skrel.nn.encoders.TimeEncoder` (sinusoidal encoding and a linear layer, as RDL
    encodes node times). Tokens without a time (rows of tables without a time column, padding)
    get a learned vector instead.

    Shapes
    ------
    ``forward(rel_days (B, K) float, NaN where there is no time)`` -> ``(B, K, d)``.
    """

    def __init__(self, channels: int, encoding: str = "sinusoidal"):
        super().__init__()
        if encoding not in ("linear", "sinusoidal"):
            raise ValueError(f"encoding must be 'linear' or 'sinusoidal', got {encoding!r}.")
        self.encoding = encoding
        self.time = nn.Linear(1, channels) if encoding == "linear" else TimeEncoder(["token"], channels)
        self.no_time = nn.Parameter(torch.empty(channels))
        self.reset_parameters()

    def reset_parameters(self):
        self.time.reset_parameters()
        nn.init.normal_(self.no_time, std=0.02)

    def forward(self, rel_days: Tensor) -> Tensor:
        missing = torch.isnan(rel_days)
        age = torch.where(missing, torch.zeros_like(rel_days), -rel_days)
        if self.encoding == "linear":
            out = self.time((age / 365.25).unsqueeze(-1))
        else:
            out = self.time("token", age.reshape(-1)).reshape(*rel_days.shape, -1)
        return torch.where(missing.unsqueeze(-1), self.no_time.to(out.dtype), out)


class TokenMixer(nn.Module):
    r"""The learned projection ``O`` that mixes the token elements: each element is layer-normed,
    the kept ones are concatenated and projected, ``(n_kept * d) -> d``.

    Parameters
    ----------
    channels : int
    elements : sequence of str
        The kept elements, in order (a subset of :data:`ELEMENTS`).

    Shapes
    ------
    ``forward({element: (B, K, d)})`` -> ``(B, K, d)``.
    """

    def __init__(self, channels: int, elements):
        super().__init__()
        self.elements = tuple(elements)
        if not self.elements:
            raise ValueError("A token needs at least one element; every element was ablated.")
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in self.elements)
        self.proj = nn.Linear(len(self.elements) * channels, channels)

    def reset_parameters(self):
        for n in self.norms:
            n.reset_parameters()
        self.proj.reset_parameters()

    def forward(self, parts: dict) -> Tensor:
        return self.proj(torch.cat([norm(parts[e]) for e, norm in zip(self.elements, self.norms)], dim=-1))
