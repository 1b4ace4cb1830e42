"""Batches of RelGT contexts as tensors, and a loader over sampled contexts."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from ...graph.context import Contexts, hash_uniform

__all__ = ["TokenBatch", "make_batch", "ContextLoader", "eval_noise"]

_BUCKET_BATCHES = 16


@dataclass
class TokenBatch:
    """``B`` contexts of ``K`` tokens as tensors (what :class:`~skrel.nn.relgt.RelGT` reads).

    Attributes
    ----------
    table, row, hop : LongTensor (B, K)
        Table index, row within the table, hop; -1 for padding (row 0).
    rel_time : FloatTensor (B, K)
        Token time minus cutoff in days; NaN where there is no time.
    mask : BoolTensor (B, K)
    edge_index : LongTensor (2, E)
        Induced edges over the ``B * K`` flattened tokens (token ``j`` of seed ``b`` is ``b * K + j``).
    noise : FloatTensor (B, K, noise_dim)
        Random features of the structure encoder.
    tf_dict : dict of str to TensorFrame
        Every table's rows (indexed by ``row``), on the batch's device.
    y : Tensor (B,), optional
    """

    table: Tensor
    row: Tensor
    hop: Tensor
    rel_time: Tensor
    mask: Tensor
    edge_index: Tensor
    noise: Tensor
    tf_dict: dict
    y: Tensor | None = None

    def to(self, device) -> "TokenBatch":
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), Tensor)}
        return replace(self, **moved)

    def __len__(self) -> int:
        return self.table.shape[0]


def eval_noise(ctx: Contexts, noise_dim: int, seed: int) -> np.ndarray:
    """Standard normal noise ``(n, K, noise_dim)`` hashed from each context's key and positions:
    the same for a row whatever else is predicted with it."""
    n, K = ctx.node.shape
    pos = np.arange(K * noise_dim, dtype=np.int64).reshape(1, K, noise_dim)
    key = ctx.key.reshape(-1, 1, 1)
    u1 = hash_uniform(np.int64(seed), key, np.int64(1), pos)
    u2 = hash_uniform(np.int64(seed), key, np.int64(2), pos)
    return (np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)).astype(np.float32)


def make_batch(ctx: Contexts, offsets: np.ndarray, tf_dict: dict, noise: Tensor, y=None) -> TokenBatch:
    """A :class:`TokenBatch` of all contexts of ``ctx`` (``offsets``: the graph's table offsets)."""
    n, K = ctx.node.shape
    row = np.where(ctx.mask, ctx.node - offsets[np.maximum(ctx.table, 0)], 0)
    seed_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(ctx.edge_ptr))
    edge_index = np.stack([seed_of * K + ctx.edge_src, seed_of * K + ctx.edge_dst])
    return TokenBatch(
        table=torch.from_numpy(ctx.table.astype(np.int64)), row=torch.from_numpy(row),
        hop=torch.from_numpy(ctx.hop.astype(np.int64)),
        rel_time=torch.from_numpy(ctx.rel_time), mask=torch.from_numpy(ctx.mask),
        edge_index=torch.from_numpy(edge_index), noise=noise, tf_dict=tf_dict,
        y=None if y is None else torch.as_tensor(y),
    )


class ContextLoader:
    """Batches over sampled contexts, for the torch base's training loop (:mod:`skrel.estimators._torch`).

    Batches group rows of similar context size (padding costs attention time quadratically, and
    columns that are padding in a whole batch are dropped). Training loaders (``shuffle=True``)
    visit the rows in a fresh order every epoch, bucketing by size within chunks and shuffling
    the batches, and draw fresh structure noise every batch, all from ``seed`` and the epoch
    (``set_epoch``). Evaluation loaders visit the rows in :meth:`order` (by size) and use
    :func:`eval_noise`, so a row's output does not depend on the batch it is in.

    Parameters
    ----------
    ctx : Contexts
    offsets : ndarray
        The graph's table offsets.
    tf_dict : dict of str to TensorFrame
    y : ndarray of shape (n,), optional
    batch_size : int
    noise_dim : int
    shuffle : bool
    seed : int
    resample : callable, optional
        ``resample(epoch) -> Contexts``: new contexts for an epoch (training only).
    """

    def __init__(self, ctx: Contexts, offsets, tf_dict, y=None, *, batch_size: int = 64, noise_dim: int = 4,
                 shuffle: bool = False, seed: int = 0, resample=None):
        self.ctx = ctx
        self.offsets = offsets
        self.tf_dict = tf_dict
        self.y = None if y is None else np.asarray(y)
        self.batch_size = batch_size
        self.noise_dim = noise_dim
        self.shuffle = shuffle
        self.seed = seed
        self.resample = resample
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        if self.resample is not None and epoch != self.epoch:
            self.ctx = self.resample(epoch)
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.ctx) // self.batch_size)

    def order(self) -> np.ndarray:
        """The row order of an evaluation pass (rows sorted by context size)."""
        return np.argsort(self.ctx.mask.sum(1), kind="stable")

    def _batches(self) -> list:
        n = len(self.ctx)
        if not self.shuffle:
            order = self.order()
            return [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        # length bucketing: rows of similar context size share a batch (padding costs attention
        # time quadratically); the buckets and the batch order are shuffled per epoch
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n)
        length = self.ctx.mask.sum(1)
        span = self.batch_size * _BUCKET_BATCHES
        batches = []
        for start in range(0, n, span):
            chunk = order[start:start + span]
            chunk = chunk[np.argsort(length[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self):
        if self.shuffle:
            seed = np.random.default_rng([self.seed, self.epoch, 1]).integers(2**62)
            gen = torch.Generator().manual_seed(int(seed))
        for idx in self._batches():
            part = self.ctx.take(idx).trimmed()  # padding is inert: drop columns that are padding only
            if self.shuffle:
                noise = torch.randn(len(idx), part.num_tokens, self.noise_dim, generator=gen)
            else:
                noise = torch.from_numpy(eval_noise(part, self.noise_dim, self.seed))
            yield make_batch(part, self.offsets, self.tf_dict, noise, None if self.y is None else self.y[idx])
