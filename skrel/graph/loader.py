"""Mini-batches of sampled subgraphs as torch tensors, for training and inference.

:class:`SeedLoader` cuts seeds ``(node, cutoff)`` into batches, samples each batch with a
:class:`~skrel.graph.sampler.TemporalSampler` and returns :class:`GraphBatch` objects: the
sampled nodes with the feature rows they need (each distinct node of a batch encoded once, then
gathered), relative times, hop-ordered edges and targets.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from .hetero import RelationalGraph, _mix64
from .sampler import SampledSubgraph, TemporalSampler, _str_key

__all__ = ["GraphBatch", "SeedLoader", "make_batch"]

_NS_PER_DAY = 86_400 * 10**9


@dataclass
class GraphBatch:
    """A batch of seeds with their sampled subgraphs (torch tensors).

    Attributes
    ----------
    seed_type : str
    seed_time : LongTensor (B,)
        Seed cutoffs, ns.
    node : dict of str to LongTensor (N_t,)
        Graph node index of each sampled node; hop-ordered, seeds first.
    batch : dict of str to LongTensor (N_t,)
        Seed position of each sampled node.
    tf : dict of str to TensorFrame
        Feature rows of the *distinct* sampled nodes of each type (``U_t`` rows).
    inverse : dict of str to LongTensor (N_t,)
        Row of ``tf[t]`` holding each sampled node's features: node features are
        ``encoder(tf[t])[inverse[t]]``.
    rel_days : dict of str to FloatTensor (N_t,)
        ``seed time - node time`` in days, for timed types only.
    edge_index : dict of edge type to LongTensor (2, E)
        Local indices (row 0 into the src type's nodes, row 1 into the dst type's), hop-ordered.
    num_sampled_nodes : dict of str to list of int
    num_sampled_edges : dict of edge type to list of int
    y : Tensor (B,) or None
    """

    seed_type: str
    seed_time: torch.Tensor
    node: dict
    batch: dict
    tf: dict
    inverse: dict
    rel_days: dict
    edge_index: dict
    num_sampled_nodes: dict
    num_sampled_edges: dict
    y: torch.Tensor | None = None

    @property
    def num_seeds(self) -> int:
        return int(self.seed_time.shape[0])

    def to(self, device) -> "GraphBatch":
        device = torch.device(device)
        if all(v.device == device for v in self.node.values()):
            return self

        def move(v):
            if isinstance(v, dict):
                return {k: move(x) for k, x in v.items()}
            if v is None or isinstance(v, (str, list)):
                return v
            return v.to(device)

        return GraphBatch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})


def make_batch(sub: SampledSubgraph, tf_dict: dict, y=None) -> GraphBatch:
    """Turn a :class:`SampledSubgraph` into a :class:`GraphBatch` over the tensor frames ``tf_dict``."""
    tf, inverse, rel_days = {}, {}, {}
    for t, nodes in sub.node.items():
        uniq, inv = np.unique(nodes, return_inverse=True)
        tf[t] = tf_dict[t][torch.from_numpy(uniq)]
        inverse[t] = torch.from_numpy(inv.astype(np.int64))
        if sub.time[t] is not None:
            delta = sub.seed_time[sub.batch[t]] - sub.time[t]
            rel_days[t] = torch.from_numpy((delta / _NS_PER_DAY).astype(np.float32))
    return GraphBatch(
        seed_type=sub.seed_type,
        seed_time=torch.from_numpy(sub.seed_time),
        node={t: torch.from_numpy(v) for t, v in sub.node.items()},
        batch={t: torch.from_numpy(v) for t, v in sub.batch.items()},
        tf=tf,
        inverse=inverse,
        rel_days=rel_days,
        edge_index={et: torch.from_numpy(v) for et, v in sub.edge_index.items()},
        num_sampled_nodes=sub.num_sampled_nodes,
        num_sampled_edges=sub.num_sampled_edges,
        y=None if y is None else torch.as_tensor(y),
    )


class SeedLoader:
    """Batches of seeds, sampled and materialised on the fly.

    Parameters
    ----------
    sampler : TemporalSampler
    tf_dict : dict of str to TensorFrame
        Features of every node (``skrel.graph.materialize``).
    seed_type : str
    seed_nodes : array of int64 (n,)
    seed_times : array of int64 (n,)
        Cutoffs in ns.
    salts : array of uint64 (n,)
        Per-seed randomness (:func:`skrel.graph.sampler.seed_salts`).
    y : array (n,), optional
        Targets, attached to each batch as ``batch.y``.
    batch_size : int, default=512
    shuffle : bool, default=False
        Shuffle the seeds each epoch (training); the permutation and the samples depend on
        ``random_state`` and the epoch set by :meth:`set_epoch`.
    random_state : int, default=0
    """

    def __init__(self, sampler: TemporalSampler, tf_dict: dict, seed_type: str, seed_nodes, seed_times, salts,
                 y=None, batch_size: int = 512, shuffle: bool = False, random_state: int = 0):
        self.sampler = sampler
        self.tf_dict = tf_dict
        self.seed_type = seed_type
        self.seed_nodes = np.asarray(seed_nodes, dtype=np.int64)
        self.seed_times = np.asarray(seed_times, dtype=np.int64)
        self.salts = np.asarray(salts, dtype=np.uint64)
        self.y = None if y is None else np.asarray(y)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.random_state = int(random_state)
        self.epoch = 0

    @property
    def graph(self) -> RelationalGraph:
        return self.sampler.graph

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-len(self.seed_nodes) // self.batch_size)

    def __iter__(self):
        n = len(self.seed_nodes)
        if self.shuffle:
            order = np.random.default_rng([self.random_state, self.epoch]).permutation(n)
            salts = _mix64(self.salts ^ _str_key("epoch", self.epoch))
        else:
            order = np.arange(n)
            salts = self.salts
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            sub = self.sampler.sample(self.seed_type, self.seed_nodes[idx], self.seed_times[idx], salts[idx])
            yield make_batch(sub, self.tf_dict, None if self.y is None else self.y[idx])
