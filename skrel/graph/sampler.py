"""Temporal neighbour sampling over a :class:`~skrel.graph.hetero.RelationalGraph`, vectorised.

Each seed ``(node, cutoff)`` grows its own subgraph (disjoint from the other seeds'), hop by hop:
at hop ``h`` every frontier node draws, per edge type pointing into it, up to ``fanouts[h - 1]``
neighbours among those visible at its seed's cutoff (time ``<= cutoff``; untimed tables always
visible). The subgraph is the seed's *computation tree*: a node reached along two paths appears
twice, once per path. For a GNN whose depth equals the number of hops (RelBench's recipe: 2 and 2)
the seed's output is the same as over PyG's deduplicated disjoint subgraph, and the tree needs
no per-seed bookkeeping, so every hop is a handful of numpy array operations over all seeds.

Strategies: ``"uniform"`` (a uniformly random subset of the visible neighbours, without
replacement) and ``"last"`` (the most recent visible neighbours).

Randomness is counter-based: every draw is a hash of the seed's ``salt``, the path from the seed
and the candidate's stable identity, never a shared random stream. A seed's sample therefore does
not depend on the other seeds in the batch, nor on rows it cannot see (the leakage guarantee),
and the same salts give the same samples.

:class:`ReferenceSampler` is a per-seed Python implementation of the same rules, for tests and
benchmarks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .hetero import EdgeType, RelationalGraph, _mix64

__all__ = ["TemporalSampler", "SampledSubgraph", "ReferenceSampler", "reference_sample", "seed_salts"]

_STRATEGIES = ("uniform", "last")
# Above this many visible neighbours per requested one, uniform sampling switches from random
# keys over every candidate (cost: all candidates) to drawing positions with rejection of
# repeats (cost: about the fan-out).
_DENSE_FACTOR = 8
# Up to this mean degree, visible neighbours are counted by scanning rather than binary search.
_SCAN_DEGREE = 64


def _str_key(*parts) -> np.uint64:
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(h, "little"))


def seed_salts(random_state: int, *streams) -> np.ndarray:
    """uint64 salts for seeds: ``streams`` are equal-length integer arrays (e.g. entity keys,
    cutoffs, positions) combined with ``random_state``."""
    base = _str_key("skrel.sampler", int(random_state))
    out = None
    for s in streams:
        s = np.asarray(s)
        s = s.view(np.uint64) if s.dtype == np.uint64 else s.astype(np.int64, copy=False).view(np.uint64)
        out = _mix64(s ^ base) if out is None else _mix64(out ^ _mix64(s))
    if out is None:
        raise ValueError("seed_salts needs at least one stream.")
    return out


class _Keys:
    """Path keys of a frontier, computed on first use (only random draws and deeper hops need them).

    ``parts``: ``(parent keys, parent rows, edge-type key, node keys of the type, picked nodes)`` per
    edge type; a node's key hashes its parent's key, the edge type and its own identity.
    """

    def __init__(self, parts=None, values=None):
        self.parts, self.values = parts, values

    def __call__(self) -> np.ndarray:
        if self.values is None:
            self.values = np.concatenate([_mix64(_mix64(pk()[par] ^ ek) ^ nk[picked])
                                          for pk, par, ek, nk, picked in self.parts])
            self.parts = None
        return self.values


def _segment_arange(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts ``c``: (segment id of each item, offset of each item within its segment)."""
    total = int(counts.sum())
    seg = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    off = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    return seg, off


@dataclass
class SampledSubgraph:
    """The disjoint temporal computation trees of a batch of seeds (numpy arrays).

    Nodes of each type are stored hop by hop: hop 0 (the seeds, for the seed type), hop 1, ...
    Edges point from a node at hop ``h`` to the node at hop ``h - 1`` that drew it; each edge
    type's edges are stored hop by hop too, so the first ``sum(num_sampled_edges[et][:h])`` edges
    are those of hops ``1..h`` (what a GNN layer that only updates hops ``< h`` needs).

    Attributes
    ----------
    seed_type : str
    seed_time : ndarray of int64, shape (B,)
        Cutoff of each seed, ns.
    node : dict of str to ndarray of int64, shape (N_t,)
        Graph node index of each sampled node (the seeds are ``node[seed_type][:B]``).
    batch : dict of str to ndarray of int64, shape (N_t,)
        Seed position (0..B-1) of each sampled node.
    time : dict of str to ndarray of int64 or None
        Time of each sampled node (ns); None for untimed types.
    num_sampled_nodes : dict of str to list of int
        Nodes per hop, ``L + 1`` entries.
    edge_index : dict of edge type to ndarray of int64, shape (2, E)
        Local indices: row 0 into ``node[src]``, row 1 into ``node[dst]``; messages src -> dst.
    num_sampled_edges : dict of edge type to list of int
        Edges per hop ``1..L``.
    """

    seed_type: str
    seed_time: np.ndarray
    node: dict
    batch: dict
    time: dict
    num_sampled_nodes: dict
    edge_index: dict
    num_sampled_edges: dict

    @property
    def num_seeds(self) -> int:
        return len(self.seed_time)

    def total_nodes(self) -> int:
        return int(sum(len(v) for v in self.node.values()))


class TemporalSampler:
    """Temporal neighbour sampler over a :class:`RelationalGraph` (see the module docstring).

    Parameters
    ----------
    graph : RelationalGraph
    fanouts : sequence of int
        Neighbours drawn per node and edge type at each hop (``-1``: all visible ones).
    strategy : {"uniform", "last"}, default="uniform"

    Examples
    --------
    >>> sampler = TemporalSampler(build_graph(db), [128, 64])  # doctest: +SKIP
    >>> sub = sampler.sample("drivers", nodes, cutoffs_ns, seed_salts(0, np.arange(len(nodes))))  # doctest: +SKIP
    """

    def __init__(self, graph: RelationalGraph, fanouts: Sequence[int], strategy: str = "uniform"):
        if strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}.")
        fanouts = [int(k) for k in fanouts]
        if not fanouts or any(k == 0 or k < -1 for k in fanouts):
            raise ValueError(f"fanouts must be a non-empty list of positive ints (or -1 for all), got {fanouts}.")
        self.graph = graph
        self.fanouts = fanouts
        self.strategy = strategy
        self._et_key = {et: _str_key("edge", *et) for et in graph.edge_types}

    def _prepared(self, key, build):
        """Per-graph precomputed arrays (shared by every sampler over the graph)."""
        cache = self.graph._cache
        key = ("sampler",) + key
        if key not in cache:
            cache[key] = build()
        return cache[key]

    # ------------------------------------------------------------------ visibility
    def _visible_index(self, et: EdgeType):
        """Per timed edge type: sorted composite keys (row, time rank) and the distinct times."""
        def build():
            rowptr, col = self.graph.adj[et]
            uniq, rank = np.unique(self.graph.node_time[et[0]][col], return_inverse=True)
            rows = np.repeat(np.arange(len(rowptr) - 1, dtype=np.int64), np.diff(rowptr))
            stride = np.int64(len(uniq) + 1)
            return rows * stride + rank.astype(np.int64), uniq, stride

        return self._prepared(("visible", et), build)

    def visible_range(self, et: EdgeType, nodes: np.ndarray, cutoffs: np.ndarray):
        """CSR positions ``[start, end)`` of the neighbours of ``dst`` nodes visible at ``cutoffs``."""
        rowptr, _ = self.graph.adj[et]
        start, stop = rowptr[nodes], rowptr[nodes + 1]
        if self.graph.node_time[et[0]] is None:
            return start, stop
        deg = stop - start
        if int(deg.sum()) <= _SCAN_DEGREE * len(nodes):
            # low degrees: compare every neighbour's time (sequential reads beat binary searches)
            edge_time = self._edge_time(et)
            seg, off = _segment_arange(deg)
            visible = edge_time[start[seg] + off] <= cutoffs[seg]
            return start, start + np.bincount(seg, weights=visible, minlength=len(nodes)).astype(np.int64)
        composite, uniq, stride = self._visible_index(et)
        n_visible_times = np.searchsorted(uniq, cutoffs, side="right")
        end = np.searchsorted(composite, nodes * stride + n_visible_times, side="left")
        return start, end

    def _take_all(self, et: EdgeType, nodes: np.ndarray, cutoffs: np.ndarray, k: int):
        """(positions, frontier rows, times or None) of every visible neighbour when no node has
        more than ``k`` neighbours at all (nothing to draw), in one scan; else None."""
        rowptr, _ = self.graph.adj[et]
        start = rowptr[nodes]
        deg = rowptr[nodes + 1] - start
        if k >= 0 and int(deg.max(initial=0)) > k:
            return None
        timed = self.graph.node_time[et[0]] is not None
        if timed and int(deg.sum()) > _SCAN_DEGREE * len(nodes):
            return None
        seg, off = _segment_arange(deg)
        pos = start[seg] + off
        if not timed:
            return pos, seg, None
        when = self._edge_time(et)[pos]
        visible = when <= cutoffs[seg]
        return pos[visible], seg[visible], when[visible]

    def _edge_time(self, et: EdgeType) -> np.ndarray:
        return self._prepared(("edge_time", et), lambda: self.graph.edge_time(et))

    def _single(self, et: EdgeType):
        """For an edge type where every node has at most one neighbour (child -> parent): per dst
        node, its neighbour (-1 for none) and that neighbour's time (or None); else None."""
        def build():
            rowptr, col = self.graph.adj[et]
            deg = np.diff(rowptr)
            if int(deg.max(initial=0)) > 1:
                return None
            nbr = np.full(len(deg), -1, dtype=np.int64)
            nbr[deg == 1] = col
            times = self.graph.node_time[et[0]]
            if times is None:
                return nbr, None
            nbr_time = np.full(len(deg), np.iinfo(np.int64).max, dtype=np.int64)
            nbr_time[deg == 1] = times[col]
            return nbr, nbr_time

        return self._prepared(("single", et), build)

    @staticmethod
    def _single_visible(single, nodes: np.ndarray, cutoffs: np.ndarray):
        """Frontier rows whose single neighbour is visible, that neighbour and its time (or None)."""
        nbr, nbr_time = single
        if nbr_time is None:
            rows = np.flatnonzero(nbr[nodes] >= 0)
            return rows, nbr[nodes[rows]], None
        when = nbr_time[nodes]
        rows = np.flatnonzero(when <= cutoffs)
        return rows, nbr[nodes[rows]], when[rows]

    # ------------------------------------------------------------------ selection
    def _select(self, et, start, cnt, k, keys_of):
        """Positions and frontier rows of the neighbours drawn, for frontier rows with ``cnt``
        visible neighbours from CSR position ``start``. ``keys_of(rows)`` gives the path keys of
        frontier rows (computed only where a random draw needs them)."""
        if k < 0 or (self.strategy == "uniform" and int(cnt.max(initial=0)) <= k):
            parent, off = _segment_arange(cnt)
            return start[parent] + off, parent
        take = np.minimum(cnt, k)
        if self.strategy == "last":
            parent, off = _segment_arange(take)
            return start[parent] + (cnt - take)[parent] + off, parent
        # uniform: all of them where cnt <= k, else a random k-subset
        out_pos, out_par = [], []
        few = np.flatnonzero(cnt <= k)
        if len(few):
            parent, off = _segment_arange(cnt[few])
            out_pos.append(start[few][parent] + off)
            out_par.append(few[parent])
        dense = np.flatnonzero((cnt > k) & (cnt <= _DENSE_FACTOR * k))
        if len(dense):
            pos, par = self._random_keys(et, start[dense], cnt[dense], k, keys_of(dense))
            out_pos.append(pos)
            out_par.append(dense[par])
        sparse = np.flatnonzero(cnt > _DENSE_FACTOR * k)
        if len(sparse):
            pos, par = self._rejection(start[sparse], cnt[sparse], k, keys_of(sparse))
            out_pos.append(pos)
            out_par.append(sparse[par])
        return np.concatenate(out_pos), np.concatenate(out_par)

    def _random_keys(self, et, start, cnt, k, keys):
        """k smallest hash keys among all candidates of each segment: a uniform k-subset."""
        seg, off = _segment_arange(cnt)
        pos = start[seg] + off
        cand = self.graph.node_key[et[0]][self.graph.adj[et][1][pos]]
        u = _mix64(keys[seg] ^ cand)
        if len(cnt) < 2**23:  # one sort of (segment, top 40 bits of the key)
            order = np.argsort((seg.astype(np.uint64) << np.uint64(40)) | (u >> np.uint64(24)), kind="stable")
        else:  # pragma: no cover - huge batches
            order = np.lexsort((u, seg))
        seg_start = np.cumsum(cnt) - cnt
        keep = order[np.arange(len(order)) - seg_start[seg[order]] < k]
        return pos[keep], seg[keep]

    def _rejection(self, start, cnt, k, keys):
        """k distinct positions per segment by hashing (slot, round) and redrawing repeats."""
        n = len(cnt)
        seg = np.repeat(np.arange(n, dtype=np.int64), k)
        slot = np.tile(np.arange(k, dtype=np.uint64), n)
        cnt_seg = cnt[seg].astype(np.uint64)
        draw = _mix64(keys[seg] ^ _mix64(slot)) % cnt_seg
        todo = np.arange(len(seg))
        for rnd in range(1, 200):
            order = np.lexsort((np.isin(np.arange(len(seg)), todo), draw, seg))
            s_seg, s_draw = seg[order], draw[order]
            dup = np.zeros(len(order), bool)
            dup[1:] = (s_seg[1:] == s_seg[:-1]) & (s_draw[1:] == s_draw[:-1])
            todo = np.sort(order[dup])
            if not len(todo):
                break
            salt = _mix64(slot[todo] + np.uint64(rnd) * np.uint64(0x100000000))
            draw[todo] = _mix64(keys[seg[todo]] ^ salt) % cnt_seg[todo]
        else:  # pragma: no cover - probability below 8**-200 per slot
            raise RuntimeError("uniform sampling did not converge")
        return start[seg] + draw.astype(np.int64), seg

    # ------------------------------------------------------------------ sampling
    def sample(self, seed_type: str, seed_nodes, seed_times, salts) -> SampledSubgraph:
        """Sample the computation trees of seeds ``(seed_nodes[i], seed_times[i])``.

        Parameters
        ----------
        seed_type : str
        seed_nodes : array of int, shape (B,)
            Node indices of ``seed_type``.
        seed_times : array of int64, shape (B,)
            Cutoffs in ns (``datetime64[ns]`` viewed as int64).
        salts : array of uint64, shape (B,)
            Per-seed randomness (see :func:`seed_salts`); ignored by ``"last"``.

        Returns
        -------
        SampledSubgraph
        """
        g = self.graph
        if seed_type not in g.num_nodes:
            raise KeyError(f"No node type {seed_type!r}; types are {g.node_types}.")
        seed_nodes = np.asarray(seed_nodes, dtype=np.int64)
        seed_times = np.asarray(seed_times, dtype=np.int64)
        salts = np.asarray(salts, dtype=np.uint64)
        B = len(seed_nodes)
        if seed_times.shape != (B,) or salts.shape != (B,):
            raise ValueError("seed_nodes, seed_times and salts must have the same length.")
        if B and (seed_nodes.min() < 0 or seed_nodes.max() >= g.num_nodes[seed_type]):
            raise IndexError(f"seed node index out of range for {seed_type!r} ({g.num_nodes[seed_type]} nodes).")
        types = g.node_types
        nodes = {t: [] for t in types}
        batches = {t: [] for t in types}
        times = {t: [] for t in types}  # node times, carried from the visibility checks
        counts = {t: [] for t in types}
        size = {t: 0 for t in types}
        src_l = {et: [] for et in g.edge_types}
        dst_l = {et: [] for et in g.edge_types}
        e_counts = {et: [] for et in g.edge_types}
        # frontier per type: (graph nodes, seed positions, path keys, local index of its first node);
        # a frontier's nodes are consecutive in their type's node list
        frontier = {seed_type: (seed_nodes, np.arange(B, dtype=np.int64), _Keys(values=_mix64(salts)), 0)}
        for t in types:
            if t == seed_type:
                nodes[t].append(seed_nodes)
                batches[t].append(np.arange(B, dtype=np.int64))
                if g.node_time[t] is not None:
                    times[t].append(g.node_time[t][seed_nodes])
                size[t] = B
            counts[t].append(size[t])
        for hop, k in enumerate(self.fanouts):
            last_hop = hop == len(self.fanouts) - 1
            new = {t: [] for t in types}
            cutoffs = {t: seed_times[f[1]] for t, f in frontier.items()}
            for et in g.edge_types:
                src, _, dst = et
                if dst not in frontier or len(frontier[dst][0]) == 0:
                    e_counts[et].append(0)
                    continue
                f_nodes, f_batch, f_keys, f_base = frontier[dst]
                et_key = self._et_key[et]
                single = self._single(et)
                if single is not None:  # each node has at most one neighbour (child -> parent)
                    par, picked, when = self._single_visible(single, f_nodes, cutoffs[dst])
                else:
                    taken = self._take_all(et, f_nodes, cutoffs[dst], k)
                    if taken is not None:
                        pos, par, when = taken
                    else:
                        start, end = self.visible_range(et, f_nodes, cutoffs[dst])
                        def keys_of(rows, f_keys=f_keys, et_key=et_key):
                            return _mix64(f_keys()[rows] ^ et_key)

                        pos, par = self._select(et, start, end - start, k, keys_of)
                        when = None if g.node_time[src] is None else self._edge_time(et)[pos]
                    picked = g.adj[et][1][pos]
                n_new = len(picked)
                first = size[src]
                size[src] += n_new
                child_keys = None if last_hop else (f_keys, par, et_key, g.node_key[src], picked)
                new[src].append((picked, f_batch[par], child_keys, when))
                src_l[et].append(first)
                dst_l[et].append((par, f_base))
                e_counts[et].append(n_new)
            frontier = {}
            for t in types:
                parts = new[t]
                if parts:
                    nodes[t].append(np.concatenate([p[0] for p in parts]))
                    batches[t].append(np.concatenate([p[1] for p in parts]))
                    if g.node_time[t] is not None:
                        times[t].append(np.concatenate([p[3] for p in parts]))
                    if not last_hop:
                        frontier[t] = (nodes[t][-1], batches[t][-1], _Keys(parts=[p[2] for p in parts]),
                                       size[t] - len(nodes[t][-1]))
                counts[t].append(sum(len(p[0]) for p in parts))
        node = {t: np.concatenate(nodes[t]) if nodes[t] else np.zeros(0, np.int64) for t in types}
        batch = {t: np.concatenate(batches[t]) if batches[t] else np.zeros(0, np.int64) for t in types}
        time = {t: (None if g.node_time[t] is None else
                    np.concatenate(times[t]) if times[t] else np.zeros(0, np.int64)) for t in types}
        edge_index = {}
        for et in g.edge_types:  # one (2, E) array per edge type, filled hop by hop
            out = np.empty((2, sum(e_counts[et])), dtype=np.int64)
            at = 0
            for first, (par, base) in zip(src_l[et], dst_l[et]):
                n = len(par)
                out[0, at:at + n] = np.arange(first, first + n)
                np.add(par, base, out=out[1, at:at + n])
                at += n
            edge_index[et] = out
        return SampledSubgraph(seed_type, seed_times, node, batch, time, counts, edge_index, e_counts)


class ReferenceSampler:
    """Brute-force per-seed sampler with the same rules, for tests and benchmarks.

    Adjacency lists are built once from the COO edges (dict of lists, deliberately naive); every
    seed then walks its tree in Python, filtering each node's neighbours by time and drawing with
    ``rng.choice(..., replace=False)`` (``"uniform"``) or taking the latest (``"last"``).
    """

    def __init__(self, graph: RelationalGraph):
        self.graph = graph
        self.lists = {}
        for et in graph.edge_types:
            src, dst = graph.edge_index(et)
            by_dst: dict = {}
            for s, d in zip(src.tolist(), dst.tolist()):
                by_dst.setdefault(d, []).append(s)
            self.lists[et] = by_dst
        self.times = {t: (None if v is None else v.tolist()) for t, v in graph.node_time.items()}

    def sample(self, seed_type, seed_nodes, seed_times, fanouts, strategy="uniform", rng=None) -> list[list[tuple]]:
        """For each seed, its sampled nodes as root-to-node paths ``((edge type, node), ...)``."""
        rng = np.random.default_rng(0) if rng is None else rng
        edge_types = self.graph.edge_types
        out = []
        for node, cutoff in zip(np.asarray(seed_nodes).tolist(), np.asarray(seed_times).tolist()):
            paths = []
            frontier = [(seed_type, node, ())]
            for k in fanouts:
                nxt = []
                for t, v, path in frontier:
                    for et in edge_types:
                        if et[2] != t:
                            continue
                        times = self.times[et[0]]
                        cand = [s for s in self.lists[et].get(v, []) if times is None or times[s] <= cutoff]
                        cand.sort(key=(lambda s: (times[s], s)) if times is not None else None)
                        if 0 <= k < len(cand):
                            if strategy == "last":
                                cand = cand[len(cand) - k:]
                            else:
                                cand = sorted(rng.choice(cand, size=k, replace=False).tolist())
                        for s in cand:
                            p = path + ((et, s),)
                            paths.append(p)
                            nxt.append((et[0], s, p))
                frontier = nxt
            out.append(paths)
        return out


def reference_sample(graph: RelationalGraph, seed_type: str, seed_nodes, seed_times, fanouts, strategy="uniform",
                     rng=None) -> list[list[tuple]]:
    """:meth:`ReferenceSampler.sample` in one call (see :class:`ReferenceSampler`)."""
    return ReferenceSampler(graph).sample(seed_type, seed_nodes, seed_times, fanouts, strategy, rng)
