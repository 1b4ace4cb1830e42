"""DFSTransformer as a scikit-learn transformer: parameters, output, caching, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import make_shop
from dfs_cases import make_market, market_rows
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skrel.data import Database, RelationalDataset, SchemaError, Table
from skrel.features import DFSTransformer
from skrel.features import dfs as dfs_module


@pytest.fixture
def shop_X(shop_binary):
    db, task = shop_binary
    return task.split(db, "train")[0][:80]


def test_fit_transform_names_and_set_output(shop_X):
    t = DFSTransformer(max_depth=2, windows=[30])
    assert clone(t).get_params() == t.get_params()
    F = t.fit_transform(shop_X)
    names = t.get_feature_names_out()
    assert isinstance(F, pd.DataFrame) and F.shape == (80, len(names)) and list(F.columns) == list(names)
    assert {"age", "country", "COUNT(orders)", "MEAN(orders.items.price)", "COUNT(orders, Last 30 Days)"} <= set(names)
    assert F["country"].dtype == object and F["COUNT(orders)"].dtype == np.float64
    out = t.set_output(transform="pandas").transform(shop_X)
    assert list(out.columns) == list(names) and len(out) == 80


def test_params_choose_features(shop_X):
    F = DFSTransformer(max_depth=1, agg_primitives=["count", "sum"], tables=["orders"],
                       ignore_columns={"users": ["age"]}).fit_transform(shop_X)
    assert list(F.columns) == ["country", "COUNT(orders)", "SUM(orders.qty)"]


def test_invalid_params(shop_X):
    with pytest.raises(ValueError, match="max_depth"):
        DFSTransformer(max_depth=4).fit(shop_X)
    with pytest.raises(ValueError, match="engine"):
        DFSTransformer(engine="pandas").fit(shop_X)
    with pytest.raises(ValueError, match="agg_primitives"):
        DFSTransformer(agg_primitives=["median"]).fit(shop_X)
    with pytest.raises(ValueError, match="windows"):
        DFSTransformer(windows=[0]).fit(shop_X)


def test_not_fitted_and_bad_X(shop_X):
    with pytest.raises(NotFittedError):
        DFSTransformer().transform(shop_X)
    with pytest.raises(TypeError, match="RelationalDataset"):
        DFSTransformer().fit(np.zeros((3, 2)))


def test_missing_entity_ids_are_a_clear_error(shop_X):
    t = DFSTransformer(max_depth=1).fit(shop_X)
    X = RelationalDataset(shop_X.db, "users", [1, 999, 2], pd.to_datetime(["2021-01-01"] * 3))
    with pytest.raises(SchemaError, match=r"missing from users\.user_id.*rows \[1\].*ids \[999\]"):
        t.transform(X)


def test_schema_mismatch_is_a_clear_error(shop_X):
    t = DFSTransformer(max_depth=1).fit(shop_X)
    db = shop_X.db
    orders = db["orders"].df.drop(columns=["qty"])
    other = Database({n: Table(orders if n == "orders" else x.df, x.pkey, dict(x.fkeys), x.time_col)
                      for n, x in db.tables.items()})
    with pytest.raises(SchemaError, match=r"orders\.qty"):
        t.transform(shop_X.with_database(other))


def test_features_are_cached_per_rows_and_config(shop_X, monkeypatch):
    calls = []
    engine = dfs_module.ENGINES["duckdb"]
    monkeypatch.setitem(dfs_module.ENGINES, "duckdb", lambda *a, **k: calls.append(len(a[4])) or engine(*a, **k))
    t = DFSTransformer(max_depth=1).fit(shop_X)
    a = t.transform(shop_X)
    a.iloc[:, :] = 0  # callers get a copy: the cache stays intact
    b = t.transform(shop_X)
    assert calls == [80] and not b.equals(a)
    t.transform(shop_X[:10])
    DFSTransformer(max_depth=2).fit(shop_X).transform(shop_X)
    assert calls == [80, 10, 80]
    # a fitted transformer pickles without its cache; the database's cache is per process
    t2 = pickle.loads(pickle.dumps(t))
    X2 = pickle.loads(pickle.dumps(shop_X))
    pd.testing.assert_frame_equal(t2.transform(X2), b)
    assert calls == [80, 10, 80, 80]


def test_out_of_core_settings(tmp_path):
    db = make_market()
    X = market_rows(db)
    plain = DFSTransformer(max_depth=2).fit_transform(X)
    spill = DFSTransformer(max_depth=2, memory_limit="64MB", temp_directory=str(tmp_path), n_jobs=1).fit_transform(X)
    pd.testing.assert_frame_equal(plain, spill)


def test_string_ids_multiple_cutoffs_and_verbose(capsys):
    db = make_market()
    X = market_rows(db)
    t = DFSTransformer(max_depth=1, verbose=1)
    F = t.fit_transform(X)
    assert len(F) == len(X)
    # the repeated rows at the end of market_rows equal their first occurrence
    pd.testing.assert_frame_equal(F.iloc[-2:].reset_index(drop=True), F.iloc[:2].reset_index(drop=True))
    assert "features" in capsys.readouterr().err


def test_entity_table_must_match(shop_X):
    t = DFSTransformer(max_depth=1).fit(shop_X)
    items = RelationalDataset(shop_X.db, "items", [0, 1], pd.to_datetime(["2021-01-01"] * 2))
    with pytest.raises(ValueError, match="entity table"):
        t.transform(items)


def test_featuretools_engine_is_selectable():
    pytest.importorskip("featuretools")
    db = make_shop(n_users=6, n_orders=60)
    X = RelationalDataset(db, "users", np.arange(6), pd.to_datetime(["2021-01-01"] * 6))
    a = DFSTransformer(max_depth=1).fit_transform(X)
    b = DFSTransformer(max_depth=1, engine="featuretools").fit_transform(X)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_horizon_data_describes_rows_past_the_data_at_its_end():
    db = make_shop(n_users=6, n_orders=300)
    end = db["orders"].df["at"].max()
    late, at_end, early = end + pd.Timedelta(days=400), end, end - pd.Timedelta(days=100)
    X = RelationalDataset(db, "users", [0, 0, 0], [late, at_end, early])
    params = dict(max_depth=1, windows=[90])
    plain = DFSTransformer(**params).fit_transform(X)
    clipped = DFSTransformer(**params, horizon="data").fit_transform(X)
    pd.testing.assert_frame_equal(clipped.iloc[[1, 1, 2]].reset_index(drop=True), clipped)
    pd.testing.assert_frame_equal(plain.iloc[1:], clipped.iloc[1:])
    assert plain["COUNT(orders, Last 90 Days)"].iloc[0] == 0 < clipped["COUNT(orders, Last 90 Days)"].iloc[0]
    assert plain["TIME_SINCE_LAST(orders.at)"].iloc[0] > clipped["TIME_SINCE_LAST(orders.at)"].iloc[0]
