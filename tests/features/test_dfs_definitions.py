"""Feature definitions: the same names, in the same order, as featuretools' own DFS."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import make_shop
from dfs_cases import make_market

from skrel.data import Database, SchemaError
from skrel.features._definitions import (
    AGG_PRIMITIVES,
    build_features,
    infer_schema,
    used_columns,
    window_days,
)

ft = pytest.importorskip("featuretools")


def featuretools_names(db, schema, target, depth, primitives=None):
    from skrel.features._featuretools import make_entityset

    es = make_entityset(db, schema, {t: [c.name for c in cols] for t, cols in schema.tables.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = ft.dfs(entityset=es, target_dataframe_name=target, agg_primitives=primitives or list(AGG_PRIMITIVES),
                       trans_primitives=[], max_depth=depth, features_only=True)
    return [f.get_name() for f in feats]


@pytest.mark.parametrize("target", ["users", "orders"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_names_match_featuretools_dfs_market(target, depth):
    # Two relationships between orders and users, string keys, a deep path, dated parents.
    db = make_market()
    schema = infer_schema(db, target)
    mine = [f.name for f in build_features(schema, target, depth)]
    assert mine == featuretools_names(db, schema, target, depth)


@pytest.mark.parametrize("depth", [1, 2])
def test_names_match_featuretools_dfs_shop_and_synthetic(depth):
    from skrel.datasets.synthetic import make_synthetic

    for db, target in ((make_shop(), "users"), (make_synthetic(n_entities=30, n_rows=400)[0], "entities")):
        schema = infer_schema(db, target)
        mine = [f.name for f in build_features(schema, target, depth)]
        assert mine == featuretools_names(db, schema, target, depth)


def test_names_match_featuretools_dfs_f1(f1_path):
    from skrel.datasets import load_f1

    db, _ = load_f1(f1_path)
    schema = infer_schema(db, "drivers")
    for depth in (1, 2):
        mine = [f.name for f in build_features(schema, "drivers", depth)]
        assert mine == featuretools_names(db, schema, "drivers", depth)
    assert "MEAN(results.races.year)" in mine and "TIME_SINCE_LAST(results.races.date)" in mine


def test_primitive_subset_and_windows():
    db = make_shop()
    schema = infer_schema(db, "users")
    feats = build_features(schema, "users", 2, ["count", "mean"], windows=[30, 7])
    names = [f.name for f in feats]
    assert names == featuretools_names(db, schema, "users", 2, ["count", "mean"]) + [
        "COUNT(orders, Last 30 Days)", "MEAN(orders.qty, Last 30 Days)", "MEAN(orders.items.price, Last 30 Days)",
        "COUNT(orders, Last 7 Days)", "MEAN(orders.qty, Last 7 Days)", "MEAN(orders.items.price, Last 7 Days)",
    ]
    with pytest.raises(ValueError, match="Unknown aggregation primitive"):
        build_features(schema, "users", 1, ["median"])


def test_window_days():
    assert window_days(30) == 30
    assert window_days("90D") == 90
    assert window_days(pd.Timedelta(days=365)) == 365
    for bad in (0, -3, "12h", "soon", True):
        with pytest.raises(ValueError, match="windows"):
            window_days(bad)


def test_infer_schema_types_and_choices():
    db = make_market()
    schema = infer_schema(db, "users")
    kinds = {(c.table, c.name): (c.logical, set(c.tags)) for cols in schema.tables.values() for c in cols}
    assert kinds[("users", "user_id")] == ("categorical", {"index"})
    assert kinds[("users", "joined")] == ("datetime", {"time_index"})
    assert kinds[("users", "vip")] == ("boolean", set())
    assert kinds[("orders", "buyer")] == ("categorical", {"foreign_key", "category"})
    assert kinds[("orders", "promo_id")] == ("numeric", {"foreign_key", "numeric"})
    assert kinds[("orders", "channel")] == ("categorical", {"category"})
    # only some tables, some columns ignored, strict categories
    schema = infer_schema(db, "users", tables=["orders"], ignore_columns={"orders": ["qty"]}, max_categories=2)
    assert sorted(schema.tables) == ["orders", "users"]
    assert [r.fk for r in schema.relationships] == ["buyer", "seller"]
    assert "qty" not in [c.name for c in schema.tables["orders"]]
    assert "channel" not in [c.name for c in schema.tables["orders"]]  # 3 values > max_categories=2
    with pytest.raises(SchemaError, match="cannot be ignored"):
        infer_schema(db, "users", ignore_columns={"orders": ["buyer"]})
    with pytest.raises(SchemaError, match="unknown column"):
        infer_schema(db, "users", ignore_columns={"orders": ["nope"]})
    with pytest.raises(SchemaError, match="unknown table"):
        infer_schema(db, "users", tables=["nope"])


def test_free_text_is_not_categorical():
    n = 50
    db = Database(
        {"people": pd.DataFrame({"pid": np.arange(n), "name": [f"name {i}" for i in range(n)],
                                 "team": ["a", "b"] * (n // 2)})},
        primary_keys={"people": "pid"},
    )
    cols = [c.name for c in infer_schema(db, "people").tables["people"]]
    assert "name" not in cols and "team" in cols


def test_used_columns_only_what_features_read():
    db = make_shop()
    schema = infer_schema(db, "users")
    feats = [f for f in build_features(schema, "users", 1) if f.name in ("age", "MEAN(orders.qty)")]
    cols = used_columns(schema, feats)
    assert cols == {"users": ["user_id", "age"], "orders": ["order_id", "user_id", "qty", "at"]}
