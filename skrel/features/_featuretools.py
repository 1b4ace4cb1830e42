"""The featuretools engine: the reference semantics of skrel's deep feature synthesis.

The definitions of :mod:`skrel.features._definitions` become featuretools features
(``IdentityFeature``, ``DirectFeature``, ``AggregationFeature`` with ``use_previous`` for windows)
over an ``EntitySet`` with the column types skrel inferred, and are computed by
``featuretools.calculate_feature_matrix`` with one cutoff time per (entity, cutoff) pair.
featuretools includes rows dated exactly at the cutoff (``include_cutoff_time=True``), skrel's
convention. It is slow (pandas, one pass per distinct cutoff): use it to check, not to train.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..utils import import_optional
from ._definitions import AGG_PRIMITIVES, Aggregation, Direct, Feature, Identity, Schema, as_seconds, used_columns

__all__ = ["compute_featuretools", "make_entityset"]


def make_entityset(db, schema: Schema, columns: dict[str, list[str]]):
    """An EntitySet holding the used columns, typed as ``schema`` says."""
    import featuretools as ft
    from woodwork.logical_types import (
        Boolean,
        BooleanNullable,
        Categorical,
        Datetime,
        Double,
        Integer,
        IntegerNullable,
    )

    es = ft.EntitySet("skrel")
    # featuretools gives a foreign key its parent's logical type: a parent referenced by a
    # nullable integer key gets a nullable integer index.
    nullable_parents = set()
    for r in schema.relationships:
        if r.child in columns and r.fk in columns[r.child] and "numeric" in schema.column(r.child, r.fk).tags:
            s = db[r.child].df[r.fk]
            if s.isna().any() or isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
                nullable_parents.add(r.parent)
    for t, cols in columns.items():
        src = db[t].df
        data = {}
        types = {}
        for c in cols:
            col = schema.column(t, c)
            s = as_seconds(src[c])
            if col.logical == "numeric":
                if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) and s.dtype.kind in "iu":
                    s = s.astype("Int64")
                    types[c] = IntegerNullable
                elif s.dtype.kind in "iu":
                    types[c] = Integer
                elif "foreign_key" in col.tags and s.dropna().mod(1).eq(0).all():
                    s = s.astype("Int64")
                    types[c] = IntegerNullable
                else:
                    s = s.astype("float64")
                    types[c] = Double
            elif col.logical == "categorical":
                s = s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))
                types[c] = Categorical
            elif col.logical == "boolean":
                types[c] = Boolean if not s.isna().any() else BooleanNullable
            elif col.logical == "datetime":
                s = s.astype("datetime64[ns]")
                types[c] = Datetime
            data[c] = s.reset_index(drop=True)
        df = pd.DataFrame(data)
        pk = schema.pkeys[t]
        if "numeric" not in schema.column(t, pk).tags and schema.column(t, pk).logical != "numeric":
            types[pk] = Categorical  # string keys: foreign keys inherit the type, and are categories
        else:
            types.pop(pk, None)
        if t in nullable_parents and df[pk].dtype.kind in "iu":
            df[pk] = df[pk].astype("Int64")
            types[pk] = IntegerNullable
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            es.add_dataframe(df, dataframe_name=t, index=pk, time_index=schema.time_cols[t], logical_types=types)
    for r in schema.relationships:
        if r.child in columns and r.parent in columns and r.fk in columns[r.child]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                es.add_relationship(r.parent, r.pk, r.child, r.fk)
    return es


def to_featuretools(features: list[Feature], es) -> list:
    """featuretools feature objects for ``features`` (same names)."""
    import featuretools as ft
    from featuretools.entityset.relationship import RelationshipPath
    import featuretools.primitives as ftp

    prims = {name: getattr(ftp, p.featuretools) for name, p in AGG_PRIMITIVES.items()}
    rels = {(r._child_dataframe_name, r._child_column_name): r for r in es.relationships}
    memo: dict = {}

    def conv(f: Feature):
        if f in memo:
            return memo[f]
        if isinstance(f, Identity):
            out = ft.IdentityFeature(es[f.table].ww[f.name])
        elif isinstance(f, Direct):
            out = ft.DirectFeature(conv(f.base), f.table, relationship=rels[(f.rel.child, f.rel.fk)])
        elif isinstance(f, Aggregation):
            path = RelationshipPath([(False, rels[(r.child, r.fk)]) for r in f.path])
            use_previous = ft.Timedelta(f.window, "d") if f.window is not None else None
            out = ft.AggregationFeature(conv(f.base), parent_dataframe_name=f.table, primitive=prims[f.primitive],
                                        relationship_path=path, use_previous=use_previous)
        else:  # pragma: no cover
            raise TypeError(type(f))
        memo[f] = out
        return out

    out = [conv(f) for f in features]
    for f, g in zip(features, out):
        if g.get_name() != f.name:  # pragma: no cover - a bug in the definitions
            raise RuntimeError(f"featuretools names {f.name!r} as {g.get_name()!r}.")
    return out


def compute_featuretools(db, schema: Schema, features: list[Feature], entity_table: str, entity_ids, cutoffs,
                         **_ignored):
    """Evaluate ``features`` with featuretools; same output as :func:`compute_duckdb`."""
    ft = import_optional("featuretools", "DFSTransformer(engine='featuretools')")

    columns = used_columns(schema, features)
    columns.setdefault(entity_table, [schema.pkeys[entity_table]])
    es = make_entityset(db, schema, columns)
    feats = to_featuretools(features, es)
    ids = np.asarray(entity_ids)
    cuts = np.asarray(cutoffs, dtype="datetime64[ns]")
    pairs = pd.DataFrame({"k": ids, "c": cuts})
    codes, uniq = pd.factorize(pd.MultiIndex.from_frame(pairs))
    pk = schema.pkeys[entity_table]
    keys = uniq.get_level_values(0).to_numpy()
    pk_dtype = db[entity_table].df[pk].dtype
    if pk_dtype.kind in "iu":
        keys = keys.astype(pk_dtype)
    ct = pd.DataFrame({pk: keys, "time": uniq.get_level_values(1).to_numpy()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = ft.calculate_feature_matrix(feats, es, cutoff_time=ct, cutoff_time_in_index=True, n_jobs=1)
    fm = fm.reindex(pd.MultiIndex.from_arrays([ct[pk].to_numpy(), ct["time"].to_numpy()]))
    out = {}
    for f in features:
        s = fm[f.name]
        if f.logical == "categorical":
            v = s.astype(object).to_numpy()
            v = np.array([None if (x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA) else str(x)
                          for x in v], dtype=object)
        else:
            v = pd.to_numeric(s.astype(object).where(s.notna(), np.nan), errors="coerce").astype("float64").to_numpy()
        out[f.name] = v[codes]
    return pd.DataFrame(out)
