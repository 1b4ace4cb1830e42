"""A :class:`~skrel.data.Database` as a heterogeneous temporal graph, with per-table tensor features.

One node type per table (node ``i`` of a table is its row ``i``), one edge type per foreign key and
one for its reverse, RelBench's naming::

    (child, "f2p_<fkey column>", parent)       # messages child -> parent
    (parent, "rev_f2p_<fkey column>", child)   # messages parent -> child

Node times are int64 nanoseconds since the epoch (``datetime64[ns]`` viewed as int64); a missing
time is :data:`NEVER` (never visible); tables without a time column have ``node_time[t] is None``
and are always visible. A node is visible at cutoff ``c`` when its time is ``<= c``.

Two cached builders, both keyed in ``db.cache`` (the structures are built once per database and
reused across fits, grid-search candidates and predictions):

- :func:`build_graph` -> :class:`RelationalGraph`: structure only (numpy, no features).
- :func:`feature_spec` -> :class:`FeatureSpec` (column semantic types and statistics, inferred from
  the rows of one database visible at the latest training cutoff) and :func:`materialize` -> ``{table: torch_frame.TensorFrame}``
  (a database's rows encoded with a spec's statistics, so that predict-time features use the
  training statistics).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data import Database, SchemaError
from .text import HashingTextEmbedder, embedder_key

__all__ = [
    "EdgeType",
    "NEVER",
    "RelationalGraph",
    "FeatureSpec",
    "build_graph",
    "feature_spec",
    "materialize",
    "node_keys",
    "to_hetero_data",
    "UnsupportedColumnWarning",
]

EdgeType = tuple[str, str, str]

NEVER = np.iinfo(np.int64).max
"""Time given to rows whose time is missing: later than every cutoff, so never visible."""


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def node_keys(values) -> np.ndarray:
    """Stable uint64 identities of primary-key values (equal values, equal keys, in every process)."""
    arr = pd.Series(np.asarray(values))
    return _mix64(pd.util.hash_pandas_object(arr, index=False).to_numpy().astype(np.uint64))


@dataclass(eq=False)
class RelationalGraph:
    """The structure of a database as a heterogeneous temporal graph (numpy arrays).

    Attributes
    ----------
    node_types : list of str
        The table names, in database order.
    num_nodes : dict of str to int
        Rows per table.
    node_time : dict of str to ndarray of int64 or None
        Per table, the time of each node in ns (``NEVER`` where missing); ``None`` for tables
        without a time column (always visible).
    pkey_index : dict of str to pandas.Index or None
        Per table, primary-key value -> node index (``None`` without a primary key). Use
        :meth:`node_index` to map ids with a clear error for unknown ones.
    node_key : dict of str to ndarray of uint64
        A stable identity per node: a hash of its primary-key value, or of its row position for
        tables without a primary key. Samplers derive their randomness from it, so that a seed's
        sample does not depend on rows it cannot see.
    edge_types : list of (src, rel, dst)
        Every foreign key and its reverse.
    adj : dict of edge type to (rowptr, col)
        Per edge type ``(src, rel, dst)``, a CSR adjacency over ``dst`` nodes: the ``src``
        neighbours of ``dst`` node ``i`` (the nodes that send it messages) are
        ``col[rowptr[i]:rowptr[i + 1]]``. ``rowptr`` is int64 of shape ``(num_nodes[dst] + 1,)``,
        ``col`` int64 of shape ``(E,)``. Within a row, neighbours are sorted by their time
        (ascending, missing last), ties by node index; so the neighbours visible at a cutoff are a
        prefix of the row.
    fingerprint : str
        The database's fingerprint.
    """

    node_types: list[str]
    num_nodes: dict[str, int]
    node_time: dict[str, np.ndarray | None]
    pkey_index: dict[str, pd.Index | None]
    node_key: dict[str, np.ndarray]
    edge_types: list[EdgeType]
    adj: dict[EdgeType, tuple[np.ndarray, np.ndarray]]
    fingerprint: str
    _cache: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        nodes = ", ".join(f"{t}={n}" for t, n in self.num_nodes.items())
        n_edges = sum(len(c) for _, c in self.adj.values())
        return f"RelationalGraph(nodes: {nodes}; {len(self.edge_types)} edge types, {n_edges} edges)"

    @property
    def timed_types(self) -> list[str]:
        """Node types with a time column."""
        return [t for t in self.node_types if self.node_time[t] is not None]

    def node_index(self, table: str, ids) -> np.ndarray:
        """Node indices (int64) of primary-key values ``ids`` of ``table``; unknown ids raise."""
        if table not in self.num_nodes:
            raise KeyError(f"No table {table!r} in the graph; tables are {self.node_types}.")
        index = self.pkey_index[table]
        if index is None:
            raise SchemaError(f"Table {table!r} has no primary key: its rows cannot be named by id.")
        ids = np.asarray(ids)
        try:
            out = index.get_indexer(ids)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Entity ids cannot be matched with {table}'s primary key: {exc}") from None
        bad = out < 0
        if bad.any():
            first = [v.item() if hasattr(v, "item") else v for v in ids[bad][:5]]
            raise ValueError(
                f"{int(bad.sum())} entity id(s) are not primary-key values of table {table!r} "
                f"(first: {first}). Every row of X must name an existing {table} row."
            )
        return out.astype(np.int64)

    def cutoff_rank(self, cutoffs_ns) -> np.ndarray:
        """How many distinct node times are at or before each cutoff (int64, shape ``(n,)``).

        A cutoff's identity for random draws: it depends only on the rows visible at the cutoff
        and is the same when every time is shifted by one amount, where the cutoff itself (ns
        since the epoch) is not.
        """
        times = self._cache.get("distinct_times")
        if times is None:
            parts = [t[t != NEVER] for t in self.node_time.values() if t is not None]
            times = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
            self._cache["distinct_times"] = times
        return np.searchsorted(times, np.asarray(cutoffs_ns, dtype=np.int64), side="right").astype(np.int64)

    def edge_index(self, edge_type: EdgeType) -> np.ndarray:
        """COO edges of ``edge_type`` as int64 ``(2, E)``: row 0 the src nodes, row 1 the dst nodes."""
        rowptr, col = self.adj[edge_type]
        dst = np.repeat(np.arange(len(rowptr) - 1, dtype=np.int64), np.diff(rowptr))
        return np.stack([col, dst])

    def edge_time(self, edge_type: EdgeType) -> np.ndarray | None:
        """Times of the src node of each CSR entry of ``edge_type`` (aligned with ``col``), or None."""
        t = self.node_time[edge_type[0]]
        return None if t is None else t[self.adj[edge_type][1]]


def _times_ns(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype="datetime64[ns]")
    out = values.view(np.int64).copy()
    out[np.isnat(values)] = NEVER
    return out


def _csr(dst: np.ndarray, src: np.ndarray, n_dst: int, src_time: np.ndarray | None):
    """CSR over dst of (src, dst) pairs, each row sorted by (src time, src index)."""
    keys = (src, src_time[src], dst) if src_time is not None else (src, dst)
    order = np.lexsort(keys)
    col = src[order].astype(np.int64)
    counts = np.bincount(dst, minlength=n_dst)
    rowptr = np.zeros(n_dst + 1, dtype=np.int64)
    np.cumsum(counts, out=rowptr[1:])
    return rowptr, col


def build_graph(db: Database) -> RelationalGraph:
    """The :class:`RelationalGraph` of ``db``, cached in ``db.cache``.

    Parameters
    ----------
    db : Database

    Returns
    -------
    RelationalGraph

    Examples
    --------
    >>> g = build_graph(db)  # doctest: +SKIP
    >>> rowptr, col = g.adj[("orders", "f2p_user_id", "users")]  # doctest: +SKIP
    >>> col[rowptr[3]:rowptr[4]]   # the orders of user node 3, oldest first  # doctest: +SKIP
    """
    if not isinstance(db, Database):
        raise TypeError(f"build_graph needs a skrel Database, got {type(db).__name__}.")
    key = ("skrel.graph.structure",)
    cached = db.cache.get(key)
    if cached is not None:
        return cached
    node_types = list(db.table_names)
    num_nodes, node_time, pkey_index, node_key = {}, {}, {}, {}
    for name in node_types:
        t = db[name]
        num_nodes[name] = len(t.df)
        node_time[name] = _times_ns(t.df[t.time_col]) if t.time_col is not None else None
        if t.pkey is not None:
            pkey_index[name] = pd.Index(t.df[t.pkey].to_numpy())
            node_key[name] = node_keys(t.df[t.pkey].to_numpy())
        else:
            pkey_index[name] = None
            node_key[name] = _mix64(np.arange(len(t.df), dtype=np.uint64) ^ np.uint64(0xA5A5A5A5))
    edge_types, adj = [], {}
    for child in node_types:
        t = db[child]
        for col_name, parent in t.fkeys.items():
            parent_idx = pkey_index[parent].get_indexer(t.df[col_name].to_numpy())
            child_idx = np.flatnonzero(parent_idx >= 0).astype(np.int64)
            parent_idx = parent_idx[child_idx].astype(np.int64)
            fwd = (child, f"f2p_{col_name}", parent)
            rev = (parent, f"rev_f2p_{col_name}", child)
            adj[fwd] = _csr(parent_idx, child_idx, num_nodes[parent], node_time[child])
            adj[rev] = _csr(child_idx, parent_idx, num_nodes[child], node_time[parent])
            edge_types += [fwd, rev]
    graph = RelationalGraph(node_types, num_nodes, node_time, pkey_index, node_key, edge_types, adj, db.fingerprint)
    db.cache[key] = graph
    return graph


# ---------------------------------------------------------------------- features
@dataclass(eq=False)
class FeatureSpec:
    """How to turn each table's columns into a ``torch_frame.TensorFrame``; fitted on one database.

    Attributes
    ----------
    stypes : dict of str to dict of str to torch_frame.stype
        Per table, feature column -> semantic type (primary and foreign keys excluded; a table
        without feature columns gets a constant numerical column ``"__const__"``).
    col_stats : dict of str to dict
        Per table, torch_frame column statistics (means, std, category vocabularies, ...),
        computed on the database the spec was inferred from and reused for every other database.
    col_names_dict : dict of str to dict of torch_frame.stype to list of str
        Per table, the TensorFrame's column layout (what per-table encoders are built from).
    text_embedder : callable
        The embedder of ``text_embedded`` columns.
    key : str
        Identity of the spec, for caches.
    """

    stypes: dict
    col_stats: dict
    col_names_dict: dict
    text_embedder: object
    key: str


_CONST = "__const__"


class UnsupportedColumnWarning(UserWarning):
    """A column the graph families cannot encode (list- or dict-valued cells) is left out."""


def _is_nested(series: pd.Series) -> bool:
    """Whether an object column holds containers (lists, tuples, sets, dicts, arrays) in its cells."""
    if series.dtype != object:
        return False
    values = series.dropna()
    values = values.iloc[:1000] if len(values) > 1000 else values
    return any(isinstance(v, (list, tuple, set, frozenset, dict, np.ndarray)) for v in values)


def _numeric_values(series: pd.Series) -> pd.Series:
    """A numerical feature column as float64, with +-inf treated as missing.

    Timedeltas become seconds; booleans 0/1. ``inf`` carries no usable magnitude for a
    standardised encoder (it makes the column's mean and std infinite, then every output NaN), so
    it is missing, exactly like ``NaN``.
    """
    if pd.api.types.is_timedelta64_dtype(series.dtype):
        values = series.dt.total_seconds()
    elif pd.api.types.is_bool_dtype(series.dtype):
        values = series.astype("float64")
    else:
        values = pd.to_numeric(series, errors="coerce").astype("float64")
    return values.where(np.isfinite(values.to_numpy()))


def _feature_frame(db: Database, table: str, stypes: dict) -> pd.DataFrame:
    """The feature columns of ``table`` ready for torch_frame (a new frame; ``db`` is never modified)."""
    import torch_frame

    t = db[table]
    if list(stypes) == [_CONST]:
        return pd.DataFrame({_CONST: np.ones(len(t.df))})
    missing = [c for c in stypes if c not in t.df.columns]
    if missing:
        raise SchemaError(
            f"Table {table!r} lacks feature column(s) {missing} the model was fitted with; "
            "predict on a database with the training schema."
        )
    out = {}
    for col, st in stypes.items():
        series = t.df[col]
        if pd.api.types.is_float_dtype(series.dtype) and np.isinf(series.to_numpy(dtype="float64",
                                                                               na_value=np.nan)).any():
            series = series.where(np.isfinite(series.to_numpy(dtype="float64", na_value=np.nan)))
        if st == torch_frame.numerical:
            series = _numeric_values(series)
        elif st == torch_frame.text_embedded:
            series = series.astype("string").fillna("").astype(object)
        elif _is_nested(series) and st != torch_frame.multicategorical:
            raise SchemaError(
                f"Column {table}.{col} holds list-like values but the model encodes it as {st.value}; "
                "predict on a database with the training schema."
            )
        out[col] = series
    return pd.DataFrame(out, index=t.df.index)


def _infer_stypes(db: Database, table: str, overrides: dict | None) -> dict:
    import torch_frame
    from torch_frame.utils import infer_df_stype

    t = db[table]
    skip = {t.pkey, *t.fkeys}
    cols = [c for c in t.df.columns if c not in skip and not (overrides and c in overrides)]
    # Decided here, not by torch_frame's inference: timedeltas are durations (seconds), nested
    # values (lists, dicts) have no encoder in the graph families and are left out, loudly, and
    # pandas category columns are categorical.
    fixed = {}
    nested = []
    for c in cols:
        series = t.df[c]
        if pd.api.types.is_timedelta64_dtype(series.dtype):
            fixed[c] = torch_frame.numerical if series.notna().any() else None
        elif pd.api.types.is_numeric_dtype(series.dtype) and not np.isfinite(series.to_numpy(dtype="float64",
                                                                                           na_value=np.nan)).any():
            fixed[c] = None  # all missing or infinite: nothing to learn from
        elif _is_nested(series):
            fixed[c] = None
            nested.append(c)
        elif isinstance(series.dtype, pd.CategoricalDtype):
            # the user declared it categorical; torch_frame's inference would read strings as text
            fixed[c] = torch_frame.categorical if series.notna().any() else None
    if nested:
        warnings.warn(
            f"Column(s) {', '.join(f'{table}.{c}' for c in nested)} hold list- or dict-valued cells, which "
            "the graph families cannot encode; they are left out. Pass stypes={table: {column: 'multicategorical'}} "
            "for lists of categories.",
            UnsupportedColumnWarning,
            stacklevel=4,
        )
    rest = [c for c in cols if c not in fixed]
    sample = t.df[rest]
    if len(sample) > 1000:
        sample = sample.sample(1000, random_state=0)
    infinite = [c for c in rest if pd.api.types.is_float_dtype(sample[c].dtype) and np.isinf(sample[c]).any()]
    if infinite:  # +-inf is missing for inference too (else the type would depend on inf vs NaN)
        sample = sample.assign(**{c: sample[c].where(np.isfinite(sample[c])) for c in infinite})
    inferred = infer_df_stype(sample) if rest else {}
    for col, st in list(inferred.items()):
        if st in (torch_frame.embedding, torch_frame.sequence_numerical, torch_frame.text_tokenized):
            inferred[col] = torch_frame.multicategorical if st == torch_frame.embedding else None
    inferred.update(fixed)
    inferred = {c: s for c, s in inferred.items() if s is not None}
    for col, st in (overrides or {}).items():
        if col not in t.df.columns:
            raise SchemaError(f"stypes names column {table}.{col}, which does not exist.")
        if col in skip:
            raise SchemaError(f"stypes names {table}.{col}, a key column; keys are edges, not features.")
        if st is None:
            inferred.pop(col, None)
        else:
            inferred[col] = torch_frame.stype(st)
    # Keep the table's column order: the TensorFrame layout must not depend on dict history.
    ordered = {c: inferred[c] for c in t.df.columns if c in inferred}
    return ordered or {_CONST: torch_frame.numerical}


MAX_CATEGORIES = 1000
"""Vocabulary cap of categorical columns: the most frequent categories keep their own embedding,
rarer ones are encoded as missing. Type inference looks at a 1000-row sample, so a column can be
typed categorical yet hold a category per row over the whole table; uncapped, its embedding
table alone would hold ``rows x channels`` parameters."""


def _cap_categories(col_stats: dict) -> bool:
    """Keep the :data:`MAX_CATEGORIES` most frequent categories of each (multi)categorical column
    of one table's statistics, in place; True if any vocabulary was cut."""
    from torch_frame.data.stats import StatType

    cut = False
    for stats in col_stats.values():
        for kind in (StatType.COUNT, StatType.MULTI_COUNT):
            if kind in stats and len(stats[kind][0]) > MAX_CATEGORIES:
                values, counts = stats[kind]  # sorted by count, most frequent first
                stats[kind] = (list(values[:MAX_CATEGORIES]), list(counts[:MAX_CATEGORIES]))
                cut = True
    return cut


def _text_cfg(stypes: dict, embedder):
    import torch_frame
    from torch_frame.config.text_embedder import TextEmbedderConfig

    if any(s == torch_frame.text_embedded for s in stypes.values()):
        return TextEmbedderConfig(text_embedder=embedder, batch_size=None)
    return None


def _col_stats(df: pd.DataFrame, stypes: dict) -> dict:
    """torch_frame's column statistics of ``df``, the numerical ones vectorised.

    Same values as ``torch_frame.data.stats.compute_col_stats`` (mean, std and quantiles of the
    finite values), whose numerical path flattens each column with ``np.hstack`` over its
    elements, one Python object per cell: its cost grows with rows times columns in the
    interpreter, where numpy's reductions here stay vectorised (the ``wide`` database of
    ``benchmarks/scale.py``, hundreds of thousands of rows by tens of columns, is where it showed).
    """
    import torch_frame
    from torch_frame.data.stats import StatType, compute_col_stats

    stats = {}
    for col, st in stypes.items():
        if st != torch_frame.numerical:
            stats[col] = compute_col_stats(df[col], st)
            continue
        values = df[col].to_numpy(dtype="float64", na_value=np.nan)
        values = values[np.isfinite(values)]
        if values.size == 0:
            stats[col] = {StatType.MEAN: np.nan, StatType.STD: np.nan, StatType.QUANTILES: [np.nan] * 5}
        else:
            stats[col] = {StatType.MEAN: np.mean(values).item(), StatType.STD: np.std(values).item(),
                          StatType.QUANTILES: np.quantile(values, q=[0, 0.25, 0.5, 0.75, 1]).tolist()}
    return stats


def _materialize_table(db, table, stypes, embedder, col_stats=None):
    from torch_frame.data import Dataset

    df = _feature_frame(db, table, stypes)
    ds = Dataset(df=df, col_to_stype=dict(stypes), col_to_text_embedder_cfg=_text_cfg(stypes, embedder))
    ds.materialize(col_stats=col_stats if col_stats is not None else _col_stats(df, stypes))
    return ds.tensor_frame, ds.col_stats


def feature_spec(db: Database, text_embedder=None, stypes: dict | None = None, *, upto=None) -> FeatureSpec:
    """Infer each table's column types and statistics from the rows of ``db`` visible at ``upto``
    (cached in ``db.cache``).

    Point in time: a model fitted on rows whose latest cutoff is ``t`` must not depend on rows
    dated after ``t``, so the estimators pass ``upto=t``: column types, means, standard
    deviations, quantiles and category vocabularies come from ``db.upto(t)`` only (tables
    without a time column whole; rows with a missing time never). The statistics are then
    applied to every row (:func:`materialize`); a category first seen after ``t`` is encoded as
    missing, like any category unseen at fit time.

    The database's own tensor frames (every row) are materialised on the way and cached, so
    ``materialize(db, feature_spec(db, upto=t))`` costs nothing more.

    Parameters
    ----------
    db : Database
    text_embedder : callable, optional
        ``list[str] -> Tensor (n, dim)`` for text columns; :class:`HashingTextEmbedder` by default.
    stypes : dict, optional
        Overrides ``{table: {column: stype name or None}}`` (``None`` drops the column).
    upto : timestamp, optional
        The latest training cutoff: only rows visible at it inform the spec. None: every row.

    Returns
    -------
    FeatureSpec
    """
    embedder = text_embedder if text_embedder is not None else HashingTextEmbedder()
    overrides = {t: dict(v) for t, v in (stypes or {}).items()}
    unknown = sorted(set(overrides) - set(db.table_names))
    if unknown:
        raise SchemaError(f"stypes names unknown table(s) {unknown}; tables are {db.table_names}.")
    h = hashlib.blake2b(digest_size=16)
    h.update(db.fingerprint.encode())
    h.update(embedder_key(embedder).encode())
    h.update(repr(sorted((t, sorted((c, str(s)) for c, s in v.items())) for t, v in overrides.items())).encode())
    visible = db if upto is None else db.upto(upto)
    if upto is not None:
        h.update(b"upto" + str(pd.Timestamp(upto).value).encode())
    key = h.hexdigest()
    cache_key = ("skrel.graph.spec", key)
    if cache_key in db.cache:
        return db.cache[cache_key]
    spec_stypes, col_stats, col_names, tfs = {}, {}, {}, {}
    for table in db.table_names:
        st = _infer_stypes(visible, table, overrides.get(table))
        stats = _col_stats(_feature_frame(visible, table, st), st)
        _cap_categories(stats)
        # every row of db encoded with the statistics of the visible ones (materialize reuses it)
        tf, stats = _materialize_table(db, table, st, embedder, col_stats=stats)
        spec_stypes[table], col_stats[table], col_names[table], tfs[table] = st, stats, tf.col_names_dict, tf
    spec = FeatureSpec(spec_stypes, col_stats, col_names, embedder, key)
    db.cache[cache_key] = spec
    db.cache[("skrel.graph.tf", key)] = tfs
    return spec


def materialize(db: Database, spec: FeatureSpec) -> dict:
    """Each table of ``db`` as a ``torch_frame.TensorFrame`` encoded with ``spec``'s statistics.

    Cached in ``db.cache`` per spec. Row ``i`` of table ``t``'s frame is node ``i`` of type ``t``.
    Categories unseen when the spec was fitted are encoded as missing.

    Returns
    -------
    dict of str to TensorFrame
    """
    cache_key = ("skrel.graph.tf", spec.key)
    if cache_key in db.cache:
        return db.cache[cache_key]
    missing = sorted(set(spec.stypes) - set(db.table_names))
    if missing:
        raise SchemaError(f"The database lacks table(s) {missing} the model was fitted with.")
    tfs = {}
    for table, st in spec.stypes.items():
        tf, _ = _materialize_table(db, table, st, spec.text_embedder, col_stats=spec.col_stats[table])
        tfs[table] = tf
    db.cache[cache_key] = tfs
    return tfs


def to_hetero_data(graph: RelationalGraph, tf_dict: dict | None = None):
    """The graph as a PyG ``HeteroData``: ``num_nodes``, ``time`` (int64 ns, timed tables),
    ``tf`` (when ``tf_dict`` is given) per node type and ``edge_index`` per edge type."""
    import torch
    from torch_geometric.data import HeteroData

    data = HeteroData()
    for t in graph.node_types:
        data[t].num_nodes = graph.num_nodes[t]
        if graph.node_time[t] is not None:
            data[t].time = torch.from_numpy(graph.node_time[t])
        if tf_dict is not None:
            data[t].tf = tf_dict[t]
    for et in graph.edge_types:
        data[et].edge_index = torch.from_numpy(graph.edge_index(et))
    return data


RelationalGraph.to_hetero_data = to_hetero_data
