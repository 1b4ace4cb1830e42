"""The Relational Graph Transformer (RelGT, Dwivedi et al., ICLR 2026, arXiv:2505.10960)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..heads import PredictionHead
from .batch import TokenBatch
from .global_ import GlobalCentroidAttention
from .local import LocalTransformer
from .structure import SubgraphStructureEncoder
from .tokens import ELEMENTS, HopEncoder, RelativeTimeEncoder, TokenFeatures, TokenMixer, TypeEncoder

__all__ = ["RelGT", "ABLATABLE"]

ABLATABLE = ELEMENTS + ("global",)


class RelGT(nn.Module):
    r"""RelGT: multi-element tokens, a local transformer over each seed's K tokens, global
    attention to centroids of all seeds, a feed-forward block and a task head.

    .. math::
        t_j = O\,[\mathrm{LN}(h^{feat}_j) \Vert \mathrm{LN}(h^{type}_j) \Vert \mathrm{LN}(h^{hop}_j)
              \Vert \mathrm{LN}(h^{time}_j) \Vert \mathrm{LN}(h^{pe}_j)], \quad
        h = \mathrm{FFN}([\mathrm{LN}(\mathrm{Local}(t)) \Vert \mathrm{LN}(\mathrm{Global}(t_0))]),
        \quad \hat y = \mathrm{Head}(h)

    Parameters
    ----------
    tables : list of str
        Table names; token table ``i`` is ``tables[i]``.
    col_names_dict, col_stats : dict
        Per table, the TensorFrame layout and statistics (:class:`skrel.graph.FeatureSpec`).
    task_type : {"binary", "multiclass", "regression"}
    n_classes : int, default=2
    clamp : (float, float), optional
        Regression output bounds (:class:`skrel.nn.heads.PredictionHead`).
    channels : int, default=64
    heads : int, default=4
    num_layers : int, default=1
        Local transformer layers ``L``.
    num_centroids : int, default=64
        Global centroids ``B``.
    dropout : float, default=0.1
        Feed-forward dropout.
    attn_dropout : float, default=0.1
    encoder_layers : int, default=1
        Residual blocks of each table's feature encoder.
    noise_dim : int, default=4
        Width of the random features of the structure encoder.
    time_encoding : {"sinusoidal", "linear"}, default="sinusoidal"
        How the relative time is encoded (:class:`~skrel.nn.relgt.tokens.RelativeTimeEncoder`).
    ablate : sequence of str, default=()
        Elements removed from the model: any of ``features``, ``type``, ``hop``, ``time``,
        ``structure`` (token elements) and ``global`` (the global module).
    target_loc, target_scale : float (or array for multiclass) and float, optional
        Output offset and regression scale (:class:`skrel.nn.heads.PredictionHead`; for
        regression, :func:`skrel.nn.heads.regression_target_stats` gives both with ``clamp``).

    Shapes
    ------
    ``forward(batch: TokenBatch with B seeds)`` -> raw outputs ``(B,)`` (binary, regression) or
    ``(B, n_classes)``.
    """

    def __init__(self, tables, col_names_dict: dict, col_stats: dict, task_type: str, n_classes: int = 2,
                 clamp=None, channels: int = 64, heads: int = 4, num_layers: int = 1, num_centroids: int = 64,
                 dropout: float = 0.1, attn_dropout: float = 0.1, encoder_layers: int = 1, noise_dim: int = 4,
                 time_encoding: str = "sinusoidal", ablate=(), target_loc=0.0, target_scale: float | None = None):
        super().__init__()
        ablate = tuple(ablate)
        unknown = sorted(set(ablate) - set(ABLATABLE))
        if unknown:
            raise ValueError(f"Unknown ablation(s) {unknown}; choose among {list(ABLATABLE)}.")
        self.elements = tuple(e for e in ELEMENTS if e not in ablate)
        self.use_global = "global" not in ablate
        self.tables = list(tables)
        keep = set(self.elements)
        self.features = (TokenFeatures(channels, self.tables, col_names_dict, col_stats, num_layers=encoder_layers)
                         if "features" in keep else None)
        self.types = TypeEncoder(len(self.tables), channels) if "type" in keep else None
        self.hops = HopEncoder(channels) if "hop" in keep else None
        self.times = RelativeTimeEncoder(channels, time_encoding) if "time" in keep else None
        self.structure = SubgraphStructureEncoder(channels, noise_dim=noise_dim) if "structure" in keep else None
        self.mixer = TokenMixer(channels, self.elements)
        self.local = LocalTransformer(channels, heads, num_layers, dropout, attn_dropout)
        self.local_norm = nn.LayerNorm(channels)
        width = channels
        if self.use_global:
            self.global_ = GlobalCentroidAttention(channels, num_centroids, heads=heads, attn_dropout=attn_dropout)
            self.global_norm = nn.LayerNorm(channels)
            width = 2 * channels
        self.ffn = nn.Sequential(nn.Linear(width, 2 * channels), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(2 * channels, channels), nn.GELU(), nn.Dropout(dropout))
        self.head = PredictionHead(channels, task_type, n_classes=n_classes, clamp=clamp, loc=target_loc,
                                   scale=target_scale)

    def reset_parameters(self):
        for m in (self.features, self.types, self.hops, self.times, self.structure):
            if m is not None:
                m.reset_parameters()
        self.mixer.reset_parameters()
        self.local.reset_parameters()
        self.local_norm.reset_parameters()
        if self.use_global:
            self.global_.reset_parameters()
            self.global_norm.reset_parameters()
        for m in self.ffn:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        self.head.reset_parameters()

    def tokens(self, batch: TokenBatch) -> Tensor:
        """The mixed tokens ``(B, K, d)``."""
        parts = {}
        if self.features is not None:
            parts["features"] = self.features(batch.tf_dict, batch.table, batch.row, batch.mask)
        if self.types is not None:
            parts["type"] = self.types(batch.table)
        if self.hops is not None:
            parts["hop"] = self.hops(batch.hop)
        if self.times is not None:
            parts["time"] = self.times(batch.rel_time)
        if self.structure is not None:
            parts["structure"] = self.structure(batch.noise, batch.edge_index, batch.mask)
        return self.mixer(parts)

    def embed(self, batch: TokenBatch) -> Tensor:
        """Seed representations before the head, ``(B, d)``."""
        tokens = self.tokens(batch)
        h = self.local_norm(self.local(tokens, batch.mask))
        if self.use_global:
            h = torch.cat([h, self.global_norm(self.global_(tokens[:, 0]))], dim=-1)
        return self.ffn(h)

    def forward(self, batch: TokenBatch) -> Tensor:
        return self.head(self.embed(batch))

    def loss(self, raw: Tensor, y: Tensor) -> Tensor:
        return self.head.loss(raw, y)

