"""RelGT's fifth token element: a structural encoding of each token in its context's subgraph."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SubgraphStructureEncoder"]


class SubgraphStructureEncoder(nn.Module):
    r"""A small GIN over each context's induced subgraph, started from random node features.

    Random initial features break the symmetry between structurally equal nodes (Sato et al.,
    2021), so message passing can tell a token's position in its subgraph apart (parents,
    siblings, cycles); drawing them afresh on every training step keeps the encoding equivariant
    in expectation. Layer ``l``: :math:`h \leftarrow h + \mathrm{MLP}((1+\epsilon_l) h + \sum_{j \in N(i)} h_j)`.

    Parameters
    ----------
    channels : int
        Output width ``d``.
    noise_dim : int, default=4
        Width of the random node features.
    hidden : int, optional
        Width of the GIN (``max(channels // 4, 8)`` by default).
    num_layers : int, default=2

    Shapes
    ------
    ``forward(noise (B, K, noise_dim), edge_index (2, E) over the B * K flattened tokens,
    mask (B, K))`` -> ``(B, K, d)``; padding tokens get zeros.
    """

    def __init__(self, channels: int, noise_dim: int = 4, hidden: int | None = None, num_layers: int = 2):
        super().__init__()
        hidden = hidden or max(channels // 4, 8)
        self.noise_dim = noise_dim
        self.inp = nn.Linear(noise_dim, hidden)
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden))
            for _ in range(num_layers)
        )
        self.eps = nn.Parameter(torch.zeros(num_layers))
        self.out = nn.Linear(hidden, channels)

    def reset_parameters(self):
        self.inp.reset_parameters()
        for mlp in self.mlps:
            for layer in mlp:
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
        nn.init.zeros_(self.eps)
        self.out.reset_parameters()

    def forward(self, noise: Tensor, edge_index: Tensor, mask: Tensor) -> Tensor:
        B, K, _ = noise.shape
        keep = mask.reshape(B * K, 1).to(noise.dtype)
        h = self.inp(noise.reshape(B * K, -1)) * keep
        src, dst = edge_index[0], edge_index[1]
        for eps, mlp in zip(self.eps, self.mlps):
            agg = torch.zeros_like(h).index_add_(0, dst, h[src])
            h = h + mlp((1 + eps) * h + agg) * keep
        return (self.out(h) * keep).reshape(B, K, -1)
