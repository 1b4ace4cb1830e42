"""User names never meet the names the generated SQL uses: any legal column name gives the values
the same column gives under a plain name. Also foreign-key cycles and odd column types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skrel.data import Database, RelationalDataset, SchemaError
from skrel.features import DFSTransformer

# roles: users.{u_num, u_cat}; orders.{o_num, o_cat}; items.{i_num}; tags (no time column).{g_num}
PLAIN = {"u_num": "u_num", "u_cat": "u_cat", "o_num": "o_num", "o_cat": "o_cat", "i_num": "i_num",
         "g_num": "g_num"}


def make_db(names: dict | None = None, seed: int = 0) -> Database:
    """users <- orders <- items, orders -> tags (no time column); value columns renamed by ``names``."""
    n = dict(PLAIN, **(names or {}))
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2021-01-01")
    users = pd.DataFrame({"user_id": np.arange(8), n["u_num"]: rng.normal(size=8),
                          n["u_cat"]: rng.choice(["a", "b"], 8)})
    tags = pd.DataFrame({"tag_id": np.arange(4), n["g_num"]: [3.0, 1.0, 2.0, 5.0]})
    orders = pd.DataFrame({
        "order_id": np.arange(60), "user_id": rng.integers(0, 8, 60), "tag_id": rng.integers(0, 4, 60),
        n["o_num"]: rng.integers(1, 9, 60).astype(float), n["o_cat"]: rng.choice(["x", "y", "z"], 60),
        "at": t0 + pd.to_timedelta(rng.integers(0, 200, 60), "D"),
    })
    items = pd.DataFrame({"item_id": np.arange(150), "order_id": rng.integers(0, 60, 150),
                          n["i_num"]: rng.gamma(2.0, 3.0, 150),
                          "when": t0 + pd.to_timedelta(rng.integers(0, 200, 150), "D")})
    return Database(
        {"users": users, "tags": tags, "orders": orders, "items": items},
        primary_keys={"users": "user_id", "tags": "tag_id", "orders": "order_id", "items": "item_id"},
        foreign_keys={"orders": {"user_id": "users", "tag_id": "tags"}, "items": {"order_id": "orders"}},
        time_columns={"orders": "at", "items": "when"},
    )


def rows(db: Database) -> RelationalDataset:
    ids = np.tile(np.arange(8)[::-1], 3)  # not in key order
    cuts = np.repeat(pd.to_datetime(["2021-03-01", "2021-05-01", "2021-08-01"]).to_numpy(), 8)
    return RelationalDataset(db, "users", ids, cuts)


def features(names: dict | None = None, **params) -> pd.DataFrame:
    db = make_db(names)
    params = {"max_depth": 2, "windows": [60], **params}
    return DFSTransformer(**params).fit_transform(rows(db))


def rename(col: str, names: dict) -> str:
    for role, plain in PLAIN.items():
        col = col.replace(plain, f"\0{role}\0")
    for role in PLAIN:
        col = col.replace(f"\0{role}\0", names.get(role, role))
    return col


def assert_same_values(plain: pd.DataFrame, odd: pd.DataFrame) -> None:
    assert plain.shape == odd.shape
    for j in range(plain.shape[1]):
        a, b = plain.iloc[:, j], odd.iloc[:, j]
        if a.dtype == object:
            assert a.fillna("<NA>").tolist() == b.fillna("<NA>").tolist(), plain.columns[j]
        else:
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-12, err_msg=plain.columns[j])


@pytest.fixture(scope="module")
def plain():
    return features()


@pytest.mark.parametrize("names", [
    {"u_num": "__r"},  # once reordered the rows
    {"o_num": "v1", "o_cat": "v2"},  # once made MAX(orders.COUNT(items)) read orders.amount
    {"g_num": "__pos"},  # once replaced by row positions in a table without a time column
    {"u_num": "COUNT(orders)"},  # once dropped the aggregate of the same name
    {"o_num": "__cut", "i_num": "__fin", "u_cat": "__key"},
    {"o_num": "u0", "i_num": "a1", "g_num": "o0", "o_cat": "t0"},
])
def test_internal_names_are_out_of_reach(plain, names):
    odd = features(names)
    assert_same_values(plain, odd)
    assert list(odd.columns) == _unique([rename(c, names) for c in plain.columns])


def _unique(names):
    from skrel.features.dfs import unique_names

    return unique_names(names)


def test_a_column_named_like_a_generated_feature_keeps_both():
    out = features({"u_num": "COUNT(orders)"})
    assert "COUNT(orders)" in out.columns and "COUNT(orders) (2)" in out.columns
    # the user's column is the entity's own value; the aggregate counts orders
    assert not np.allclose(out["COUNT(orders)"].to_numpy(float), out["COUNT(orders) (2)"].to_numpy(float))
    assert (out["COUNT(orders) (2)"] >= 0).all() and out["COUNT(orders) (2)"].to_numpy(float).max() >= 2


def test_depth2_aggregate_reads_the_right_column():
    out = features({"o_num": "v1", "o_cat": "v2"})
    db = make_db({"o_num": "v1", "o_cat": "v2"})
    X = rows(db)
    # MAX(orders.COUNT(items)) by hand at the first row
    o, it = db["orders"].df, db["items"].df
    uid, cut = X.entity_ids[0], X.cutoffs[0]
    mine = o[(o.user_id == uid) & (o["at"] <= cut)]
    counts = [((it.order_id == k) & (it["when"] <= cut)).sum() for k in mine.order_id]
    assert out["MAX(orders.COUNT(items))"].iloc[0] == max(counts)


_adversarial = st.one_of(
    st.sampled_from(['"', '""', "a.b", "a b", "select", "FROM", "group", "order", "__r", "__pos", "__cut", "__key",
                     "__fin", "v0", "v1", "u0", "u1", "a1", "f1", "q1", "t0", "o0", "b0", "c0", "s", "p", "z", "e",
                     "COUNT(orders)", "MAX(items.i_num)", "MEAN(orders.o_num)", "orders.o_num", "x; DROP TABLE t",
                     "'", "\\", "ü", "1", "user_id", "at"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.fixed_dictionaries({role: _adversarial for role in PLAIN}))
def test_adversarial_names_give_the_same_values(plain, names):
    # names must stay legal: unique (case-insensitively) within a table, not a key or time column
    reserved = {"users": {"user_id"}, "orders": {"order_id", "user_id", "tag_id", "at"},
                "items": {"item_id", "order_id", "when"}, "tags": {"tag_id"}}
    by_table = {"users": ["u_num", "u_cat"], "orders": ["o_num", "o_cat"], "items": ["i_num"], "tags": ["g_num"]}
    for table, roles in by_table.items():
        lowered = [names[r].lower() for r in roles]
        if len(set(lowered)) < len(lowered) or set(lowered) & reserved[table]:
            return
    odd = features(names, windows=[])
    base = plain[[c for c in plain.columns if "Last 60 Days" not in c]]
    assert_same_values(base, odd)


# ------------------------------------------------------------------ cycles of foreign keys
def test_self_reference_and_cycles_do_not_recurse_forever():
    rng = np.random.default_rng(0)
    emp = pd.DataFrame({"emp_id": np.arange(10), "boss": [np.nan, 0, 0, 1, 1, 1, 2, 2, 3, 3],
                        "salary": rng.normal(size=10), "team": rng.integers(0, 3, 10)})
    teams = pd.DataFrame({"team_id": np.arange(3), "lead": [0, 1, 2]})  # teams.lead -> emp, emp.team -> teams
    db = Database({"emp": emp, "teams": teams}, primary_keys={"emp": "emp_id", "teams": "team_id"},
                  foreign_keys={"emp": {"boss": "emp", "team": "teams"}, "teams": {"lead": "emp"}})
    X = RelationalDataset(db, "emp", np.arange(10), np.full(10, np.datetime64("2021-01-01", "ns")))
    out = DFSTransformer(max_depth=2).fit_transform(X)
    reports = out["COUNT(emp)"].to_numpy()
    assert reports.tolist() == [2, 3, 2, 2, 0, 0, 0, 0, 0, 0]
    assert "MEAN(emp.salary)" in out.columns
    np.testing.assert_allclose(out["MEAN(emp.salary)"].iloc[0], emp.salary.iloc[[1, 2]].mean())


def test_database_mismatch_is_a_clear_error():
    t = DFSTransformer(max_depth=1).fit(rows(make_db()))
    other = make_db({"o_num": "amount"})
    with pytest.raises(SchemaError, match="orders.o_num"):
        t.transform(rows(other))
    db = make_db()
    changed = db["orders"].df.assign(o_num=db["orders"].df["o_num"].astype(str))
    db2 = Database({**{n: db[n].df for n in db.table_names}, "orders": changed},
                   primary_keys={"users": "user_id", "tags": "tag_id", "orders": "order_id", "items": "item_id"},
                   foreign_keys={"orders": {"user_id": "users", "tag_id": "tags"}, "items": {"order_id": "orders"}},
                   time_columns={"orders": "at", "items": "when"})
    with pytest.raises(SchemaError, match="orders.o_num"):
        t.transform(rows(db2))


# ------------------------------------------------------------------ odd column types and names
def test_list_columns_are_ignored_with_one_warning():
    db = make_db()
    orders = db["orders"].df.assign(basket=[[1, 2]] * len(db["orders"].df))
    db = Database({**{n: db[n].df for n in db.table_names}, "orders": orders},
                  primary_keys={"users": "user_id", "tags": "tag_id", "orders": "order_id", "items": "item_id"},
                  foreign_keys={"orders": {"user_id": "users", "tag_id": "tags"}, "items": {"order_id": "orders"}},
                  time_columns={"orders": "at", "items": "when"})
    with pytest.warns(UserWarning, match=r"orders\.basket") as record:
        out = DFSTransformer(max_depth=1).fit_transform(rows(db))
    assert len([w for w in record if "basket" in str(w.message)]) == 1
    assert not any("basket" in c for c in out.columns)


def test_timedelta_columns_are_seconds():
    db = make_db()
    orders = db["orders"].df.assign(wait=pd.to_timedelta(db["orders"].df["o_num"], "h"))
    db = Database({**{n: db[n].df for n in db.table_names}, "orders": orders},
                  primary_keys={"users": "user_id", "tags": "tag_id", "orders": "order_id", "items": "item_id"},
                  foreign_keys={"orders": {"user_id": "users", "tag_id": "tags"}, "items": {"order_id": "orders"}},
                  time_columns={"orders": "at", "items": "when"})
    out = DFSTransformer(max_depth=1).fit_transform(rows(db))
    np.testing.assert_allclose(out["MAX(orders.wait)"].to_numpy(float), out["MAX(orders.o_num)"].to_numpy(float) * 3600)


def test_a_column_named_empty_string_is_one_clear_error():
    from skrel.data import SchemaError

    with pytest.raises(SchemaError, match="'orders' has a column named '' .*Rename it"):
        features({"o_num": ""})
