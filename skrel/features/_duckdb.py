"""The DuckDB engine: deep feature synthesis definitions compiled to one SQL query.

Each (entity, cutoff) pair is a row of a frame table. The entity's row joins the frame where it
is visible (time ``<= cutoff``). Direct features left-join the parent row visible at the same
cutoff; an aggregation joins the rows of its path (each hop visible at the cutoff, and within the
window for windowed features), evaluates its base features on them (recursively, at the same
cutoff) and groups them back by frame row. Windows are ``FILTER`` clauses on one join, so a path
is joined once whatever the number of windows. DuckDB runs the query out of core when
``memory_limit`` and ``temp_directory`` are set.

Semantics are featuretools' (see :mod:`skrel.features._featuretools`): ``count`` and ``sum`` are
0 with nothing to aggregate; ``num_unique`` is missing with no rows and 0 with rows whose values
are all missing; ``std`` is the sample standard deviation; ``mode`` breaks ties by the smallest
value; ``time_since_last`` is seconds from the value in the last row (by time, then primary key)
to the cutoff.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd

from ._definitions import Aggregation, Direct, Feature, Identity, Schema, used_columns

__all__ = ["compute_duckdb", "prepare_tables"]

_NS_PER_DAY = 86_400 * 10**9


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _lit(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "NULL"
    return repr(float(value))


def prepare_tables(db, schema: Schema, columns: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    """The tables as DuckDB reads them: used columns only, times as int64 nanoseconds (nullable),
    categoricals as strings, booleans as nullable booleans, plus ``__pos``, the row position."""
    out = {}
    for t, cols in columns.items():
        df = db[t].df
        data = {}
        for c in cols:
            col = schema.column(t, c)
            s = df[c]
            if col.logical == "datetime":
                s = s.astype("datetime64[ns]")
                arr = pd.array(s.to_numpy().view("int64"), dtype="Int64")
                arr[s.isna().to_numpy()] = pd.NA
                data[c] = arr
            elif col.logical == "categorical" and "numeric" not in col.tags:
                data[c] = s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))
            elif col.logical == "boolean":
                data[c] = s.astype("boolean")
            else:
                data[c] = s.to_numpy() if s.dtype.kind in "iuf" else s
        data["__pos"] = np.arange(len(df), dtype=np.int64)
        out[t] = pd.DataFrame(data, copy=False)
    return out


class _Compiler:
    """Builds the WITH clauses of the query; CTEs referenced more than once are materialised."""

    def __init__(self, schema: Schema, table_sql: dict[str, str], windows_ns=None):
        self.schema = schema
        self.table_sql = table_sql
        self.ctes: OrderedDict[str, str] = OrderedDict()
        self.refs: dict[str, int] = {}
        self.n = 0

    def alias(self, prefix: str = "a") -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def cte(self, sql: str) -> str:
        name = self.alias("q")
        self.ctes[name] = sql
        self.refs[name] = 0
        return name

    def ref(self, name: str) -> str:
        if name in self.refs:
            self.refs[name] += 1
        return name

    def sql(self, final: str) -> str:
        parts = []
        for name, body in self.ctes.items():
            mat = " MATERIALIZED" if self.refs[name] > 1 else ""
            parts.append(f"{name} AS{mat} (\n{body}\n)")
        return "WITH " + ",\n".join(parts) + "\n" + final

    # ------------------------------------------------------------------ scopes
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

    def extend(self, rel: str, ids: list[str], table: str, colmap: dict[str, str], feats: list[Feature]):
        """Add the features ``feats`` of ``table`` to relation ``rel`` (one row per ``ids``, columns
        ``__cut`` and ``colmap``'s aliases of the table's columns). Returns the new relation and
        the alias of each feature."""
        out: dict[Feature, str] = {}
        directs: OrderedDict = OrderedDict()
        aggs: OrderedDict = OrderedDict()
        for f in feats:
            if isinstance(f, Identity):
                out[f] = colmap[f.name]
            elif isinstance(f, Direct):
                directs.setdefault(f.rel, []).append(f)
            else:
                aggs.setdefault((f.path, f.window), []).append(f)

        for rel_obj, group in directs.items():
            parent = rel_obj.parent
            bases = list(OrderedDict.fromkeys(f.base for f in group))
            pcols = sorted(self._needed(parent, bases) | {self.schema.pkeys[parent]})
            pmap = {c: self.alias() for c in pcols}
            select = ", ".join(f"p.{_q(c)} AS {pmap[c]}" for c in pcols)
            cond = f"p.{_q(rel_obj.pk)} = s.{colmap[rel_obj.fk]}"
            tcol = self.schema.time_cols[parent]
            if tcol:
                cond += f" AND p.{_q(tcol)} <= s.__cut"
            rel = self.cte(f"SELECT s.*, {select} FROM {self.ref(rel)} s LEFT JOIN {self.table_sql[parent]} p ON {cond}")
            rel, sub = self.extend(rel, ids, parent, pmap, bases)
            for f in group:
                out[f] = sub[f.base]

        if aggs:
            pk_alias = colmap[self.schema.pkeys[table]]
            select = []
            joins = []
            for (path, window), group in aggs.items():
                blocks, names = self._aggregate(rel, ids, pk_alias, path, window, group)
                out.update(names)
                for block, cols in blocks:
                    b = f"b{len(joins)}"
                    for f in cols:
                        a, d = names[f], f.default
                        select.append(f"COALESCE({b}.{a}, {_lit(d)}) AS {a}" if not np.isnan(d) else f"{b}.{a} AS {a}")
                    on = " AND ".join(f"s.{c} = {b}.{c}" for c in ids)
                    joins.append(f"LEFT JOIN {self.ref(block)} {b} ON {on}")
            rel = self.cte(f"SELECT s.*, {', '.join(select)} FROM {self.ref(rel)} s {' '.join(joins)}")
        return rel, out

    def _aggregate(self, rel: str, ids: list[str], pk_alias: str, path: tuple, window, group: list[Aggregation]):
        """Aggregations over one path and window: one join, one GROUP BY (plus one per mode base)."""
        schema = self.schema
        joins = []
        prev, prev_pk = "s", pk_alias
        for i, r in enumerate(path):
            a = f"c{i}"
            cond = f"{a}.{_q(r.fk)} = {prev}.{prev_pk}" if i else f"{a}.{_q(r.fk)} = s.{prev_pk}"
            tcol = schema.time_cols[r.child]
            if tcol:
                cond += f" AND {a}.{_q(tcol)} <= s.__cut"
                if window is not None and i == len(path) - 1:
                    cond += f" AND {a}.{_q(tcol)} >= s.__cut - {int(window) * _NS_PER_DAY}"
            joins.append(f"JOIN {self.table_sql[r.child]} {a} ON {cond}")
            prev, prev_pk = a, _q(schema.pkeys[r.child])
        child = path[-1].child
        last = f"c{len(path) - 1}"
        bases = list(OrderedDict.fromkeys(f.base for f in group if f.primitive != "count"))
        ccols = self._needed(child, bases) | {schema.pkeys[child]}
        tcol = schema.time_cols[child]
        if tcol:
            ccols.add(tcol)
        cmap = {c: self.alias() for c in sorted(ccols)}
        pos = self.alias()
        select = ", ".join([f"s.{c}" for c in ids] + ["s.__cut"] + [f"{last}.{_q(c)} AS {a}" for c, a in cmap.items()]
                           + [f"{last}.__pos AS {pos}"])
        crel = self.cte(f"SELECT {select} FROM {self.ref(rel)} s {' '.join(joins)}")
        key = cmap[schema.pkeys[child]]
        crel, sub = self.extend(crel, ids + [key], child, cmap, bases)
        time = cmap.get(tcol) if tcol else None
        order = f"{{'t': {time}, 'k': {key}}}" if time else pos

        def filt(_window):
            return ""  # the window is a join condition

        names: dict[Feature, str] = {}
        exprs = []
        modes = []
        for f in group:
            a = self.alias("f")
            names[f] = a
            w = f.window
            x = sub.get(f.base) if f.primitive != "count" else None
            p = f.primitive
            if p == "count":
                e = f"count(*){filt(w)}"
            elif p == "sum":
                e = f"fsum(CAST({x} AS DOUBLE)){filt(w)}"
            elif p == "mean":
                e = f"fsum(CAST({x} AS DOUBLE)){filt(w)} / count({x}){filt(w)}"
            elif p == "min":
                e = f"CAST(min({x}){filt(w)} AS DOUBLE)"
            elif p == "max":
                e = f"CAST(max({x}){filt(w)} AS DOUBLE)"
            elif p == "std":
                e = f"stddev_samp(CAST({x} AS DOUBLE)){filt(w)}"
            elif p == "num_unique":
                e = f"CASE WHEN count(*){filt(w)} > 0 THEN count(DISTINCT {x}){filt(w)} END"
            elif p == "time_since_last":
                e = f"(any_value(__cut) - arg_max_null({x}, {order}){filt(w)}) / 1e9"
            elif p == "mode":
                modes.append((f, a, x))
                continue
            else:  # pragma: no cover - guarded by build_features
                raise ValueError(p)
            exprs.append(f"{e} AS {a}")
        id_list = ", ".join(ids)
        blocks = []
        if exprs:
            block = self.cte(f"SELECT {id_list}, {', '.join(exprs)} FROM {self.ref(crel)} GROUP BY {id_list}")
            blocks.append((block, [f for f in group if f.primitive != "mode"]))
        by_base: OrderedDict = OrderedDict()
        for f, a, x in modes:
            by_base.setdefault(x, []).append((f, a))
        for x, fs in by_base.items():
            counts = []
            picks = []
            for f, a in fs:
                n = self.alias("n")
                counts.append(f"count(*){filt(f.window)} AS {n}")
                picks.append(f"arg_min(v, {{'n': -{n}, 'v': v}}) FILTER (WHERE {n} > 0) AS {a}")
            inner = self.cte(
                f"SELECT {id_list}, {x} AS v, {', '.join(counts)} FROM {self.ref(crel)} "
                f"WHERE {x} IS NOT NULL GROUP BY {id_list}, {x}"
            )
            block = self.cte(f"SELECT {id_list}, {', '.join(picks)} FROM {self.ref(inner)} GROUP BY {id_list}")
            blocks.append((block, [f for f, _ in fs]))
        return blocks, names


def compute_duckdb(db, schema: Schema, features: list[Feature], entity_table: str, entity_ids, cutoffs, *,
                   memory_limit=None, temp_directory=None, threads=None, return_sql: bool = False):
    """Evaluate ``features`` for the rows ``(entity_ids[i], cutoffs[i])`` in DuckDB.

    Returns a DataFrame with one column per feature (named as the feature), one row per input
    row; numeric features as float64, categorical ones as object (str or None), booleans as
    float64 (0/1).
    """
    import duckdb

    ids = pd.Series(np.asarray(entity_ids))
    cuts = pd.Series(np.asarray(cutoffs, dtype="datetime64[ns]").view("int64"))
    pairs = pd.DataFrame({"k": ids, "c": cuts})
    codes, uniq = pd.factorize(pd.MultiIndex.from_frame(pairs))
    keys = uniq.get_level_values(0).to_numpy()
    pk_dtype = db[entity_table].df[schema.pkeys[entity_table]].dtype
    if pk_dtype.kind in "iu":
        keys = keys.astype(pk_dtype)
    frame = pd.DataFrame({"__r": np.arange(len(uniq), dtype=np.int64),
                          "__key": keys,
                          "__cut": uniq.get_level_values(1).to_numpy().astype(np.int64)})
    columns = used_columns(schema, features)
    columns.setdefault(entity_table, [schema.pkeys[entity_table]])
    tables = prepare_tables(db, schema, columns)

    table_sql = {t: f"t{i}" for i, t in enumerate(tables)}
    comp = _Compiler(schema, table_sql)
    ent = schema.pkeys[entity_table]
    ecols = columns[entity_table]
    emap = {c: comp.alias() for c in ecols}
    cond = f"e.{_q(ent)} = f.__key"
    tcol = schema.time_cols[entity_table]
    if tcol:
        cond += f" AND e.{_q(tcol)} <= f.__cut"
    sel = ", ".join(f"e.{_q(c)} AS {a}" for c, a in emap.items())
    rel = comp.cte(f"SELECT f.__r, f.__cut, {sel} FROM frame f LEFT JOIN {table_sql[entity_table]} e ON {cond}")
    rel, names = comp.extend(rel, ["__r"], entity_table, emap, list(features))
    outs = []
    for f in features:
        a = names[f]
        if f.logical == "categorical":
            outs.append(f"CAST({a} AS VARCHAR) AS {_q(f.name)}")
        else:
            outs.append(f"CAST({a} AS DOUBLE) AS {_q(f.name)}")
    sql = comp.sql(f"SELECT __r, {', '.join(outs)} FROM {comp.ref(rel)} ORDER BY __r")
    if return_sql:
        return sql
    config = {}
    if memory_limit is not None:
        config["memory_limit"] = str(memory_limit)
    if temp_directory is not None:
        config["temp_directory"] = str(temp_directory)
    if threads is not None:
        config["threads"] = int(threads)
    con = duckdb.connect(config=config)
    try:
        con.execute("SET preserve_insertion_order = false")
        for t, df in tables.items():
            con.register(table_sql[t], df)
        con.register("frame", frame)
        res = con.execute(sql).df()
    finally:
        con.close()
    if len(res) != len(frame):  # pragma: no cover - a bug, not a user error
        raise RuntimeError(f"DuckDB returned {len(res)} rows for {len(frame)} (entity, cutoff) pairs.")
    res = res.drop(columns="__r")
    out = res.iloc[codes].reset_index(drop=True)
    for f in features:
        if f.logical == "categorical":
            out[f.name] = out[f.name].astype(object).where(out[f.name].notna(), None)
    return out
