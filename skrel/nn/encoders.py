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

__all__ = [
    "HeteroTableEncoder",
    "TimeEncoder",
    "relative_days",
    "resnet_forward",
    "module_key",
    "column_width",
    "table_resnet",
    "NS_PER_DAY",
]

NS_PER_DAY = 86_400 * 10**9


def module_key(*names: str) -> str:
    """An injective ``ModuleDict`` key for a table name, or for the parts of an edge type.

    Table names may clash with module attributes (``"items"``) and may hold dots, which
    ``ModuleDict`` refuses. Each part is escaped (``"_"`` -> ``"__"``, ``"."`` -> ``"_d"``) and the
    parts are joined with ``"_s"``: after escaping every ``"_"`` starts one of these two-character
    tokens, so distinct names (``"a.b"`` and ``"a_dot_b"``; ``("a__b", "c")`` and ``("a", "b__c")``)
    never share a key, hence never share parameters.

    Examples
    --------
    >>> module_key("users")
    't_users'
    >>> module_key("a.b"), module_key("a_dot_b")
    ('t_a_db', 't_a__dot__b')
    >>> module_key("orders", "f2p_user_id", "users")
    't_orders_sf2p__user__id_susers'
    """
    if not names:
        raise ValueError("module_key needs at least one name.")
    return "t_" + "_s".join(str(n).replace("_", "__").replace(".", "_d") for n in names)


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


def _fused_columns(enc, feat, W: Tensor, n: int) -> Tensor | None:
    """``sum_j W[:, j, :] @ enc(feat)[:, j, :]`` without building ``enc(feat)``, or None if unsupported.

    ``W`` is the block of a linear layer's weight reading this stype's columns: ``(O, k, C)``.
    Every pytorch-frame encoder below is affine in a parameter-free expansion of its column, so the
    product collapses to the expansion times a composed ``(dim, O)`` matrix: per row ``O * dim``
    work instead of ``O * C`` per column. Missing values follow pytorch-frame (a column whose
    embedding is NaN contributes zero).
    """
    from torch_frame.nn import EmbeddingEncoder, LinearEmbeddingEncoder, LinearEncoder, TimestampEncoder

    kind = type(enc)
    if kind is LinearEncoder and enc.na_strategy is None and enc.post_module is None:
        z = (feat - enc.mean) / enc.std
        if torch.isinf(z).any():
            return None
        valid = ~torch.isnan(z)
        z = torch.where(valid, z, torch.zeros((), dtype=z.dtype, device=z.device))
        M = torch.einsum("kc,okc->ko", enc.weight, W)
        Bv = torch.einsum("kc,okc->ko", enc.bias, W)
        return z @ M + valid.to(z.dtype) @ Bv
    if kind is TimestampEncoder and enc.post_module is None:
        feat = enc.na_forward(feat).to(torch.float32)
        feat_year = feat[..., :1] - enc.min_year.view(1, -1, 1)
        feat_rest = feat[..., 1:] / enc.max_values.view(1, 1, -1)
        x = torch.cat([enc.positional_encoding(feat_year), enc.cyclic_encoding(feat_rest)], dim=2)
        if torch.isnan(x).any() or torch.isinf(x).any():
            return None
        M = torch.einsum("jklm,ojm->jklo", enc.weight, W)
        return x.flatten(1) @ M.flatten(0, 2) + torch.einsum("jm,ojm->o", enc.bias, W)
    if kind is LinearEmbeddingEncoder and enc.na_strategy is None and enc.post_module is None:
        values = feat.values
        if torch.isnan(values).any():
            return None
        out, start = None, 0
        for j, dim in enumerate(enc.emb_dim_list):
            M = enc.weight_list[j] @ W[:, j, :].t()
            part = values[:, start:start + dim] @ M + W[:, j, :] @ enc.biases[j]
            out = part if out is None else out + part
            start += dim
        return out
    if kind is EmbeddingEncoder and enc.na_strategy is None and enc.post_module is None:
        idx = feat + enc.offset + 1
        idx = torch.where(feat < 0, torch.zeros_like(idx), idx)
        out = None
        for j in range(idx.size(1)):
            Wj = W[:, j, :]
            if enc.emb.num_embeddings <= n:
                part = (enc.emb.weight @ Wj.t()).index_select(0, idx[:, j])  # padding row 0 stays 0
            else:
                part = enc.emb(idx[:, j]) @ Wj.t()
            out = part if out is None else out + part
        return out
    return None


def resnet_forward(model, tf) -> Tensor:
    """Exactly ``model(tf)`` for a pytorch-frame ``ResNet``, with its first block's two input
    projections (``lin1`` and ``shortcut`` over the flattened column embeddings, 2/3 of the work)
    fused into the column encoders (see :func:`_fused_columns`). Falls back per stype to
    pytorch-frame's encoder where no fused form is known."""
    block = model.backbone[0]
    if block.shortcut is None:
        return model(tf)
    n = tf.num_rows
    C = block.lin1.out_features
    W = torch.cat([block.lin1.weight, block.shortcut.weight], dim=0)  # (2C, num_cols * width)
    num_cols = sum(len(v) for v in model.encoder.col_names_dict.values())
    W = W.view(2 * C, num_cols, W.size(1) // num_cols)
    out = torch.cat([block.lin1.bias, block.shortcut.bias]).expand(n, 2 * C)
    col = 0
    for stype in tf.stypes:
        enc = model.encoder.encoder_dict[stype.value]
        names = model.encoder.col_names_dict[stype]
        Wk = W[:, col:col + len(names), :]
        part = _fused_columns(enc, tf.feat_dict[stype], Wk, n)
        if part is None:
            part = torch.einsum("nkc,okc->no", enc(tf.feat_dict[stype], names), Wk)
        out = out + part
        col += len(names)
    h, x = out[:, :C], out[:, C:]
    h = block.norm1(h) if block.norm1 is not None else h
    h = block.dropout(block.relu(h))
    h = block.lin2(h)
    h = block.norm2(h) if block.norm2 is not None else h
    h = block.dropout(block.relu(h)) + x
    for later in model.backbone[1:]:
        h = later(h)
    return model.decoder(h)


def column_width(channels: int, num_cols: int, column_budget: int | None = 16) -> int:
    """Width of each column's embedding in a table of ``num_cols`` feature columns.

    ``channels`` up to ``column_budget`` columns (pytorch-frame's ResNet); wider tables get
    narrower column embeddings (at least 8) so that the flattened row stays within
    ``column_budget * channels``: the first residual block's two input projections, ``2 *
    num_cols * width * channels`` parameters, would otherwise grow with every column (2.0M of a
    60-column table's 2.2M parameters at 128 channels).
    """
    if column_budget is None or num_cols <= column_budget:
        return int(channels)
    return max(min(8, int(channels)), (column_budget * int(channels)) // num_cols)


def table_resnet(channels: int, col_names: dict, col_stats: dict, num_layers: int = 4, dropout: float = 0.2,
                 column_budget: int | None = 16):
    """A pytorch-frame ``ResNet`` for one table, with column embeddings of :func:`column_width`.

    Within the budget it is exactly ``torch_frame.nn.models.ResNet(channels, channels, ...)``;
    beyond it the column encoder and the first residual block read ``width``-wide column
    embeddings and the rest of the network keeps ``channels``.
    """
    from torch_frame.nn import StypeWiseFeatureEncoder
    from torch_frame.nn.models import ResNet
    from torch_frame.nn.models.resnet import FCResidualBlock

    def stype_encoders():
        return {st: enc for st, enc in _default_stype_encoders().items() if st in col_names}

    model = ResNet(channels=channels, out_channels=channels, num_layers=num_layers, col_stats=col_stats,
                   col_names_dict=col_names, stype_encoder_dict=stype_encoders(), dropout_prob=dropout)
    num_cols = sum(len(v) for v in col_names.values())
    width = column_width(channels, num_cols, column_budget)
    if width != channels:
        model.encoder = StypeWiseFeatureEncoder(out_channels=width, col_stats=col_stats, col_names_dict=col_names,
                                                stype_encoder_dict=stype_encoders())
        model.backbone[0] = FCResidualBlock(num_cols * width, channels, normalization="layer_norm",
                                            dropout_prob=dropout)
        model.reset_parameters()
    return model


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
    fused : bool, default=True
        Compute each ResNet with :func:`resnet_forward` (same function, same parameters, about
        half the work); False calls pytorch-frame's forward.
    column_budget : int or None, default=16
        Tables with more feature columns get narrower column embeddings (:func:`column_width`),
        so that an encoder's size stops growing with ``columns x channels^2``; None: always
        ``channels`` wide (pytorch-frame's ResNet).

    Shapes
    ------
    ``forward({table: TensorFrame with n_t rows})`` -> ``{table: (n_t, channels)}``;
    ``encode(table, tf)`` -> ``(n, channels)``.
    """

    def __init__(self, channels: int, col_names_dict: dict, col_stats: dict, num_layers: int = 4,
                 dropout: float = 0.2, fused: bool = True, column_budget: int | None = 16):
        super().__init__()
        self.channels = int(channels)
        self.fused = bool(fused)
        self.encoders = nn.ModuleDict()
        for table, names in col_names_dict.items():
            self.encoders[module_key(table)] = table_resnet(channels, names, col_stats[table], num_layers, dropout,
                                                            column_budget)

    def reset_parameters(self):
        for enc in self.encoders.values():
            enc.reset_parameters()

    def encode(self, table: str, tf) -> Tensor:
        if tf.num_rows == 0:
            return torch.zeros(0, self.channels, device=next(self.parameters()).device)
        model = self.encoders[module_key(table)]
        return resnet_forward(model, tf) if self.fused else model(tf)

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

        self.node_types = list(node_types)
        self.pe = nn.ModuleDict({module_key(t): PositionalEncoding(channels) for t in self.node_types})
        self.lin = nn.ModuleDict({module_key(t): nn.Linear(channels, channels) for t in self.node_types})

    def reset_parameters(self):
        for m in self.pe.values():
            m.reset_parameters()
        for m in self.lin.values():
            m.reset_parameters()

    def forward(self, node_type: str, rel_days: Tensor) -> Tensor:
        key = module_key(node_type)
        return self.lin[key](self.pe[key](rel_days))
