"""RelGT's local module: full self-attention among a seed's K context tokens."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["LocalTransformer", "PreNormLayer"]


class PreNormLayer(nn.Module):
    r"""A pre-norm transformer layer with a key padding mask.

    :math:`x \leftarrow x + \mathrm{Drop}(\mathrm{MHA}(\mathrm{LN}(x)))`, then
    :math:`x \leftarrow x + \mathrm{Drop}(\mathrm{FFN}(\mathrm{LN}(x)))`. Attention dropout
    applies in training only.

    Shapes
    ------
    ``forward(x (B, K, d), mask (B, K) bool, True for real tokens)`` -> ``(B, K, d)``.
    """

    def __init__(self, channels: int, heads: int, dropout: float = 0.0, attn_dropout: float = 0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be a multiple of heads ({heads}).")
        self.heads = heads
        self.attn_dropout = attn_dropout
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.o = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        self.ffn = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(2 * channels, channels))
        self.drop = nn.Dropout(dropout)

    def reset_parameters(self):
        for m in (self.norm1, self.qkv, self.o, self.norm2, self.ffn[0], self.ffn[3]):
            m.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, K, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(B, K, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :],
                                              dropout_p=self.attn_dropout if self.training else 0.0)
        x = x + self.drop(self.o(attn.transpose(1, 2).reshape(B, K, d)))
        return x + self.drop(self.ffn(self.norm2(x)))


class LocalTransformer(nn.Module):
    r"""``L`` pre-norm transformer layers over the K tokens, read out as the seed token plus an
    attention-pooled summary of the other real tokens.

    Readout: :math:`a_j = \mathrm{softmax}_j(w^\top h_j)` over the real non-seed tokens,
    :math:`\mathrm{out} = W [h_0 \Vert \sum_j a_j h_j]` (the pooled part is zero when the seed has
    no neighbours).

    Parameters
    ----------
    channels : int
    heads : int
    num_layers : int
    dropout, attn_dropout : float

    Shapes
    ------
    ``forward(x (B, K, d), mask (B, K) bool with mask[:, 0] True)`` -> ``(B, d)``.
    """

    def __init__(self, channels: int, heads: int = 4, num_layers: int = 1, dropout: float = 0.0,
                 attn_dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(PreNormLayer(channels, heads, dropout, attn_dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(channels)
        self.pool = nn.Linear(channels, 1)
        self.out = nn.Linear(2 * channels, channels)

    def reset_parameters(self):
        for layer in self.layers:
            layer.reset_parameters()
        self.norm.reset_parameters()
        self.pool.reset_parameters()
        self.out.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        x = self.norm(x)
        others = mask.clone()
        others[:, 0] = False
        # a finite fill keeps the softmax (and its gradient) finite when a seed has no neighbours
        score = self.pool(x).squeeze(-1).masked_fill(~others, torch.finfo(x.dtype).min)
        weight = torch.softmax(score, dim=1) * others
        pooled = torch.einsum("bk,bkd->bd", weight, x)
        return self.out(torch.cat([x[:, 0], pooled], dim=-1))
