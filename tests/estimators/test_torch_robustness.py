"""RDL and RelGT on odd but legal databases (issue 10, items 3-5): each case a sensible model or one
clear error.

Every estimator here is built by :func:`make` from the per-family settings in :data:`FAMILIES`:
when a parameter is renamed, change :data:`RENAMED` (old name -> new name) and nothing else.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from skrel.data import Database, Task
from skrel.estimators.rdl import RDLEstimator
from skrel.estimators.relgt import RelGTEstimator
from skrel.graph import build_graph, feature_spec
from skrel.graph.hetero import UnsupportedColumnWarning

from conftest import make_shop, shop_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAMILIES = {
    "rdl": (RDLEstimator, dict(channels=8, epochs=1, fanouts=[4, 2], encoder_layers=1, min_steps_per_epoch=None,
                               random_state=0)),
    "relgt": (RelGTEstimator, dict(tokens=8, channels=8, heads=2, centroids=4, epochs=1, batch_size=64,
                                   random_state=0)),
}
RENAMED: dict[str, str] = {}  # e.g. {"epochs": "max_epochs", "layers": "num_layers", "patience": "n_iter_no_change"}


def make(family: str, **overrides):
    """A fast estimator of ``family`` ("rdl" or "relgt"), with ``overrides`` on its test settings."""
    cls, params = FAMILIES[family]
    params = {**params, **overrides}
    return cls(**{RENAMED.get(k, k): v for k, v in params.items()})


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
    n = len(shop["orders"].df)
    db = _shop_with(shop, "orders", tags=[[1.0, 2.0]] * n, words=[("a", "b")] * n)
    with pytest.warns(UnsupportedColumnWarning, match=r"orders\.tags, orders\.words") as record:
        spec = feature_spec(db)
    assert len([w for w in record if issubclass(w.category, UnsupportedColumnWarning)]) == 1
    assert "tags" not in spec.stypes["orders"] and "words" not in spec.stypes["orders"]
    assert "qty" in spec.stypes["orders"]


@both
def test_list_columns_fit_through_the_public_api(family, shop):
    n = len(shop["orders"].df)
    db = _shop_with(shop, "orders", tags=[[1.0, 2.0]] * n)
    with pytest.warns(UnsupportedColumnWarning, match=r"orders\.tags"):
        _, proba = _fit_predict(family, db)
    assert np.isfinite(proba).all()


@both
def test_column_named_empty_string(family, shop):
    db = _shop_with(shop, "users", **{"": np.arange(len(shop["users"].df), dtype=float)})
    assert "" in feature_spec(db).stypes["users"]
    _, proba = _fit_predict(family, db)
    assert np.isfinite(proba).all()


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
    assert list(est.spec_.stypes["orders"]) == ["amount"]


@both
def test_text_only_tables(family):
    rng = np.random.default_rng(4)
    words = np.array(["red shoes", "blue hat", "green scarf and gloves", "a very long description of a lamp"])
    users = _users(bio=rng.choice(words, 30))
    orders = _orders(rng, 30).drop(columns="amount").assign(comment=lambda d: rng.choice(words, len(d)))
    est, _ = _check(family, _users_orders(users, orders))
    assert {str(s) for s in est.spec_.stypes["users"].values()} == {"text_embedded"}


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
    rng = np.random.default_rng(6)
    n = 3000
    # In the 1000-row sample used for type inference the column looks categorical (a few frequent
    # codes); over the whole table it has more than 2000 distinct values.
    codes = np.where(rng.random(n) < 0.7, rng.choice(["a", "b", "c"], n), np.char.add("c", np.arange(n).astype(str)))
    orders = _orders(rng, 30, n=n, code=codes)
    db = _users_orders(_users(age=rng.normal(size=30)), orders)
    est, _ = _check(family, db)
    from skrel.graph.hetero import MAX_CATEGORIES

    for stats in est.spec_.col_stats["orders"].values():
        for key, value in stats.items():
            if key.name in ("COUNT", "MULTI_COUNT"):
                assert len(value[0]) <= MAX_CATEGORIES
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
