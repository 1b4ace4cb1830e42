"""RDL and RelGT on odd but legal databases (issue 10, items 3-5): each case a sensible model or one
clear error.

Every estimator here is built by :func:`make` from the per-family settings in :data:`FAMILIES`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from skrel.data import Database, SchemaError, Task
from skrel.estimators.rdl import RDLEstimator
from skrel.estimators.relgt import RelGTEstimator
from skrel.graph import build_graph, feature_spec
from skrel.graph.hetero import UnsupportedColumnWarning

from conftest import make_shop, shop_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAMILIES = {
    "rdl": (RDLEstimator, dict(channels=8, max_epochs=1, fanouts=[4, 2], encoder_layers=1, min_steps_per_epoch=None,
                               random_state=0)),
    "relgt": (RelGTEstimator, dict(tokens=8, channels=8, heads=2, centroids=4, max_epochs=1, batch_size=64,
                                   random_state=0)),
}


def make(family: str, **overrides):
    """A fast estimator of ``family`` ("rdl" or "relgt"), with ``overrides`` on its test settings."""
    cls, params = FAMILIES[family]
    params = {**params, **overrides}
    return cls(**params)


both = pytest.mark.parametrize("family", sorted(FAMILIES))

SHOP_KEYS = dict(
    primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
    foreign_keys={"orders": {"user_id": "users", "item_id": "items"}},
    time_columns={"orders": "at"},
)


@pytest.fixture(scope="module")
def shop():
    return make_shop(n_users=40, n_orders=600)


def _tables(db: Database) -> dict:
    return {t: db[t].df for t in db.table_names}


def _shop_with(db: Database, table: str, **columns) -> Database:
    tables = _tables(db)
    tables[table] = tables[table].assign(**columns)
    return Database(tables, **SHOP_KEYS)


def _fit_predict(family, db, task=None, **overrides):
    task = task or shop_task()
    est = make(family, **overrides).fit(db, task)
    X, _ = task.split(db, "test")
    out = est.predict_proba(X) if task.task_type != "regression" else est.predict(X)
    return est, out


# ---------------------------------------------------------------------- inf
@both
@pytest.mark.parametrize("table,column", [("users", "age"), ("orders", "qty")])
def test_inf_is_missing(family, shop, table, column):
    """One +-inf in the entity or a child table: finite predictions, the same as with NaN there."""
    values = shop[table].df[column].to_numpy().copy()
    with_inf, with_nan = values.copy(), values.copy()
    with_inf[[1, 4]] = [np.inf, -np.inf]
    with_nan[[1, 4]] = np.nan
    _, p_inf = _fit_predict(family, _shop_with(shop, table, **{column: with_inf}))
    _, p_nan = _fit_predict(family, _shop_with(shop, table, **{column: with_nan}))
    assert np.isfinite(p_inf).all()
    np.testing.assert_allclose(p_inf, p_nan, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- names
@both
def test_tables_whose_keys_once_collided_get_their_own_encoders(family):
    """``a.b`` and ``a_dot_b`` (once one module key) have different columns: each gets its encoder."""
    rng = np.random.default_rng(0)
    n = 30
    users = pd.DataFrame({"user_id": np.arange(n), "x": rng.normal(size=n)})
    ab = pd.DataFrame({"id": np.arange(200), "user_id": rng.integers(0, n, 200), "amount": rng.gamma(2.0, 1.0, 200),
                       "at": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, 200), "D")})
    a_dot_b = pd.DataFrame({"id": np.arange(100), "user_id": rng.integers(0, n, 100),
                            "kind": rng.choice(["p", "q"], 100), "flag": rng.integers(0, 2, 100).astype(float),
                            "at": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, 100), "D")})
    db = Database({"users": users, "a.b": ab, "a_dot_b": a_dot_b},
                  primary_keys={"users": "user_id", "a.b": "id", "a_dot_b": "id"},
                  foreign_keys={"a.b": {"user_id": "users"}, "a_dot_b": {"user_id": "users"}},
                  time_columns={"a.b": "at", "a_dot_b": "at"})
    sql = """SELECT t.timestamp, u.user_id, CAST(COUNT(o.id) >= 1 AS INTEGER) AS active
             FROM timestamps t CROSS JOIN users u
             LEFT JOIN "a.b" o ON o.user_id = u.user_id AND o.at > t.timestamp AND o.at <= t.timestamp + {window}
             GROUP BY t.timestamp, u.user_id"""
    task = Task(name="active", entity_table="users", entity_col="user_id", target_col="active", task_type="binary",
                window=pd.Timedelta(days=60), label_sql=sql, val_timestamp=pd.Timestamp("2021-06-01"),
                test_timestamp=pd.Timestamp("2021-09-01"))
    est, proba = _fit_predict(family, db, task)
    assert np.isfinite(proba).all()
    encoders = [m for m in est.module_.modules() if type(m).__name__ == "HeteroTableEncoder"]
    assert encoders and all(len(enc.encoders) == 3 for enc in encoders)


# ---------------------------------------------------------------------- odd columns
@both
def test_timedelta_column_is_numerical_seconds(family, shop):
    wait = pd.to_timedelta(np.arange(len(shop["users"].df)), "h")
    db = _shop_with(shop, "users", wait=wait)
    assert str(feature_spec(db).stypes["users"]["wait"]) == "numerical"
    _, proba = _fit_predict(family, db)
    assert np.isfinite(proba).all()


def test_list_columns_are_left_out_with_one_warning_naming_them(shop):
    from skrel.graph.hetero import _infer_stypes

    n = len(shop["orders"].df)
    db = _shop_with(shop, "orders", tags=[[1.0, 2.0]] * n, words=[("a", "b")] * n)
    with pytest.warns(UnsupportedColumnWarning, match=r"orders\.tags, orders\.words") as record:
        stypes = _infer_stypes(db, "orders", None)
    assert len([w for w in record if issubclass(w.category, UnsupportedColumnWarning)]) == 1
    assert "tags" not in stypes and "words" not in stypes and "qty" in stypes


@both
def test_list_columns_fit_through_the_public_api(family, shop):
    n = len(shop["orders"].df)
    db = _shop_with(shop, "orders", tags=[[1.0, 2.0]] * n)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _, proba = _fit_predict(family, db)
    assert np.isfinite(proba).all()
    assert any(issubclass(w.category, UnsupportedColumnWarning) and "orders.tags" in str(w.message) for w in record)


def test_column_named_empty_string_is_one_clear_error(shop):
    with pytest.raises(SchemaError, match="'users' has a column named ''"):
        _shop_with(shop, "users", **{"": np.arange(len(shop["users"].df), dtype=float)})


# ---------------------------------------------------------------------- degenerate schemas
def _users_orders(users: pd.DataFrame, orders: pd.DataFrame, extra: dict | None = None, fkeys: dict | None = None,
                  times: dict | None = None) -> Database:
    tables = {"users": users, "orders": orders, **(extra or {})}
    pkeys = {t: ("user_id" if t == "users" else "id") for t in tables}
    return Database(tables, primary_keys=pkeys, foreign_keys={"orders": {"user_id": "users"}, **(fkeys or {})},
                    time_columns={"orders": "at", **(times or {})})


def _orders(rng, n_users: int, n: int = 400, start: str = "2020-01-01", days: int = 700, **columns) -> pd.DataFrame:
    return pd.DataFrame({"id": np.arange(n), "user_id": rng.integers(0, n_users, n),
                         "amount": rng.gamma(2.0, 10.0, n),
                         "at": pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days, n), "D"), **columns})


ACTIVE_SQL = """SELECT t.timestamp, u.user_id, CAST(COUNT(o.id) >= 1 AS INTEGER) AS active
FROM timestamps t CROSS JOIN users u
LEFT JOIN orders o ON o.user_id = u.user_id AND o.at > t.timestamp AND o.at <= t.timestamp + {window}
GROUP BY t.timestamp, u.user_id"""


def _active_task() -> Task:
    return Task(name="active", entity_table="users", entity_col="user_id", target_col="active", task_type="binary",
                window=pd.Timedelta(days=60), label_sql=ACTIVE_SQL, val_timestamp=pd.Timestamp("2021-06-01"),
                test_timestamp=pd.Timestamp("2021-09-01"))


def _users(n: int = 30, **columns) -> pd.DataFrame:
    return pd.DataFrame({"user_id": np.arange(n), **columns})


def _check(family, db, task=None):
    est, proba = _fit_predict(family, db, task or _active_task())
    assert np.isfinite(proba).all() and proba.shape[1] == 2
    return est, proba


@both
def test_entity_table_without_feature_columns(family):
    rng = np.random.default_rng(1)
    est, _ = _check(family, _users_orders(_users(), _orders(rng, 30)))
    assert list(est.spec_.stypes["users"]) == ["__const__"]


@both
def test_child_table_with_no_rows_before_the_first_cutoff(family):
    rng = np.random.default_rng(2)
    late = pd.DataFrame({"id": np.arange(50), "user_id": rng.integers(0, 30, 50), "stars": rng.integers(1, 6, 50),
                         "at": pd.Timestamp("2021-08-15") + pd.to_timedelta(rng.integers(0, 60, 50), "D")})
    db = _users_orders(_users(age=rng.normal(size=30)), _orders(rng, 30), extra={"reviews": late},
                       fkeys={"reviews": {"user_id": "users"}}, times={"reviews": "at"})
    _check(family, db)


@both
def test_all_missing_columns_are_dropped(family):
    rng = np.random.default_rng(3)
    users = _users(age=rng.normal(size=30), empty_num=np.nan, empty_obj=None)
    orders = _orders(rng, 30, note=pd.Series([None] * 400, dtype=object), inf_only=np.inf)
    est, _ = _check(family, _users_orders(users, orders))
    assert list(est.spec_.stypes["users"]) == ["age"]
    assert {"note", "inf_only"}.isdisjoint(est.spec_.stypes["orders"]) and "amount" in est.spec_.stypes["orders"]


@both
def test_text_only_tables(family):
    rng = np.random.default_rng(4)
    vocab = np.array(["red", "blue", "shoes", "hat", "green", "scarf", "and", "gloves", "lamp", "very", "long"])

    def sentences(n):
        return [" ".join(rng.choice(vocab, rng.integers(3, 9))) for _ in range(n)]

    users = _users(bio=sentences(30))
    orders = _orders(rng, 30).drop(columns="amount").assign(comment=lambda d: sentences(len(d)))
    items = pd.DataFrame({"id": np.arange(20), "title": sentences(20)})  # a table of text only, no keys to it
    est, _ = _check(family, _users_orders(users, orders, extra={"items": items}))
    assert {str(s) for s in est.spec_.stypes["users"].values()} == {"text_embedded"}
    assert {str(s) for s in est.spec_.stypes["items"].values()} == {"text_embedded"}


@both
def test_entity_without_history_gets_a_prediction(family):
    rng = np.random.default_rng(5)
    orders = _orders(rng, 25)  # users 25..29 never order
    db = _users_orders(_users(age=rng.normal(size=30)), orders)
    est, _ = _check(family, db)
    from skrel.data import RelationalDataset

    X = RelationalDataset(db, "users", np.arange(25, 30), np.full(5, pd.Timestamp("2021-09-01")))
    proba = est.predict_proba(X)
    assert proba.shape == (5, 2) and np.isfinite(proba).all()


@both
def test_high_cardinality_categoricals_stay_small(family):
    """A code with more than 2000 distinct values: inferred as text (hashed, fixed width), or
    typed categorical by the user, its vocabulary is capped; the model stays small either way."""
    from skrel.graph.hetero import MAX_CATEGORIES

    rng = np.random.default_rng(6)
    n = 3000
    codes = np.where(rng.random(n) < 0.3, rng.choice(["a", "b", "c"], n), np.char.add("c", np.arange(n).astype(str)))
    orders = _orders(rng, 300, n=n, code=codes)
    db = _users_orders(_users(300, age=rng.normal(size=300)), orders)
    est, _ = _check(family, db)
    assert str(est.spec_.stypes["orders"]["code"]) in ("text_embedded", "categorical")
    assert sum(p.numel() for p in est.module_.parameters()) < 100_000
    if family == "rdl":  # the user's own stype: a categorical with 2100 categories
        est = make(family, stypes={"orders": {"code": "categorical"}}).fit(db, _active_task())
        (values, _), = [v for k, v in est.spec_.col_stats["orders"]["code"].items() if k.name == "COUNT"]
        assert len(values) == MAX_CATEGORIES
        assert sum(p.numel() for p in est.module_.parameters()) < 100_000


@both
def test_duplicate_column_names_across_tables(family):
    rng = np.random.default_rng(7)
    users = _users(value=rng.normal(size=30), name=rng.choice(["x", "y"], 30))
    orders = _orders(rng, 30, value=rng.normal(size=400), name=rng.choice(["x", "y", "z"], 400))
    est, _ = _check(family, _users_orders(users, orders))
    assert "value" in est.spec_.stypes["users"] and "value" in est.spec_.stypes["orders"]


@both
def test_table_referenced_by_two_foreign_keys_of_one_table(family):
    rng = np.random.default_rng(8)
    transfers = pd.DataFrame({"id": np.arange(300), "sender": rng.integers(0, 30, 300),
                              "receiver": rng.integers(0, 30, 300), "amount": rng.gamma(2.0, 5.0, 300),
                              "at": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, 300), "D")})
    db = _users_orders(_users(age=rng.normal(size=30)), _orders(rng, 30), extra={"transfers": transfers},
                       fkeys={"transfers": {"sender": "users", "receiver": "users"}}, times={"transfers": "at"})
    edge_types = build_graph(db).edge_types
    assert len(set(edge_types)) == len(edge_types) == 6
    assert ("transfers", "f2p_sender", "users") in edge_types and ("transfers", "f2p_receiver", "users") in edge_types
    est, _ = _check(family, db)
    if family == "rdl":
        names = set(est.module_.gnn._names.values())
        assert len(names) == len(edge_types)


@both
def test_self_referencing_foreign_key(family):
    rng = np.random.default_rng(9)
    referrer = rng.integers(0, 30, 30).astype(float)
    referrer[:5] = np.nan  # roots
    users = _users(age=rng.normal(size=30), referrer=referrer)
    db = _users_orders(users, _orders(rng, 30), fkeys={"users": {"referrer": "users"}})
    edge_types = build_graph(db).edge_types
    assert ("users", "f2p_referrer", "users") in edge_types and ("users", "rev_f2p_referrer", "users") in edge_types
    _check(family, db)


# ---------------------------------------------------------------------- zero-inflated regression
def make_zero_inflated(seed: int = 0, n_users: int = 300, days: int = 400) -> tuple[Database, Task]:
    """users <- orders; a few users order every few days, most almost never: the 14-day spend is 0
    for about 90% of (user, cutoff) rows, and the non-zero ones follow from the user's history."""
    rng = np.random.default_rng(seed)
    active = rng.random(n_users) < 0.1
    counts = rng.poisson(np.where(active, 0.25, 0.003) * days)
    orders = pd.DataFrame({"id": np.arange(counts.sum()), "user_id": np.repeat(np.arange(n_users), counts),
                           "at": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, days, counts.sum()), "D"),
                           "amount": np.round(rng.gamma(4.0, 10.0, counts.sum()), 2)})
    users = _users(n_users, age=rng.integers(18, 70, n_users).astype(float))
    sql = """SELECT t.timestamp, u.user_id, COALESCE(SUM(o.amount), 0) AS spend
             FROM timestamps t CROSS JOIN users u
             LEFT JOIN orders o ON o.user_id = u.user_id AND o.at > t.timestamp AND o.at <= t.timestamp + {window}
             GROUP BY t.timestamp, u.user_id"""
    start = pd.Timestamp("2020-01-01")
    task = Task(name="spend", entity_table="users", entity_col="user_id", target_col="spend", task_type="regression",
                window=pd.Timedelta(days=14), label_sql=sql, val_timestamp=start + pd.Timedelta(days=days - 120),
                test_timestamp=start + pd.Timedelta(days=days - 60), num_eval_timestamps=4)
    return _users_orders(users, orders), task


@pytest.fixture(scope="module")
def zero_inflated():
    return make_zero_inflated()


def test_zero_inflated_task_is_zero_inflated(zero_inflated):
    db, task = zero_inflated
    _, y = task.split(db, "train")
    assert 0.85 < (y == 0).mean() < 0.95 and np.median(y) == 0


@both
def test_zero_inflated_regression_beats_predicting_zero(family, zero_inflated):
    """Issue 10: with plain L1 on unit-scale outputs both families stayed at (or near) the MAE of
    predicting 0. Before the head's fix these settings gave 0.91 (RDL) and 0.77 (RelGT) of it;
    after, 0.61 and 0.52."""
    db, task = zero_inflated
    settings = {"rdl": dict(max_epochs=5, batch_size=128),
                "relgt": dict(max_epochs=4, batch_size=32, channels=16, tokens=16)}[family]
    _, pred = _fit_predict(family, db, task, **settings)
    _, y = task.split(db, "test")
    mae, zero = np.abs(pred - y).mean(), np.abs(y).mean()
    assert mae < 0.7 * zero, (mae, zero)
