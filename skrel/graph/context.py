"""RelGT's context sampler: for each seed (entity, cutoff), K tokens from its 1- and 2-hop neighbourhood.

The database is viewed as one undirected graph over all rows of all tables (an edge per non-missing
foreign-key value, child row <-> referenced row). For a seed node ``s`` at cutoff ``t``:

- token 0 is the seed itself (hop 0); it is always present;
- the candidates are the rows *visible at t* (time ``<= t``; rows of tables without a time column
  are always visible; rows with a missing time never are) at shortest-path distance 1 or 2 from
  ``s`` in the graph restricted to visible rows;
- ``K - 1`` of them are drawn uniformly without replacement (the paper's sampler draws from the
  union of both hops), or, with ``half_life``, favouring recent rows; when fewer than ``K - 1``
  are visible, all of them are taken and the rest of the ``K`` positions are **padding**, marked
  by ``mask == False`` (never duplicated or random rows: those would feed the model tokens that
  are not in the seed's neighbourhood);
- the edges of the graph among the chosen tokens (the induced subgraph) come with them.

Randomness is counter-based: every draw is a hash of ``(seed, entity, cutoff rank, candidate)``
(the cutoff as the number of distinct times at or before it, so that shifting every time changes
nothing), rows named by table and primary key (pandas' fixed-key ``hash_array``), never Python's salted
``hash``. A seed's context therefore depends only on its own visible neighbourhood and ``seed``
(not on the other rows sampled with it, nor on rows invisible at its cutoff), and it is the same
in any process, chunking or batch order.

Hubs are capped: a node with more than ``max_fanout`` visible neighbours contributes a uniform
sample (with replacement, then deduplicated) of ``max_fanout`` of them to the expansion. Set
``max_fanout`` above the largest degree for the exact neighbourhood.

The module needs numpy and pandas only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import Database, RelationalDataset, horizon_cutoffs
from .hetero import RelationalGraph, _mix64, build_graph
from .sampler import _segment_arange

__all__ = ["TokenGraph", "Contexts", "sample_contexts", "contexts_for", "hash_uniform", "row_keys"]

_NAT = np.iinfo(np.int64).min


def _combine(*parts) -> np.ndarray:
    """A uint64 hash of several integer arrays (broadcast together)."""
    h = np.uint64(0x243F6A8885A308D3)
    for p in parts:
        h = _mix64(h ^ np.asarray(p).astype(np.uint64))
    return np.asarray(h, dtype=np.uint64)


def hash_uniform(*parts) -> np.ndarray:
    """Uniform floats in [0, 1) from a counter-based hash of integer arrays (broadcast together)."""
    return (_combine(*parts) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def row_keys(seed: int, uids: np.ndarray, cutoff_ranks: np.ndarray) -> np.ndarray:
    """One uint64 key per (entity, cutoff) row: the stream every draw of that row hashes from.

    The cutoff enters as its rank (:meth:`TokenGraph.cutoff_rank`: how many distinct times of
    the database are at or before it), not as an absolute time: the rank depends only on rows
    visible at the cutoff and does not change when every time of the database and the task is
    shifted by the same amount, so neither do the draws (a model's predictions do not depend on
    the calendar's origin). Two cutoffs of one entity with no new time between them see the same
    rows, and draw the same context.
    """
    return _combine(np.int64(seed), uids, cutoff_ranks)


@dataclass(eq=False)
class TokenGraph:
    """A database as one undirected graph over all rows, in CSR form, with per-node visibility.

    Node ``offsets[i] + r`` is row position ``r`` of table ``tables[i]``.

    Attributes
    ----------
    tables : list of str
    offsets : ndarray of shape (n_tables + 1,)
    node_table : ndarray of shape (n_nodes,), int16
    node_time : ndarray of shape (n_nodes,), int64 nanoseconds; int64 min where a row has no time.
    node_rank : ndarray of shape (n_nodes,), int64
        0 for rows of tables without a time column (always visible), ``1..T`` for the rank of
        the row's time among the ``T`` distinct times, ``T + 1`` for a row of a timed table
        without a time (never visible; :func:`~skrel.graph.hetero.build_graph` gives those the
        time ``NEVER``, later than every cutoff, which has the same effect).
    times : ndarray of shape (T,), int64
        The distinct times, sorted.
    uid : ndarray of shape (n_nodes,), uint64
        A stable identity per row: a hash of the table and the primary-key value (the row
        position for tables without a primary key). Random draws hash uids, not node ids, so
        adding rows elsewhere in the database does not change a context.
    indptr, indices : CSR adjacency (undirected); each row's neighbours sorted by rank, so the
        neighbours visible at a cutoff are a prefix of the row.
    parent_ptr, parents : CSR child -> referenced rows (one entry per foreign-key value), for
        the induced edges.
    """

    tables: list
    offsets: np.ndarray
    node_table: np.ndarray
    node_time: np.ndarray
    node_rank: np.ndarray
    times: np.ndarray
    uid: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    parent_ptr: np.ndarray
    parents: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.offsets[-1])

    @classmethod
    def from_edges(cls, tables, sizes, node_time, child, parent, uid=None, timed=None) -> "TokenGraph":
        """Build from table sizes, per-node times (int64 ns, int64 min = no time) and fkey edges.

        Parameters
        ----------
        tables : list of str
        sizes : sequence of int, rows per table
        node_time : ndarray of shape (n_nodes,), int64
        child, parent : ndarray of shape (n_edges,), global node ids (child row -> referenced row)
        uid : ndarray of shape (n_nodes,), uint64, optional
            Stable row identities; by default a hash of (table, row position).
        timed : sequence of bool, optional
            Which tables have a time column (their rows with a missing time are never visible);
            by default the tables with at least one time.
        """
        sizes = np.asarray(sizes, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        n = int(offsets[-1])
        node_table = np.repeat(np.arange(len(tables), dtype=np.int16), sizes)
        node_time = np.asarray(node_time, dtype=np.int64)
        has_time = node_time != _NAT
        if timed is None:
            timed = np.bincount(node_table[has_time], minlength=len(tables)) > 0
        times = np.unique(node_time[has_time])
        rank = np.where(np.asarray(timed, dtype=bool)[node_table], len(times) + 1, 0).astype(np.int64)
        rank[has_time] = np.searchsorted(times, node_time[has_time]) + 1
        if uid is None:
            uid = _combine(node_table, np.arange(n) - offsets[node_table])
        uid = np.asarray(uid, dtype=np.uint64)
        child = np.asarray(child, dtype=np.int64)
        parent = np.asarray(parent, dtype=np.int64)
        src = np.concatenate([child, parent])
        dst = np.concatenate([parent, child])
        indices = dst[np.lexsort((uid[dst], rank[dst], src))]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
        parents = parent[np.argsort(child, kind="stable")]
        parent_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(child, minlength=n), out=parent_ptr[1:])
        return cls(list(tables), offsets, node_table, node_time, rank, times, uid, indptr, indices, parent_ptr, parents)

    @classmethod
    def from_relational(cls, graph: RelationalGraph) -> "TokenGraph":
        """One homogeneous graph from the heterogeneous :class:`~skrel.graph.hetero.RelationalGraph`."""
        tables = list(graph.node_types)
        sizes = [graph.num_nodes[t] for t in tables]
        node_time = np.concatenate([
            np.full(graph.num_nodes[t], _NAT, np.int64) if graph.node_time[t] is None else graph.node_time[t]
            for t in tables
        ])
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        uid = np.concatenate([_combine(np.int64(i), graph.node_key[t]) for i, t in enumerate(tables)])
        child, parent = [], []
        for et in graph.edge_types:
            src, rel, dst = et
            if rel.startswith("f2p_"):
                e = graph.edge_index(et)
                child.append(offsets[tables.index(src)] + e[0])
                parent.append(offsets[tables.index(dst)] + e[1])
        child = np.concatenate(child) if child else np.zeros(0, np.int64)
        parent = np.concatenate(parent) if parent else np.zeros(0, np.int64)
        timed = [graph.node_time[t] is not None for t in tables]
        return cls.from_edges(tables, sizes, node_time, child, parent, uid, timed)

    @classmethod
    def from_database(cls, db: Database) -> "TokenGraph":
        """The graph of ``db`` (via :func:`~skrel.graph.hetero.build_graph`), cached in ``db.cache``."""
        key = ("skrel.graph.context.TokenGraph",)
        if key not in db.cache:
            db.cache[key] = cls.from_relational(build_graph(db))
        return db.cache[key]

    def cutoff_rank(self, cutoffs_ns: np.ndarray) -> np.ndarray:
        """Largest visible rank at each cutoff: a node is visible iff ``node_rank <= cutoff_rank``."""
        return np.searchsorted(self.times, np.asarray(cutoffs_ns, dtype=np.int64), side="right").astype(np.int64)

    def entity_nodes(self, X: RelationalDataset) -> np.ndarray:
        """Global node ids of the entities of ``X`` (rows of ``X.entity_table``); unknown ids raise."""
        return self.offsets[self.tables.index(X.entity_table)] + build_graph(X.db).node_index(X.entity_table,
                                                                                               X.entity_ids)


@dataclass(eq=False)
class Contexts:
    """Sampled contexts of ``n`` seeds, ``K`` tokens each (position 0 is the seed).

    Attributes
    ----------
    node : ndarray of shape (n, K), int64; global node id, -1 for padding
    table : ndarray of shape (n, K), int16; table index, -1 for padding
    hop : ndarray of shape (n, K), int8; 0 (seed), 1 or 2, -1 for padding
    rel_time : ndarray of shape (n, K), float32
        Token time minus the seed's cutoff, in days (``<= 0`` for hops 1 and 2); NaN for rows of
        tables without a time column and for padding.
    mask : ndarray of shape (n, K), bool; True for real tokens
    edge_ptr : ndarray of shape (n + 1,); seed ``i``'s induced edges are ``edge_ptr[i]:edge_ptr[i+1]``
    edge_src, edge_dst : ndarray of shape (n_edges,), int32; token positions in ``0..K-1``, both
        directions of every induced edge, no self-loops or duplicates
    key : ndarray of shape (n,), uint64; the row keys (see :func:`row_keys`)
    """

    node: np.ndarray
    table: np.ndarray
    hop: np.ndarray
    rel_time: np.ndarray
    mask: np.ndarray
    edge_ptr: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    key: np.ndarray

    def __len__(self) -> int:
        return len(self.node)

    @property
    def num_tokens(self) -> int:
        return self.node.shape[1]

    def take(self, idx) -> "Contexts":
        """The contexts of seeds ``idx`` (an integer array), edges re-packed."""
        idx = np.asarray(idx, dtype=np.int64)
        starts, ends = self.edge_ptr[idx], self.edge_ptr[idx + 1]
        counts = ends - starts
        flat = _ranges(starts, counts)
        ptr = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        return Contexts(self.node[idx], self.table[idx], self.hop[idx], self.rel_time[idx], self.mask[idx], ptr,
                        self.edge_src[flat], self.edge_dst[flat], self.key[idx])

    def trimmed(self) -> "Contexts":
        """The same contexts without the trailing positions that are padding in every row."""
        k = max(int(self.mask.sum(1).max(initial=1)), 1)
        if k == self.num_tokens:
            return self
        return Contexts(self.node[:, :k], self.table[:, :k], self.hop[:, :k], self.rel_time[:, :k],
                        self.mask[:, :k], self.edge_ptr, self.edge_src, self.edge_dst, self.key)

    @classmethod
    def concat(cls, parts: list) -> "Contexts":
        ptrs, shift = [], 0
        for p in parts:
            ptrs.append(p.edge_ptr[:-1] + shift)
            shift += int(p.edge_ptr[-1])
        ptr = np.concatenate(ptrs + [np.array([shift], dtype=np.int64)])
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        return cls(cat("node"), cat("table"), cat("hop"), cat("rel_time"), cat("mask"), ptr,
                   cat("edge_src"), cat("edge_dst"), cat("key"))


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each pair, vectorised."""
    seg, off = _segment_arange(counts)
    return starts[seg] + off


def _visible_neighbours(graph: TokenGraph, edge_key: np.ndarray, nodes: np.ndarray, rank: np.ndarray,
                        keys: np.ndarray, max_fanout: int, salt: int):
    """Visible neighbours of ``nodes[i]`` at cutoff rank ``rank[i]``, capped at ``max_fanout`` per node.

    Returns (owner, neighbour): ``owner`` indexes ``nodes``.
    """
    stride = np.int64(len(graph.times) + 2)
    start = graph.indptr[nodes]
    end = np.searchsorted(edge_key, nodes * stride + rank, side="right")
    count = end - start
    small = count <= max_fanout
    own_small = np.repeat(np.flatnonzero(small), count[small])
    nbr_small = graph.indices[_ranges(start[small], count[small])]
    big = np.flatnonzero(~small)
    if len(big):
        own_big = np.repeat(big, max_fanout)
        draw = np.tile(np.arange(max_fanout, dtype=np.int64), len(big))
        u = hash_uniform(keys[own_big], np.int64(salt), graph.uid[nodes[own_big]], draw)
        pos = start[own_big] + (u * count[own_big]).astype(np.int64)
        pairs = np.unique(np.stack([own_big, graph.indices[pos]], axis=1), axis=0)
        own_small = np.concatenate([own_small, pairs[:, 0]])
        nbr_small = np.concatenate([nbr_small, pairs[:, 1]])
    return own_small, nbr_small


def _edge_key(graph: TokenGraph) -> np.ndarray:
    stride = np.int64(len(graph.times) + 2)
    src = np.repeat(np.arange(graph.num_nodes, dtype=np.int64), np.diff(graph.indptr))
    return src * stride + graph.node_rank[graph.indices]


def sample_contexts(graph: TokenGraph, seed_nodes, cutoffs_ns, num_tokens: int, *, seed: int = 0,
                    max_fanout: int = 1000, half_life: float | None = None, chunk_size: int = 2048) -> Contexts:
    """Sample one context of ``num_tokens`` tokens per seed.

    Parameters
    ----------
    graph : TokenGraph
    seed_nodes : ndarray of shape (n,)
        Global node ids of the seeds.
    cutoffs_ns : ndarray of shape (n,), int64
        Cutoff of each seed in nanoseconds.
    num_tokens : int
        ``K``, tokens per context, the seed included.
    seed : int, default=0
        Seed of the counter-based draws (the same seed gives the same contexts).
    max_fanout : int, default=1000
        At most this many neighbours of one node enter the expansion (hub cap).
    half_life : float or None, default=None
        ``None`` draws the tokens uniformly (the paper). A number of days makes the draw favour
        recent rows: a candidate's weight halves with every ``half_life`` days of age (rows
        without a time weigh as much as rows at the cutoff).
    chunk_size : int, default=2048
        Seeds per vectorised chunk (memory only; the result does not depend on it).

    Returns
    -------
    Contexts
    """
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be at least 1, got {num_tokens}.")
    seed_nodes = np.asarray(seed_nodes, dtype=np.int64)
    cutoffs_ns = np.asarray(cutoffs_ns, dtype=np.int64)
    if seed_nodes.shape != cutoffs_ns.shape or seed_nodes.ndim != 1:
        raise ValueError("seed_nodes and cutoffs_ns must be 1-D arrays of the same length.")
    edge_key = _edge_key(graph)
    parts = [
        _sample_chunk(graph, edge_key, seed_nodes[i:i + chunk_size], cutoffs_ns[i:i + chunk_size], num_tokens,
                      int(seed), max_fanout, half_life)
        for i in range(0, max(len(seed_nodes), 1), chunk_size)
    ]
    return Contexts.concat(parts)


def _sample_chunk(graph, edge_key, seeds, cutoffs, K, seed, max_fanout, half_life) -> Contexts:
    n, N = len(seeds), np.int64(graph.num_nodes)
    rank = graph.cutoff_rank(cutoffs)
    keys = row_keys(seed, graph.uid[seeds], rank)

    # hop 1: visible neighbours of the seed, the seed itself excluded, deduplicated
    own1, nbr1 = _visible_neighbours(graph, edge_key, seeds, rank, keys, max_fanout, salt=1)
    keep = nbr1 != seeds[own1]
    pair1 = np.unique(own1[keep] * N + nbr1[keep])
    own1, nbr1 = pair1 // N, pair1 % N

    # hop 2: visible neighbours of the visible hop-1 nodes, the seed excluded. A capped hub seed
    # may leave some hop-1 nodes out of pair1: those reached again here are labelled by adjacency.
    own2, nbr2 = _visible_neighbours(graph, edge_key, nbr1, rank[own1], keys[own1], max_fanout, salt=2)
    owner2 = own1[own2]
    pair2 = np.unique(owner2 * N + nbr2)
    owner2, nbr2 = pair2 // N, pair2 % N
    keep = nbr2 != seeds[owner2]
    owner2, nbr2, pair2 = owner2[keep], nbr2[keep], pair2[keep]
    hop2 = np.where(_adjacent(graph, seeds[owner2], nbr2), 1, 2)
    pairs = np.concatenate([pair1, pair2])
    hop_of = np.concatenate([np.ones(len(pair1), np.int64), hop2])
    order = np.lexsort((hop_of, pairs))
    pairs, hop_of = pairs[order], hop_of[order]
    first = np.ones(len(pairs), bool)
    first[1:] = pairs[1:] != pairs[:-1]
    pairs, hop_of = pairs[first], hop_of[first]

    # K - 1 of hop_of 1 and 2 together, without replacement (Efraimidis-Spirakis): the K - 1
    # largest log(u) / w, with u a hash of (seed row, candidate) and w the recency weight
    # (uniform when half_life is None)
    owner, cand, hop = pairs // N, pairs % N, hop_of
    u = hash_uniform(keys[owner], np.int64(3), graph.uid[cand])
    score = np.log(np.maximum(u, 1e-300))
    if half_life is not None:
        t = graph.node_time[cand]
        age = np.where(t == _NAT, 0.0, (cutoffs[owner] - t) / 86_400e9)
        score = score * np.exp2(np.minimum(age / half_life, 1000.0))
    order = np.lexsort((-score, owner))
    owner, cand, hop = owner[order], cand[order], hop[order]
    first = np.searchsorted(owner, np.arange(n), side="left")
    pos = np.arange(len(owner), dtype=np.int64) - first[owner] + 1
    take = pos < K
    owner, cand, hop, pos = owner[take], cand[take], hop[take], pos[take]

    node = np.full((n, K), -1, dtype=np.int64)
    hops = np.full((n, K), -1, dtype=np.int8)
    node[:, 0] = seeds
    hops[:, 0] = 0
    node[owner, pos] = cand
    hops[owner, pos] = hop
    mask = node >= 0
    safe = np.where(mask, node, 0)
    table = np.where(mask, graph.node_table[safe], -1).astype(np.int16)
    t = graph.node_time[safe]
    timed = mask & (t != _NAT)
    rel = np.full((n, K), np.nan, dtype=np.float32)
    rel[timed] = ((t - cutoffs[:, None])[timed] / 86_400e9).astype(np.float32)

    edge_ptr, edge_src, edge_dst = _induced_edges(graph, node, mask)
    return Contexts(node, table, hops, rel, mask, edge_ptr, edge_src, edge_dst, keys)


def _has_parent(graph: TokenGraph, child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    cnt = graph.parent_ptr[child + 1] - graph.parent_ptr[child]
    hit = graph.parents[_ranges(graph.parent_ptr[child], cnt)] == np.repeat(parent, cnt)
    return np.bincount(np.repeat(np.arange(len(child)), cnt)[hit], minlength=len(child)) > 0


def _adjacent(graph: TokenGraph, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether ``a[i]`` and ``b[i]`` share an edge (foreign keys are the only edges)."""
    return _has_parent(graph, a, b) | _has_parent(graph, b, a)


def _induced_edges(graph: TokenGraph, node: np.ndarray, mask: np.ndarray):
    """Edges of the graph among each row's tokens, as token positions, both directions."""
    n, K = node.shape
    N = np.int64(graph.num_nodes)
    b, p = np.nonzero(mask)
    u = node[b, p]
    token_key = b * N + u
    order = np.argsort(token_key, kind="stable")
    sorted_key, sorted_pos = token_key[order], p[order]
    cnt = graph.parent_ptr[u + 1] - graph.parent_ptr[u]
    flat = _ranges(graph.parent_ptr[u], cnt)
    eb, ep, v = np.repeat(b, cnt), np.repeat(p, cnt), graph.parents[flat]
    q_key = eb * N + v
    at = np.clip(np.searchsorted(sorted_key, q_key), 0, max(len(sorted_key) - 1, 0))
    found = (sorted_key[at] == q_key) if len(sorted_key) else np.zeros(len(q_key), bool)
    eb, ep, eq = eb[found], ep[found], sorted_pos[at[found]]
    keep = ep != eq
    eb, ep, eq = eb[keep], ep[keep], eq[keep]
    src = np.concatenate([ep, eq])
    dst = np.concatenate([eq, ep])
    bb = np.concatenate([eb, eb])
    code = np.unique((bb * K + src) * K + dst)
    bb, rest = code // (K * K), code % (K * K)
    src, dst = rest // K, rest % K
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(bb, minlength=n), out=ptr[1:])
    return ptr, src.astype(np.int32), dst.astype(np.int32)


def contexts_for(X: RelationalDataset, num_tokens: int, *, seed: int = 0, max_fanout: int = 1000,
                 half_life: float | None = None, graph: TokenGraph | None = None, horizon: str = "cutoff") -> Contexts:
    """Contexts of the rows of ``X`` over the graph of ``X.db`` (built and cached on first use).

    ``horizon`` (:func:`skrel.data.horizon_cutoffs`) sets the time each row is described at:
    with ``"data"``, a cutoff past the end of the data is replaced by the data's last time (the
    same visible rows; relative times and recency weights counted from the data's end).
    """
    graph = TokenGraph.from_database(X.db) if graph is None else graph
    nodes = graph.entity_nodes(X)
    cutoffs = horizon_cutoffs(X, horizon).view(np.int64)
    return sample_contexts(graph, nodes, cutoffs, num_tokens, seed=seed, max_fanout=max_fanout, half_life=half_life)
