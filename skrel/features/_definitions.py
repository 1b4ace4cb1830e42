"""Feature definitions of point-in-time deep feature synthesis, built from the schema.

The definitions mirror featuretools' (``featuretools.synthesis.deep_feature_synthesis``) for the
subset skrel supports: identity features, direct (forward) features, and aggregation features over
backward relationship paths with the primitives of :data:`AGG_PRIMITIVES`; no transform primitives
and no ``where`` clauses. :func:`build_features` walks the schema with featuretools' algorithm
(same traversal order, depth rules, stacking rules and input types), so its names are the names
``featuretools.dfs(..., trans_primitives=[])`` gives. Windowed copies of the entity's own
aggregations (featuretools' ``use_previous``) are added on top.

Both engines evaluate the same definitions: :mod:`skrel.features._featuretools` (the reference)
and :mod:`skrel.features._sql` (compiled to SQL, run by the DuckDB and Spark engines).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from ..data import Database, SchemaError

__all__ = [
    "AGG_PRIMITIVES",
    "Primitive",
    "Column",
    "Relationship",
    "Schema",
    "Identity",
    "Direct",
    "Aggregation",
    "infer_schema",
    "build_features",
    "window_days",
    "used_columns",
    "as_seconds",
]


def as_seconds(s: pd.Series) -> pd.Series:
    """Durations (``timedelta64``) as float seconds; other series unchanged."""
    if pd.api.types.is_timedelta64_dtype(s.dtype):
        return s.dt.total_seconds()
    return s

@dataclass(frozen=True)
class Primitive:
    """One aggregation primitive, defined once: the definitions, the SQL dialects and the
    featuretools engine all read it.

    Attributes
    ----------
    name : str
        featuretools' name (``"num_unique"``); features are named ``NAME.upper()(...)``.
    input : str
        Semantic tag of the input column (``"numeric"``, ``"category"``, ``"index"``: the
        child's primary key, ``"time_index"``: its time column).
    output : str
        ``"numeric"``, or ``"input"`` (the input's type: ``mode``).
    default : float
        Value for a row with nothing to aggregate.
    stack_on_self : bool
        May the primitive aggregate a feature made by itself?
    stack_on_exclude : tuple of str
        Primitives whose features it may not aggregate.
    featuretools : str
        Class name in ``featuretools.primitives``.
    since_cutoff : bool
        The SQL aggregate is a time in nanoseconds and the feature is the seconds from it to
        the cutoff (``time_since_last``).

    Each SQL dialect spells the primitive's aggregate in its own table
    (:attr:`skrel.features._sql.Dialect.aggregates`, keyed by ``name``).
    """

    name: str
    input: str
    output: str
    default: float
    stack_on_self: bool
    stack_on_exclude: tuple
    featuretools: str
    since_cutoff: bool = False


_PRIMITIVES = [
    Primitive("count", "index", "numeric", 0.0, False, (), "Count"),
    Primitive("max", "numeric", "numeric", np.nan, False, (), "Max"),
    Primitive("mean", "numeric", "numeric", np.nan, True, (), "Mean"),
    Primitive("min", "numeric", "numeric", np.nan, False, (), "Min"),
    # the most frequent value, ties to the smallest (pandas' Series.mode()[0])
    Primitive("mode", "category", "input", np.nan, True, (), "Mode"),
    # missing with no rows, 0 with rows whose values are all missing (featuretools')
    Primitive("num_unique", "category", "numeric", np.nan, False, (), "NumUnique"),
    Primitive("std", "numeric", "numeric", np.nan, False, (), "Std"),
    Primitive("sum", "numeric", "numeric", 0.0, False, ("count",), "Sum"),
    # the value in the last row (by time, then primary key; by position without a time column)
    Primitive("time_since_last", "time_index", "numeric", np.nan, True, (), "TimeSinceLast", since_cutoff=True),
]

#: Aggregation primitives by featuretools' name.
AGG_PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _PRIMITIVES}


# ---------------------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class Column:
    """A column as deep feature synthesis sees it.

    ``logical`` is one of ``"numeric"``, ``"categorical"``, ``"boolean"`` or ``"datetime"``;
    ``tags`` are featuretools' semantic tags (``numeric``, ``category``, ``index``,
    ``foreign_key``, ``time_index``).
    """

    table: str
    name: str
    logical: str
    tags: frozenset


@dataclass(frozen=True)
class Relationship:
    """``child.fk -> parent.pk``."""

    child: str
    fk: str
    parent: str
    pk: str


@dataclass
class Schema:
    """Tables, typed columns and relationships used by deep feature synthesis."""

    tables: dict[str, list[Column]]
    pkeys: dict[str, str]
    time_cols: dict[str, str | None]
    relationships: list[Relationship]
    counts: dict = field(default_factory=dict)

    def column(self, table: str, name: str) -> Column:
        for c in self.tables[table]:
            if c.name == name:
                return c
        raise KeyError(f"{table}.{name}")

    def forward(self, table: str) -> list[Relationship]:
        return [r for r in self.relationships if r.child == table]

    def backward(self, table: str) -> list[Relationship]:
        return [r for r in self.relationships if r.parent == table]

    def backward_deep(self, table: str, _seen: tuple = ()) -> list[tuple[str, tuple[Relationship, ...]]]:
        """Backward paths from ``table``: ``(last table, relationships)``, depth first.

        A path uses each relationship at most once, so self-references (``employees.manager
        -> employees``) and cycles of foreign keys give finite paths: a self-reference is walked
        once (an employee's direct reports), a cycle once around.
        """
        out = []
        for r in self.backward(table):
            if r in _seen:
                continue
            out.append((r.child, (r,)))
            for sub, path in self.backward_deep(r.child, _seen + (r,)):
                out.append((sub, (r, *path)))
        return out

    def is_unique(self, rel: Relationship) -> bool:
        return sum(r.parent == rel.parent for r in self.forward(rel.child)) == 1

    def n_forward_paths(self, start: str, end: str, limit: int = 2, _seen: frozenset = frozenset()) -> int:
        """Number of forward paths from ``start`` to ``end`` (counting stops at ``limit``; a
        path visits each table at most once, so foreign-key cycles end)."""
        n = 0
        seen = _seen | {start}
        for r in self.forward(start):
            if r.parent == end:
                n += 1
            elif r.parent not in seen:
                n += self.n_forward_paths(r.parent, end, limit, seen)
            if n >= limit:
                return n
        return n

    def signature(self) -> tuple:
        return (
            tuple((t, tuple((c.name, c.logical, tuple(sorted(c.tags))) for c in cols))
                  for t, cols in self.tables.items()),
            tuple(sorted(self.pkeys.items())),
            tuple(sorted((k, v or "") for k, v in self.time_cols.items())),
            tuple((r.child, r.fk, r.parent, r.pk) for r in self.relationships),
        )


_CONTAINERS = (list, tuple, set, frozenset, dict, np.ndarray)


def _object_kind(s: pd.Series) -> str:
    """``"boolean"``, ``"container"`` (lists, arrays, dicts: not usable) or ``"string"``."""
    values = s.dropna() if s.dtype != object else s[s.map(lambda v: isinstance(v, _CONTAINERS) or pd.notna(v))]
    if len(values) and isinstance(values.iloc[0], _CONTAINERS):
        return "container"
    if len(values) and all(isinstance(v, (bool, np.bool_)) for v in values.iloc[:1000]) and values.map(
        lambda v: isinstance(v, (bool, np.bool_))
    ).all():
        return "boolean"
    return "string"


def _is_file(tab) -> bool:
    from ..data.files import FileTable

    return isinstance(tab, FileTable)


def _arrow_kind(t) -> str:
    """:func:`_object_kind` of a file table's column, from its Arrow type."""
    import pyarrow as pa

    if pa.types.is_nested(t):
        return "container"
    if pa.types.is_boolean(t):
        return "boolean"
    return "string"


def infer_schema(
    db: Database,
    entity_table: str,
    tables: Iterable[str] | None = None,
    ignore_columns: dict | None = None,
    max_categories: int | float = 0.5,
) -> Schema:
    """Type the columns of ``db`` for deep feature synthesis.

    Parameters
    ----------
    db : Database
    entity_table : str
    tables : list of str, optional
        Tables to use (default: all). The entity table is always used. Relationships to or from
        a table not used are ignored.
    ignore_columns : dict of str to list of str, optional
        Columns not to use, per table. Primary keys, foreign keys and time columns cannot be
        ignored.
    max_categories : int or float, default=0.5
        A string column is categorical when its number of distinct values is at most this
        (an int), or at most this fraction of its non-missing values (a float in (0, 1]);
        other string columns (names, free text) are not used.

    Returns
    -------
    Schema
        Column types follow featuretools' semantic tags: numbers are ``numeric``; strings are
        ``category`` (or unused); booleans and datetimes are neither; the primary key is
        ``index``; the time column is ``time_index``; foreign keys are ``foreign_key`` plus
        ``numeric`` or ``category`` after their type.
    """
    if tables is None:
        used = list(db.table_names)
    else:
        used = list(tables)
        unknown = [t for t in used if t not in db]
        if unknown:
            raise SchemaError(f"tables names unknown table(s) {unknown}; tables are {db.table_names}.")
        if entity_table not in used:
            used.append(entity_table)
        used = [t for t in db.table_names if t in set(used)]
    ignore_columns = dict(ignore_columns or {})
    for t, cols in ignore_columns.items():
        if t not in db:
            raise SchemaError(f"ignore_columns names unknown table {t!r}; tables are {db.table_names}.")
        tab = db[t]
        keys = {tab.pkey, tab.time_col, *tab.fkeys} - {None}
        bad = [c for c in cols if c in keys]
        if bad:
            raise SchemaError(
                f"ignore_columns[{t!r}] names key or time column(s) {bad}; these define the relationships and "
                "cannot be ignored (drop the table with `tables` instead)."
            )
        columns = tab.columns if _is_file(tab) else list(tab.df.columns)
        missing = [c for c in cols if c not in columns]
        if missing:
            raise SchemaError(
                f"ignore_columns[{t!r}] names unknown column(s) {missing}; columns are {columns}."
            )
    out: dict[str, list[Column]] = {}
    pkeys: dict[str, str] = {}
    time_cols: dict[str, str | None] = {}
    for name in used:
        tab = db[name]
        if tab.pkey is None:
            if name == entity_table:
                raise SchemaError(f"Entity table {name!r} has no primary key.")
            # featuretools needs an index on every dataframe; a table without one is left out.
            continue
        pkeys[name] = tab.pkey
        time_cols[name] = tab.time_col
        skip = set(ignore_columns.get(name, ()))
        cols = []
        in_file = _is_file(tab)  # a table that stays in its file: types from its schema, counts by SQL
        frame = tab.schema_frame if in_file else tab.df
        for col in frame.columns:
            if col in skip:
                continue
            s = frame[col]
            dtype = s.dtype
            if dtype != object:
                kind = None
            elif in_file:
                kind = _arrow_kind(tab.arrow_type(col))
            else:
                kind = _object_kind(s)
            if pd.api.types.is_bool_dtype(dtype):
                logical = "boolean"
            elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
                logical = "numeric"  # durations count in seconds (see the engines)
            elif pd.api.types.is_datetime64_any_dtype(dtype):
                logical = "datetime"
            elif kind == "boolean":
                logical = "boolean"
            elif kind == "container":
                if col in (tab.pkey, tab.time_col, *tab.fkeys):
                    raise SchemaError(f"Key column {name}.{col} holds lists or arrays; keys must be numbers or strings.")
                warnings.warn(
                    f"Column {name}.{col} holds lists, arrays or dicts, which deep feature synthesis cannot use; "
                    f"it is ignored (pass ignore_columns={{{name!r}: [{col!r}]}} to silence this, or explode it into "
                    "a child table).",
                    UserWarning,
                    stacklevel=3,
                )
                continue
            else:
                logical = "categorical"
            tags: set[str] = set()
            if col == tab.pkey:
                tags = {"index"}
            elif col == tab.time_col:
                tags = {"time_index"}
            elif col in tab.fkeys:
                if logical not in ("numeric", "categorical"):
                    raise SchemaError(
                        f"Foreign key {name}.{col} has dtype {dtype}; deep feature synthesis needs numbers or strings."
                    )
                tags = {"foreign_key", "numeric" if logical == "numeric" else "category"}
            elif logical == "numeric":
                tags = {"numeric"}
            elif logical == "categorical":
                if in_file:
                    n_unique, n_values = tab.string_stats(col)
                else:
                    nonnull = s.dropna()
                    n_unique, n_values = nonnull.astype(str).nunique(), len(nonnull)
                limit = max_categories if isinstance(max_categories, (int, np.integer)) and not isinstance(
                    max_categories, bool
                ) else max_categories * n_values
                if n_unique == 0 or n_unique > limit:
                    continue
                tags = {"category"}
            cols.append(Column(name, col, logical, frozenset(tags)))
        out[name] = cols
    rels = []
    for name in out:
        for fk, parent in db[name].fkeys.items():
            if parent in out and any(c.name == fk for c in out[name]):
                rels.append(Relationship(name, fk, parent, pkeys[parent]))
    return Schema(out, pkeys, time_cols, rels)


# ------------------------------------------------------------------------------------- features
def _strip(logical: str, tags: frozenset, keep_fk: bool) -> frozenset:
    """featuretools' ``FeatureBase.column_schema`` for features that inherit their base's type."""
    tags = set(tags)
    if "time_index" in tags:
        tags.discard("time_index")
    elif "index" in tags:
        tags.discard("index")
        if logical == "numeric":
            tags.add("numeric")
        if logical == "categorical":
            tags.add("category")
    if not keep_fk:
        tags.discard("foreign_key")
    return frozenset(tags)


class Feature:
    """Base class of feature definitions (immutable; compared by name and table)."""

    table: str

    @property
    def name(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def key(self) -> tuple:
        """What the feature computes (not its name: a user's column may be named like a
        generated feature, e.g. ``"COUNT(orders)"``, and both are kept)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def __hash__(self):
        return hash(self.key())

    def __eq__(self, other):
        return isinstance(other, Feature) and self.key() == other.key()

    def __repr__(self):
        return f"<{type(self).__name__} {self.table}: {self.name}>"

    @property
    def default(self) -> float:
        return np.nan

    def dependencies(self) -> list["Feature"]:
        return []

    def all_dependencies(self) -> list["Feature"]:
        out = []
        for d in self.dependencies():
            out.append(d)
            out.extend(d.all_dependencies())
        return out


class Identity(Feature):
    """A column of ``table``."""

    def __init__(self, column: Column):
        self.column = column
        self.table = column.table
        self.logical = column.logical
        self.tags = column.tags
        self.depth = 0

    @property
    def name(self) -> str:
        return self.column.name

    def key(self) -> tuple:
        return ("identity", self.table, self.column.name)

    def root_primitive(self):
        return None


class Direct(Feature):
    """A feature of the parent row, copied to the child row through ``rel`` (``child.fk -> parent``)."""

    def __init__(self, base: Feature, rel: Relationship, unique: bool):
        self.base = base
        self.rel = rel
        self.table = rel.child
        self.unique = unique
        self.logical = base.logical
        self.tags = base.tags  # featuretools' DirectFeature keeps its base's schema, tags included
        self.depth = base.depth + 1

    @property
    def name(self) -> str:
        prefix = self.rel.parent if self.unique else f"{self.rel.parent}[{self.rel.fk}]"
        return f"{prefix}.{self.base.name}"

    @property
    def default(self) -> float:
        return self.base.default

    def key(self) -> tuple:
        return ("direct", self.rel, self.base.key())

    def dependencies(self):
        return [self.base]

    def root_primitive(self):
        return self.base.root_primitive()


class Aggregation(Feature):
    """``primitive`` over the rows of the last table of ``path`` related to the ``table`` row.

    ``path`` is a tuple of relationships walked backward from ``table`` (each hop from parent to
    child); ``window`` (days) keeps only rows dated in ``[cutoff - window, cutoff]``
    (featuretools' ``use_previous``).
    """

    def __init__(self, primitive: str, base: Feature, table: str, path: tuple, path_name: str,
                 window: int | None = None):
        self.primitive = primitive
        self.base = base
        self.table = table
        self.path = tuple(path)
        self.path_name = path_name
        self.window = window
        if AGG_PRIMITIVES[primitive].output == "input":
            self.logical = base.logical
            self.tags = _strip(base.logical, base.tags, keep_fk=False)
        else:
            self.logical = "numeric"
            self.tags = frozenset({"numeric"})
        self.depth = base.depth + 1

    @property
    def spec(self) -> Primitive:
        """The primitive's one definition (:data:`AGG_PRIMITIVES`)."""
        return AGG_PRIMITIVES[self.primitive]

    @property
    def child(self) -> str:
        return self.path[-1].child

    @property
    def name(self) -> str:
        window = f", Last {self.window} Days" if self.window is not None else ""
        if self.spec.input == "index":
            return f"COUNT({self.path_name}{window})"
        return f"{self.primitive.upper()}({self.path_name}.{self.base.name}{window})"

    @property
    def default(self) -> float:
        return AGG_PRIMITIVES[self.primitive].default

    def key(self) -> tuple:
        return ("aggregation", self.primitive, self.table, self.path, self.window, self.base.key())

    def dependencies(self):
        return [self.base]

    def root_primitive(self):
        return self.primitive

    def with_window(self, days: int) -> "Aggregation":
        return Aggregation(self.primitive, self.base, self.table, self.path, self.path_name, days)


def _matches(f: Feature, input_type: str) -> bool:
    if input_type == "time_index":
        return f.logical == "datetime" and "time_index" in f.tags
    return input_type in f.tags


def _can_stack(primitive: str, f: Feature) -> bool:
    """featuretools' ``can_stack_primitive_on_inputs`` for the primitives of AGG_PRIMITIVES."""
    spec = AGG_PRIMITIVES[primitive]
    root = f.root_primitive()
    if root is None:
        return True
    if not spec.stack_on_self and root == primitive:
        return False
    if root in spec.stack_on_exclude:
        return False
    return True


class _DFS:
    """featuretools' DeepFeatureSynthesis restricted to identity, direct and aggregation features."""

    def __init__(self, schema: Schema, target: str, primitives: list[str], max_depth: int):
        self.schema = schema
        self.target = target
        self.primitives = sorted(primitives)
        self.max_depth = max_depth
        self.all: dict[str, dict[tuple, Feature]] = {}

    def build(self) -> list[Feature]:
        self._run(self.target, (), self.max_depth)
        pk = self.schema.pkeys[self.target]
        feats = [
            f
            for f in self.all[self.target].values()
            if ({"numeric", "category"} & f.tags or f.logical == "boolean")
            and not (isinstance(f, Identity) and f.name == pk)
        ]
        return sorted(feats, key=lambda f: f.depth)

    def _add(self, f: Feature) -> None:
        self.all[f.table].setdefault(f.key(), f)

    def _run(self, table: str, path: tuple, max_depth: int) -> None:
        if max_depth < 0:
            return
        self.all[table] = {}
        for col in self.schema.tables[table]:
            self._add(Identity(col))
        for rel in self.schema.backward(table):
            if rel.child in self.all:
                continue
            self._run(rel.child, path + ((False, rel),), max_depth - 1)
        for child, sub in self.schema.backward_deep(table):
            self._build_agg(table, child, max_depth, sub)
        for rel in self.schema.forward(table):
            if rel.parent in self.all:
                continue
            self._run(rel.parent, path + ((True, rel),), max_depth - 1)
        for rel in self.schema.forward(table):
            self._build_forward(rel, max_depth)

    def _in_path(self, rels: Iterable[Relationship], f: Feature) -> bool:
        """featuretools' ``_feature_in_relationship_path``. It compares table names with the
        relationship's ``child_name`` / ``parent_name``, which carry a ``[fk]`` suffix when two
        tables are linked twice; so, as in featuretools, the key columns of such relationships
        are not excluded."""
        if not isinstance(f, Identity):
            return False
        for r in rels:
            unique = self.schema.is_unique(r)
            child = r.child if unique else f"{r.child}[{r.fk}]"
            parent = r.parent if unique else f"{r.parent}[{r.fk}]"
            if child == f.table and r.fk == f.name:
                return True
            # a self-reference's parent key is also the child's own key, which COUNT reads
            if parent == f.table and r.pk == f.name and r.child != r.parent:
                return True
        return False

    def _features(self, table: str, max_depth: int) -> list[Feature]:
        if max_depth < 0 or table not in self.all:
            return []
        return [f for f in self.all[table].values() if f.depth <= max_depth]

    def _build_forward(self, rel: Relationship, max_depth: int) -> None:
        unique = self.schema.is_unique(rel)
        for f in self._features(rel.parent, max_depth):
            if self._in_path((rel,), f):
                continue
            self._add(Direct(f, rel, unique))

    def _build_agg(self, parent: str, child: str, max_depth: int, path: tuple) -> None:
        if self.schema.n_forward_paths(child, parent) == 1:
            path_name = child
        else:
            path_name = ".".join(r.child if self.schema.is_unique(r) else f"{r.child}[{r.fk}]" for r in path)
        candidates = [
            f
            for f in self._features(child, max_depth - 1)
            if not (isinstance(f, Direct) and f.base.table == parent) and not self._in_path(path, f)
        ]
        candidates.sort(key=lambda f: f.name)  # featuretools sorts matches by unique name
        for prim in self.primitives:
            input_type = AGG_PRIMITIVES[prim].input
            for f in candidates:
                if not _matches(f, input_type):
                    continue
                if {"foreign_key", "numeric"} <= f.tags:
                    continue
                if not _can_stack(prim, f):
                    continue
                self._add(Aggregation(prim, f, parent, path, path_name))


def window_days(w) -> int:
    """A look-back window as a whole number of days (int, ``"30D"``, ``"30 days"`` or a Timedelta)."""
    if isinstance(w, (int, np.integer)) and not isinstance(w, bool):
        days = int(w)
    else:
        try:
            td = pd.Timedelta(w)
        except (ValueError, TypeError):
            raise ValueError(f"windows must be days (int) or Timedelta-like, got {w!r}.") from None
        if td % pd.Timedelta(days=1) != pd.Timedelta(0):
            raise ValueError(f"windows must be whole days, got {w!r}.")
        days = int(td / pd.Timedelta(days=1))
    if days <= 0:
        raise ValueError(f"windows must be positive, got {w!r}.")
    return days


def build_features(schema: Schema, target: str, max_depth: int = 2, primitives: Iterable[str] | None = None,
                   windows: Iterable[int] = ()) -> list[Feature]:
    """The feature definitions of deep feature synthesis for ``target``.

    First the features ``featuretools.dfs(target_dataframe_name=target, agg_primitives=primitives,
    trans_primitives=[], max_depth=max_depth)`` builds, in its order; then, for each window,
    a windowed copy of every aggregation of the target over a table with a time column
    (except ``time_since_last``, which a window does not change where it is defined).
    """
    prims = list(AGG_PRIMITIVES) if primitives is None else list(primitives)
    unknown = [p for p in prims if p not in AGG_PRIMITIVES]
    if unknown:
        raise ValueError(f"Unknown aggregation primitive(s) {unknown}; choose from {sorted(AGG_PRIMITIVES)}.")
    feats = _DFS(schema, target, prims, max_depth).build()
    out = list(feats)
    for days in windows:
        for f in feats:
            if (
                isinstance(f, Aggregation)
                and f.table == target
                and not f.spec.since_cutoff
                and schema.time_cols.get(f.child) is not None
            ):
                out.append(f.with_window(days))
    return out


def used_columns(schema: Schema, features: list[Feature]) -> dict[str, list[str]]:
    """Columns each table needs: keys, time column and the columns features read."""
    need: dict[str, set[str]] = {}

    def add_table(t):
        if t not in need:
            need[t] = {schema.pkeys[t]} | ({schema.time_cols[t]} if schema.time_cols[t] else set())

    stack = list(features)
    while stack:
        f = stack.pop()
        add_table(f.table)
        if isinstance(f, Identity):
            need[f.table].add(f.name)
        elif isinstance(f, Direct):
            need[f.table].add(f.rel.fk)
            add_table(f.rel.parent)
            stack.append(f.base)
        elif isinstance(f, Aggregation):
            for r in f.path:
                add_table(r.child)
                need[r.child].add(r.fk)
            stack.append(f.base)
    return {t: [c.name for c in schema.tables[t] if c.name in cols] for t, cols in need.items()}
