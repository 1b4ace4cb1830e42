"""Deep feature synthesis definitions compiled to one SQL query, in any :class:`~.dialect.Dialect`.

Each distinct (entity, cutoff) pair is a row of a frame table. The entity's row joins the frame
where it is visible (time ``<= cutoff``). Direct features left-join the parent row visible at the
same cutoff; an aggregation joins the rows of its path (an inequality join: each hop visible at
the cutoff and, for a windowed feature, the last hop within the window), evaluates its base
features on them (recursively, at the same cutoff) and groups them back by frame row: one join
and one GROUP BY per (path, window), all primitives together. Aggregations of aggregations read
a static table computed once (see :class:`_Compiler`). A parent's aggregates (a direct feature
such as ``teams.MEAN(players.appearances.x)``) are grouped once per distinct (foreign key,
cutoff) and joined back to the rows that share them.

Semantics are featuretools' (see :mod:`skrel.features._featuretools`): ``count`` and ``sum`` are
0 with nothing to aggregate; ``num_unique`` is missing with no rows and 0 with rows whose values
are all missing; ``std`` is the sample standard deviation; ``mode`` breaks ties by the smallest
value; ``time_since_last`` is seconds from the value in the last row (by time, then primary key)
to the cutoff, at microsecond resolution (pandas' ``Timedelta.total_seconds()``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .._definitions import AGG_PRIMITIVES, Aggregation, Direct, Feature, Identity, Schema, used_columns
from .dialect import Dialect

__all__ = ["compile_features", "query_groups", "plan_engine_queries", "EngineQueries"]

_NS_PER_DAY = 86_400 * 10**9


def _root(f: Feature) -> Identity | None:
    """The column a categorical feature's values come from (through parents and modes)."""
    while not isinstance(f, Identity):
        if isinstance(f, Direct) or (isinstance(f, Aggregation) and f.spec.output == "input"):
            f = f.base
        else:
            return None
    return f


def _seconds(ns: str, dialect: Dialect) -> str:
    """Nanoseconds to seconds as pandas' ``Timedelta.total_seconds()`` (floored to microseconds)."""
    return f"({dialect.int_div(ns, 1000)}) / 1e6"


def _stable(f: Feature) -> bool:
    """Does ``f`` stop changing once every row it reads is visible?"""
    if isinstance(f, Identity):
        return True
    if isinstance(f, Direct):
        return _stable(f.base)
    return not f.spec.since_cutoff and f.window is None and _stable(f.base)


def _has_aggregation(f: Feature) -> bool:
    return isinstance(f, Aggregation) or (isinstance(f, Direct) and _has_aggregation(f.base))


def _since_last(f: Feature) -> bool:
    """Is ``f`` a ``time_since_last`` of stable rows (or a parent's one)? Its value is
    ``cutoff - last``, with ``last`` stable."""
    if isinstance(f, Direct):
        return _since_last(f.base)
    return isinstance(f, Aggregation) and f.spec.since_cutoff and f.window is None and _stable(f.base)


_NEVER = -(2**62)  # "final since always" (no row can change the value)
_ALWAYS = 2**62  # the cutoff of static tables: after every time


class _Compiler:
    """Builds the WITH clauses of the query.

    Static/live split, for aggregations of aggregations. A child row's aggregate over its own
    children (or a parent's) depends on the cutoff, but stops changing at a *final time*: the
    latest time of any row it reads. For such features the compiler computes, once, their values
    with every row visible (the static table) and their final time; a child row joined at a
    cutoff at or after its final time takes the static values, and only the other rows (few:
    those close to the cutoff) are evaluated at the cutoff. Both give the same values; the static
    one skips grouping every (row, child) pair.
    """

    def __init__(self, schema: Schema, table_sql: dict[str, str], columns: dict[str, list[str]],
                 colnames: dict[str, dict[str, str]], dialect: Dialect):
        self.schema = schema
        self.dialect = dialect
        self.colnames = colnames
        self.table_sql = table_sql
        self.columns = columns
        self.ctes: OrderedDict[str, str] = OrderedDict()
        self.refs: dict[str, int] = {}
        self.outputs: dict[str, list[str]] = {}  # the columns of each CTE
        self.static_tables: dict = {}
        self.n = 0

    def col(self, table: str, column: str) -> str:
        """The generated SQL name of a user's column (see :func:`prepare_tables`)."""
        return self.colnames[table][column]

    def alias(self, prefix: str = "a") -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def cte(self, sql: str, columns: list[str]) -> str:
        """A new CTE ``sql`` whose output columns are ``columns``."""
        name = self.alias("q")
        self.ctes[name] = sql
        self.refs[name] = 0
        self.outputs[name] = list(columns)
        return name

    def ref(self, name: str) -> str:
        if name in self.refs:
            self.refs[name] += 1
        return name

    def sql(self, final: str) -> str:
        parts = []
        for name, body in self.ctes.items():
            mat = ""  # DuckDB decides whether to store or re-stream a CTE read twice
            parts.append(f"{name} AS{mat} (\n{body}\n)")
        return "WITH " + ",\n".join(parts) + "\n" + final

    # ------------------------------------------------------------------ helpers
    def _needed(self, table: str, feats: list[Feature]) -> set[str]:
        cols = set()
        for f in feats:
            if isinstance(f, Identity):
                cols.add(f.name)
            elif isinstance(f, Direct):
                cols.add(f.rel.fk)
            elif isinstance(f, Aggregation):
                cols.add(self.schema.pkeys[table])
        return cols

    @staticmethod
    def _greatest(exprs: list[str]) -> str:
        exprs = [e for e in exprs if e != str(_NEVER)]
        if not exprs:
            return str(_NEVER)
        return exprs[0] if len(exprs) == 1 else f"greatest({', '.join(exprs)})"

    # ------------------------------------------------------------------ scopes
    def extend(self, rel: str, ids: list[str], table: str, colmap: dict[str, str], feats: list[Feature],
               static: bool = False):
        """Add the features ``feats`` of ``table`` to relation ``rel`` (one row per ``ids``, columns
        ``__cut`` and ``colmap``'s aliases of the table's columns).

        Returns the new relation, the alias of each feature and, when ``static`` (the cutoff is
        "after everything"), an SQL expression of each feature's final time.
        """
        out: dict[Feature, str] = {}
        fins: dict[Feature, str] = {}
        directs: OrderedDict = OrderedDict()
        aggs: OrderedDict = OrderedDict()
        for f in feats:
            if isinstance(f, Identity):
                out[f] = colmap[f.name]
                fins[f] = str(_NEVER)
            elif isinstance(f, Direct):
                directs.setdefault(f.rel, []).append(f)
            else:
                aggs.setdefault((f.path, f.window), []).append(f)

        for rel_obj, group in directs.items():
            parent = rel_obj.parent
            bases = list(OrderedDict.fromkeys(f.base for f in group))
            tcol = self.schema.time_cols[parent]
            pcols = self._needed(parent, bases) | {self.schema.pkeys[parent]}
            if static and tcol:
                pcols.add(tcol)
            pmap = {c: self.alias() for c in sorted(pcols)}
            select = ", ".join(f"p.{self.col(parent, c)} AS {a}" for c, a in pmap.items())
            cond = f"p.{self.col(parent, rel_obj.pk)} = s.{colmap[rel_obj.fk]}"
            if tcol:
                cond += f" AND p.{self.col(parent, tcol)} <= s.__cut"
            if any(_has_aggregation(b) for b in bases):
                rel, sub, subfins = self._direct_once(rel, colmap[rel_obj.fk], parent, pmap, select, cond, bases,
                                                      static)
            else:
                rel = self.cte(
                    f"SELECT s.*, {select} FROM {self.ref(rel)} s LEFT JOIN {self.table_sql[parent]} p ON {cond}",
                    self.outputs[rel] + list(pmap.values()),
                )
                rel, sub, subfins = self.extend(rel, ids, parent, pmap, bases, static)
            for f in group:
                out[f] = sub[f.base]
                if static:
                    own = f"coalesce({pmap[tcol]}, {_NEVER})" if tcol else str(_NEVER)
                    fins[f] = self._greatest([own, subfins[f.base]])

        if aggs:
            pk_alias = colmap[self.schema.pkeys[table]]
            select = []
            added = []
            joins = []
            seen_fins: set[str] = set()
            for (path, window), group in aggs.items():
                blocks, names, fin_names = self._aggregate(rel, ids, pk_alias, path, window, group, static)
                out.update(names)
                for block, cols in blocks:
                    b = f"b{len(joins)}"
                    for f in cols:
                        a, d = names[f], f.default
                        lit = self.dialect.literal(d)
                        select.append(f"COALESCE({b}.{a}, {lit}) AS {a}" if not np.isnan(d) else f"{b}.{a} AS {a}")
                        added.append(a)
                        if static:
                            fa = fin_names[f]
                            if fa not in seen_fins:
                                seen_fins.add(fa)
                                select.append(f"COALESCE({b}.{fa}, {_NEVER}) AS {fa}")
                                added.append(fa)
                            fins[f] = fa
                    on = " AND ".join(f"s.{c} = {b}.{c}" for c in ids)
                    joins.append(f"LEFT JOIN {self.ref(block)} {b} ON {on}")
            rel = self.cte(f"SELECT s.*, {', '.join(select)} FROM {self.ref(rel)} s {' '.join(joins)}",
                           self.outputs[rel] + added)
        return rel, out, fins

    def _direct_once(self, rel: str, fk_alias: str, parent: str, pmap: dict[str, str], select: str, cond: str,
                     bases: list[Feature], static: bool):
        """Join the parent's features ``bases``, computed once per distinct (foreign key, cutoff).

        A parent's aggregates depend on the parent row and the cutoff only, while ``rel`` has one
        row per (entity, cutoff) and many entities share a parent (players of one team): grouping
        the parent's children once per row of ``rel`` repeats the same work for each of them.
        Returns the new relation (``rel``'s rows and columns, the parent's columns ``pmap`` and
        features), the alias of each feature of ``bases`` and their final times (as
        :meth:`extend`).
        """
        fk, cut = self.alias(), self.alias()
        pairs = self.cte(
            f"SELECT DISTINCT s.{fk_alias} AS {fk}, s.__cut AS __cut, s.__cut AS {cut}, {select} "
            f"FROM {self.ref(rel)} s LEFT JOIN {self.table_sql[parent]} p ON {cond}",
            [fk, "__cut", cut] + list(pmap.values()),
        )
        prel, sub, subfins = self.extend(pairs, [fk, cut], parent, pmap, bases, static)
        excluded = [fk, "__cut", cut]
        out = self.cte(
            f"SELECT s.*, {self.dialect.star_except('d', self.outputs[prel], excluded)} "
            f"FROM {self.ref(rel)} s JOIN {self.ref(prel)} d "
            f"ON s.{fk_alias} IS NOT DISTINCT FROM d.{fk} AND s.__cut = d.{cut}",
            self.outputs[rel] + [c for c in self.outputs[prel] if c not in excluded],
        )
        return out, sub, subfins

    def _path_join(self, rel: str, pk_alias: str, path: tuple, window, last_sql: str | None = None,
                   last_extra: str = "") -> tuple[list[str], list[str]]:
        """JOIN clauses from scope ``s`` along ``path`` (each hop visible at ``s.__cut``), and the
        aliases of the hops' time columns."""
        schema = self.schema
        joins, times = [], []
        prev, prev_pk = "s", pk_alias
        for i, r in enumerate(path):
            a = f"c{i}"
            last = i == len(path) - 1
            src = last_sql if (last and last_sql) else self.table_sql[r.child]
            cond = f"{a}.{self.col(r.child, r.fk)} = {prev}.{prev_pk}"
            tcol = schema.time_cols[r.child]
            if tcol:
                cond += f" AND {a}.{self.col(r.child, tcol)} <= s.__cut"
                times.append(f"{a}.{self.col(r.child, tcol)}")
                if window is not None and last:
                    cond += f" AND {a}.{self.col(r.child, tcol)} >= s.__cut - {int(window) * _NS_PER_DAY}"
            if last and last_extra:
                cond += f" AND {last_extra}"
            joins.append(f"JOIN {src} {a} ON {cond}")
            prev, prev_pk = a, self.col(r.child, schema.pkeys[r.child])
        return joins, times

    def _static_table(self, child: str, bases: list[Feature]):
        """Every row of ``child`` (with a time, if it has a time column) with the values of
        ``bases`` when every row is visible, and ``__fin``, the time after which they stay so."""
        key = (child, tuple(bases))
        if key in self.static_tables:
            return self.static_tables[key]
        schema = self.schema
        tcol = schema.time_cols[child]
        cols = set(self._needed(child, bases)) | {schema.pkeys[child]} | ({tcol} if tcol else set())
        cols |= {r.fk for r in schema.forward(child)} & set(self.columns[child])
        cmap = {c: self.alias() for c in sorted(cols)}
        sel = ", ".join(f"c.{self.col(child, c)} AS {a}" for c, a in cmap.items())
        where = f" WHERE c.{self.col(child, tcol)} IS NOT NULL" if tcol else ""
        rel = self.cte(f"SELECT {sel}, c.__pos AS __pos, CAST({_ALWAYS} AS BIGINT) AS __cut "
                       f"FROM {self.table_sql[child]} c{where}", list(cmap.values()) + ["__pos", "__cut"])
        key_alias = cmap[schema.pkeys[child]]
        rel, names, fins = self.extend(rel, [key_alias], child, cmap, bases, static=True)
        fin = self._greatest([fins[b] for b in bases])
        cols_out = [f"{a} AS {self.col(child, c)}" for c, a in cmap.items()] + ["__pos"]
        values = [f"{names[b]} AS v{i}" for i, b in enumerate(bases)]
        table = self.cte(f"SELECT {', '.join(cols_out + values)}, {fin} AS __fin FROM {self.ref(rel)}",
                         [self.col(child, c) for c in cmap] + ["__pos"] + [f"v{i}" for i in range(len(bases))]
                         + ["__fin"])
        self.static_tables[key] = (table, {b: f"v{i}" for i, b in enumerate(bases)})
        return self.static_tables[key]

    def _aggregate(self, rel: str, ids: list[str], pk_alias: str, path: tuple, window, group: list[Aggregation],
                   static: bool):
        """Aggregations over one path and window: one join (two with the static/live split), one
        GROUP BY."""
        bases = [f.base for f in group if f.spec.input != "index"]
        if not static and any(_has_aggregation(b) for b in bases):
            split = [f for f in group if f.spec.input == "index" or _stable(f.base) or _since_last(f.base)]
            rest = [f for f in group if f not in split]
            blocks, names, fins = self._aggregate_rows(rel, ids, pk_alias, path, window, split, static, True)
            if rest:
                more, more_names, _ = self._aggregate_rows(rel, ids, pk_alias, path, window, rest, static, False)
                blocks += more
                names.update(more_names)
            return blocks, names, fins
        return self._aggregate_rows(rel, ids, pk_alias, path, window, group, static, False)

    def _aggregate_rows(self, rel, ids, pk_alias, path, window, group, static, split):
        schema = self.schema
        child = path[-1].child
        tcol = schema.time_cols[child]
        pkc = schema.pkeys[child]
        bases = list(OrderedDict.fromkeys(f.base for f in group if f.spec.input != "index"))
        ccols = self._needed(child, bases) | {pkc} | ({tcol} if tcol else set())
        cmap = {c: self.alias() for c in sorted(ccols)}
        pos = self.alias()
        last = f"c{len(path) - 1}"
        keep = [f"s.{c}" for c in ids] + ["s.__cut"]
        path_times: list[str] = []
        subfins: dict = {}
        if split:
            stab, vcols = self._static_table(child, bases)
            key = cmap[pkc]
            time = cmap.get(tcol)
            # child rows whose features are final at the cutoff: the static values
            joins, _ = self._path_join(rel, pk_alias, path, window, self.ref(stab), f"{last}.__fin <= s.__cut")
            vals = {b: self.alias() for b in bases}
            sel = keep + [f"{last}.{self.col(child, pkc)} AS {key}", f"{last}.__pos AS {pos}"]
            sel += [f"{last}.{self.col(child, tcol)} AS {time}"] if tcol else []
            for b in bases:
                v = f"{last}.{vcols[b]}"
                sel.append(f"{_seconds(f's.__cut - {v}', self.dialect)} AS {vals[b]}" if _since_last(b)
                           else f"{v} AS {vals[b]}")
            final = self.cte(f"SELECT {', '.join(sel)} FROM {self.ref(rel)} s {' '.join(joins)}",
                             ids + ["__cut", key, pos] + ([time] if tcol else []) + [vals[b] for b in bases])
            # the other rows, evaluated at the cutoff
            joins, _ = self._path_join(rel, pk_alias, path, window)
            joins.append(f"JOIN {self.ref(stab)} z ON z.{self.col(child, pkc)} = {last}.{self.col(child, pkc)} AND z.__fin > s.__cut")
            sel = keep + [f"{last}.{self.col(child, c)} AS {a}" for c, a in cmap.items()] + [f"{last}.__pos AS {pos}"]
            live = self.cte(f"SELECT {', '.join(sel)} FROM {self.ref(rel)} s {' '.join(joins)}",
                            ids + ["__cut"] + list(cmap.values()) + [pos])
            live, sub, _ = self.extend(live, ids + [key], child, cmap, bases)
            cols = ids + ["__cut", key, pos] + ([time] if tcol else [])
            crel = self.cte(
                f"SELECT {', '.join(cols + [vals[b] for b in bases])} FROM {self.ref(final)} UNION ALL "
                f"SELECT {', '.join(cols + [f'{sub[b]} AS {vals[b]}' for b in bases])} FROM {self.ref(live)}",
                cols + [vals[b] for b in bases],
            )
            sub = vals
        else:
            joins, path_times = self._path_join(rel, pk_alias, path, window)
            tsel = []
            if static:
                talias = [self.alias() for _ in path_times]
                tsel = [f"{t} AS {a}" for t, a in zip(path_times, talias)]
                path_times = talias
            sel = keep + [f"{last}.{self.col(child, c)} AS {a}" for c, a in cmap.items()] + [f"{last}.__pos AS {pos}"] + tsel
            crel = self.cte(f"SELECT {', '.join(sel)} FROM {self.ref(rel)} s {' '.join(joins)}",
                            ids + ["__cut"] + list(cmap.values()) + [pos] + path_times)
            key = cmap[pkc]
            crel, sub, subfins = self.extend(crel, ids + [key], child, cmap, bases, static)
        time = cmap.get(tcol) if tcol else None
        order = self.dialect.struct({"t": time, "k": key}) if time else pos

        names: dict[Feature, str] = {}
        fin_names: dict[Feature, str] = {}
        fin_exprs: dict[str, str] = {}
        exprs = []
        for f in group:
            a = self.alias("f")
            names[f] = a
            x = sub.get(f.base) if f.spec.input != "index" else None
            p = f.primitive
            prim = AGG_PRIMITIVES[p]
            if prim.since_cutoff and isinstance(f.base, Identity) and f.base.table == child and f.base.name == tcol:
                e = f"max({x})"  # the last row's time is the largest
            else:
                e = self.dialect.aggregate(prim).format(x=x, order=order)
            if prim.since_cutoff and not static:  # a static table keeps the time; readers subtract it
                e = _seconds(f"any_value(__cut) - {e}", self.dialect)
            exprs.append(f"{e} AS {a}")
            if static:
                parts = [f"coalesce({t}, {_NEVER})" for t in path_times]
                if AGG_PRIMITIVES[p].input != "index":
                    parts.append(subfins[f.base])
                fin = f"max({self._greatest(parts)})"
                if fin not in fin_exprs:  # most features of a group share one final time
                    fin_exprs[fin] = self.alias("t")
                    exprs.append(f"{fin} AS {fin_exprs[fin]}")
                fin_names[f] = fin_exprs[fin]
        id_list = ", ".join(ids)
        block = self.cte(f"SELECT {id_list}, {', '.join(exprs)} FROM {self.ref(crel)} GROUP BY {id_list}",
                         ids + [e.rsplit(" AS ", 1)[1] for e in exprs])
        return [(block, list(group))], names, fin_names


def query_groups(features: list[Feature]) -> list[list[Feature]]:
    """``features`` grouped as the compiler shares work: identity features, direct features
    through one relationship, aggregations over one (path, window). Queries are made of whole
    groups."""
    groups: OrderedDict = OrderedDict()
    for f in features:
        if isinstance(f, Identity):
            k = ("identity",)
        elif isinstance(f, Direct):
            k = ("direct", f.rel)
        else:
            k = ("aggregation", f.path, f.window)
        groups.setdefault(k, []).append(f)
    return list(groups.values())


def compile_features(schema, features, entity_table, columns, table_sql, colnames, categories, dialect: Dialect,
                     frame_sql: str = "frame"):
    """One query computing ``features`` for the rows of the ``frame_sql`` table (``__r``,
    ``__key``, ``__cut``); output columns ``o0, o1, ...`` in the order of ``features``."""
    comp = _Compiler(schema, table_sql, columns, colnames, dialect)
    ent = schema.pkeys[entity_table]
    ecols = columns[entity_table]
    emap = {c: comp.alias() for c in ecols}
    cond = f"e.{comp.col(entity_table, ent)} = f.__key"
    tcol = schema.time_cols[entity_table]
    if tcol:
        cond += f" AND e.{comp.col(entity_table, tcol)} <= f.__cut"
    sel = ", ".join(f"e.{comp.col(entity_table, c)} AS {a}" for c, a in emap.items())
    rel = comp.cte(f"SELECT f.__r, f.__cut, {sel} FROM {frame_sql} f LEFT JOIN {table_sql[entity_table]} e ON {cond}",
                   ["__r", "__cut"] + list(emap.values()))
    rel, names, _ = comp.extend(rel, ["__r"], entity_table, emap, list(features))
    outs = []
    decode = {}
    for i, f in enumerate(features):
        a = names[f]
        o = f"o{i}"  # output columns by position: feature names may repeat or look like SQL
        root = _root(f) if f.logical == "categorical" else None
        if root is not None and (root.table, root.name) in categories:
            decode[i] = categories[(root.table, root.name)]
            outs.append(f"CAST({a} AS BIGINT) AS {o}")
        elif f.logical == "categorical":
            outs.append(f"CAST({a} AS {dialect.string_type}) AS {o}")
        else:
            outs.append(f"CAST({a} AS DOUBLE) AS {o}")
    order = " ORDER BY __r" if dialect.order_rows else ""
    return comp.sql(f"SELECT __r, {', '.join(outs)} FROM {comp.ref(rel)}{order}"), decode


class EngineQueries(NamedTuple):
    """What an engine runs: the compiled queries and the tables and rows they read."""

    frame: object  # the distinct (entity, cutoff) rows (see frames.frame_rows)
    codes: object  # row i of the input is row codes[i] of frame
    features: list
    queries: list  # the features of each query
    tables: dict  # {table: (frame or file source, select)} (Dialect.prepare_tables)
    table_sql: dict  # {table: the name the queries read it by}
    compiled: list  # [(sql, decode)] per query
    columns: dict  # {table: the used columns}
    colnames: dict  # {table: {column: its generated SQL name}}


def plan_engine_queries(dialect: Dialect, db, schema: Schema, features, entity_table: str, entity_ids, cutoffs,
                        queries=None, prefix: str = "") -> EngineQueries:
    """Everything an engine needs before it runs anything: the rows, the used columns of the used
    tables as ``dialect`` reads them (names ``{prefix}t0``, ``{prefix}t1``, ...; the rows as
    ``{prefix}frame``) and each query compiled."""
    from .frames import frame_rows

    frame, codes = frame_rows(db, schema, entity_table, entity_ids, cutoffs)
    features = list(features)
    queries = [features] if queries is None else [list(q) for q in queries]
    columns = used_columns(schema, features)
    columns.setdefault(entity_table, [schema.pkeys[entity_table]])
    tables, categories, colnames = dialect.prepare_tables(db, schema, columns)
    table_sql = {t: f"{prefix}t{i}" for i, t in enumerate(tables)}
    compiled = [compile_features(schema, q, entity_table, columns, table_sql, colnames, categories, dialect,
                                 f"{prefix}frame") for q in queries]
    return EngineQueries(frame, codes, features, queries, tables, table_sql, compiled, columns, colnames)
