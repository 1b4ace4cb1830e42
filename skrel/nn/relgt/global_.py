"""RelGT's global module: the seed attends to centroids of all seeds, kept by EMA k-means."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["GlobalCentroidAttention"]


class GlobalCentroidAttention(nn.Module):
    r"""Attention from each seed to ``B`` centroids of the (projected) seed embeddings.

    The centroids are not learned by gradient: an exponential-moving-average k-means updates them
    from each training batch (VQ-VAE's EMA codebook update). Centroids start empty and are filled
    with the first seeds seen; a centroid takes part in attention once seeds have been assigned to
    it. The attention logits carry the bias :math:`\log n_j`, where :math:`n_j` is the EMA count
    of training seeds assigned to centroid ``j`` (real assignments, never an initial guess; empty
    centroids get :math:`-\infty`), so a centroid speaks for as many seeds as it summarises.

    Two guards against codebook collapse (all seeds ending up with one or two centroids, which
    makes the module a constant): seeds are projected and layer-normed (no affine part) before
    clustering, so the centroids do not lag behind a growing embedding norm; and a centroid whose
    EMA count falls below ``dead`` is moved to the batch's seed farthest from its centroid, its
    count reset to zero until seeds are assigned to it.

    Parameters
    ----------
    channels : int
    num_centroids : int
    heads : int, default=1
    decay : float, default=0.99
        EMA decay of counts and sums.
    attn_dropout : float, default=0.0
    dead : float, default=1e-3
        EMA count under which a filled centroid is restarted.

    Shapes
    ------
    ``forward(seed (B, d))`` -> ``(B, d)``. In training mode the batch also updates the centroids
    (with its detached projections) before attending.
    """

    def __init__(self, channels: int, num_centroids: int, heads: int = 1, decay: float = 0.99,
                 attn_dropout: float = 0.0, dead: float = 1e-3):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be a multiple of heads ({heads}).")
        self.num_centroids = num_centroids
        self.heads = heads
        self.decay = decay
        self.dead = dead
        self.attn_dropout = attn_dropout
        self.proj = nn.Linear(channels, channels)
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(channels, channels)
        self.v = nn.Linear(channels, channels)
        self.o = nn.Linear(channels, channels)
        self.register_buffer("centroids", torch.zeros(num_centroids, channels))
        self.register_buffer("ema_sum", torch.zeros(num_centroids, channels))
        self.register_buffer("ema_count", torch.zeros(num_centroids))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    def reset_parameters(self):
        for m in (self.proj, self.q, self.k, self.v, self.o):
            m.reset_parameters()
        for b in (self.centroids, self.ema_sum, self.ema_count, self.filled):
            b.zero_()

    @torch.no_grad()
    def update(self, z: Tensor) -> Tensor:
        """One EMA k-means step with the batch ``z (B, d)``; returns its assignments ``(B,)``."""
        z = z.to(self.centroids.dtype)
        free = self.num_centroids - int(self.filled)
        if free > 0:
            take = min(free, len(z))
            start = int(self.filled)
            self.centroids[start:start + take] = z[:take]
            self.filled += take
        n = int(self.filled)
        dist, assign = torch.cdist(z, self.centroids[:n]).min(dim=1)
        counts = torch.bincount(assign, minlength=n).to(z.dtype)
        sums = torch.zeros(n, z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, assign, z)
        self.ema_count[:n].mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum[:n].mul_(self.decay).add_(sums, alpha=1 - self.decay)
        seen = self.ema_count[:n] > 0
        self.centroids[:n][seen] = self.ema_sum[:n][seen] / self.ema_count[:n][seen, None]
        dead = torch.nonzero(self.ema_count[:n] < self.dead).flatten()[: len(z)]
        if len(dead):
            far = dist.argsort(descending=True)[: len(dead)]
            self.centroids[dead] = z[far]
            self.ema_sum[dead] = 0
            self.ema_count[dead] = 0
        return assign

    def project(self, seed: Tensor) -> Tensor:
        """The space the centroids live in: ``(B, d) -> (B, d)``, layer-normed without affine."""
        return F.layer_norm(self.proj(seed), seed.shape[-1:])

    def forward(self, seed: Tensor) -> Tensor:
        z = self.project(seed)
        if self.training:
            self.update(z.detach())
        live = self.ema_count > 0
        if not bool(live.any()):
            return torch.zeros_like(z)
        B, d = z.shape
        h = self.heads
        cent = self.centroids[live].to(z.dtype)
        q = self.q(z).reshape(B, h, d // h).transpose(0, 1)
        k = self.k(cent).reshape(-1, h, d // h).transpose(0, 1)
        v = self.v(cent).reshape(-1, h, d // h).transpose(0, 1)
        logits = q @ k.transpose(1, 2) / math.sqrt(d // h) + torch.log(self.ema_count[live]).to(z.dtype)
        attn = F.dropout(torch.softmax(logits, dim=-1), self.attn_dropout, self.training)
        return self.o((attn @ v).transpose(0, 1).reshape(B, d))
