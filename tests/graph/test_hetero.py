"""The database -> heterogeneous temporal graph builder and the per-table features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from skrel.data import Database, SchemaError
from skrel.graph import NEVER, CallableTextEmbedder, HashingTextEmbedder, build_graph, feature_spec, materialize


def tiny_db(**kw) -> Database:
    users = pd.DataFrame({"uid": [10, 20, 30], "name": ["ann", "bob", "cy"], "age": [30.0, np.nan, 50.0]})
    orders = pd.DataFrame({
        "oid": [0, 1, 2, 3, 4],
        "uid": [20, 10, 20, 20, 30],
        "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        "kind": ["a", "b", "a", "a", "b"],
        "at": pd.to_datetime(["2020-03-01", "2020-01-01", "2020-01-01", None, "2020-02-01"]),
    })
    return Database({"users": users, "orders": orders}, primary_keys={"users": "uid", "orders": "oid"},
                    foreign_keys={"orders": {"uid": "users"}}, time_columns={"orders": "at"}, **kw)


def test_structure_names_times_and_csr():
    g = build_graph(tiny_db())
    assert g.node_types == ["users", "orders"]
    assert g.num_nodes == {"users": 3, "orders": 5}
    assert g.edge_types == [("orders", "f2p_uid", "users"), ("users", "rev_f2p_uid", "orders")]
    assert g.node_time["users"] is None and g.timed_types == ["orders"]
    assert g.node_time["orders"][3] == NEVER  # missing time: never visible
    assert g.node_time["orders"][1] == pd.Timestamp("2020-01-01").value
    rowptr, col = g.adj[("orders", "f2p_uid", "users")]
    # user 20 (node 1) has orders 0 (March), 2 (January), 3 (no time): oldest first, missing last
    assert col[rowptr[1]:rowptr[2]].tolist() == [2, 0, 3]
    assert col[rowptr[0]:rowptr[1]].tolist() == [1]
    rowptr, col = g.adj[("users", "rev_f2p_uid", "orders")]
    assert np.diff(rowptr).tolist() == [1] * 5 and col.tolist() == [1, 0, 1, 1, 2]
    src, dst = g.edge_index(("orders", "f2p_uid", "users"))
    assert sorted(zip(src.tolist(), dst.tolist())) == [(0, 1), (1, 0), (2, 1), (3, 1), (4, 2)]


def test_csr_matches_brute_force_on_shop(shop_db):
    g = build_graph(shop_db)
    orders = shop_db["orders"].df
    rowptr, col = g.adj[("orders", "f2p_user_id", "users")]
    times = g.node_time["orders"]
    for u in range(0, 60, 7):
        got = col[rowptr[u]:rowptr[u + 1]]
        want = np.flatnonzero(orders["user_id"].to_numpy() == shop_db["users"].df["user_id"].iloc[u])
        assert sorted(got.tolist()) == sorted(want.tolist())
        assert (np.diff(times[got]) >= 0).all()


def test_cached_per_database_and_hetero_data():
    db = tiny_db()
    assert build_graph(db) is build_graph(db)
    spec = feature_spec(db)
    data = build_graph(db).to_hetero_data(materialize(db, spec))
    data.validate()
    assert data["orders"].time.dtype == torch.int64 and data["orders"].tf.num_rows == 5
    assert data[("orders", "f2p_uid", "users")].edge_index.shape == (2, 5)


def test_node_index_maps_keys_and_names_unknown_ids():
    g = build_graph(tiny_db())
    assert g.node_index("users", [30, 10]).tolist() == [2, 0]
    with pytest.raises(ValueError, match=r"not primary-key values of table 'users' \(first: \[99\]\)"):
        g.node_index("users", [10, 99])


def test_dangling_keys_give_no_edge():
    users = pd.DataFrame({"uid": [1, 2]})
    orders = pd.DataFrame({"oid": [0, 1, 2], "uid": [1, 7, np.nan]})
    with pytest.warns(UserWarning):
        db = Database({"users": users, "orders": orders}, primary_keys={"users": "uid", "orders": "oid"},
                      foreign_keys={"orders": {"uid": "users"}}, dangling="null")
    g = build_graph(db)
    assert g.edge_index(("orders", "f2p_uid", "users")).tolist() == [[0], [0]]


def test_feature_spec_types_keys_and_constant_table():
    db = tiny_db()
    spec = feature_spec(db)
    assert "uid" not in spec.stypes["users"]
    assert "oid" not in spec.stypes["orders"] and "uid" not in spec.stypes["orders"]
    assert set(spec.stypes["orders"]) == {"amount", "kind", "at"}
    bare = Database({"a": pd.DataFrame({"id": [1, 2]}), "b": pd.DataFrame({"bid": [0], "a": [1]})},
                    primary_keys={"a": "id", "b": "bid"}, foreign_keys={"b": {"a": "a"}})
    assert list(feature_spec(bare).stypes["a"]) == ["__const__"]
    assert materialize(bare, feature_spec(bare))["a"].num_rows == 2


def test_materialize_reuses_training_statistics():
    db = tiny_db()
    spec = feature_spec(db, stypes={"orders": {"kind": "categorical"}})
    other = tiny_db()
    edited = other["orders"].df.copy()
    edited.loc[0, "kind"] = "zzz"  # a category unseen in training
    edited.loc[1, "amount"] = 1000.0
    other["orders"].df = edited  # tables are read-only: replace, never write in place
    tf_train = materialize(db, spec)["orders"]
    tf_other = materialize(other, spec)["orders"]
    import torch_frame

    cat_train = tf_train.feat_dict[torch_frame.categorical][:, 0]
    cat_other = tf_other.feat_dict[torch_frame.categorical][:, 0]
    assert cat_other[0] == -1 and (cat_other[1:] == cat_train[1:]).all()
    # statistics are the training ones: the changed amount does not move the stored mean
    assert spec.col_stats["orders"]["amount"] == feature_spec(tiny_db()).col_stats["orders"]["amount"]


def test_materialize_rejects_missing_columns():
    db = tiny_db()
    spec = feature_spec(db)
    users = db["users"].df.drop(columns=["age"])
    broken = Database({"users": users, "orders": db["orders"].df}, primary_keys={"users": "uid", "orders": "oid"},
                      foreign_keys={"orders": {"uid": "users"}}, time_columns={"orders": "at"})
    with pytest.raises(SchemaError, match=r"Table 'users' lacks feature column\(s\) \['age'\]"):
        materialize(broken, spec)


def test_stype_overrides_are_checked():
    with pytest.raises(SchemaError, match="unknown table"):
        feature_spec(tiny_db(), stypes={"nope": {}})
    with pytest.raises(SchemaError, match="key column"):
        feature_spec(tiny_db(), stypes={"orders": {"uid": "numerical"}})
    spec = feature_spec(tiny_db(), stypes={"orders": {"amount": None}})
    assert "amount" not in spec.stypes["orders"]


def test_text_embedders():
    emb = HashingTextEmbedder(dim=16)
    a = emb(["Lewis Hamilton", "Nick Heidfeld", None])
    assert a.shape == (3, 16) and torch.equal(a, emb(["Lewis Hamilton", "Nick Heidfeld", None]))
    assert torch.allclose(a[:2].norm(dim=1), torch.ones(2))
    calls = []

    def fn(texts):
        calls.append(len(texts))
        return torch.ones(len(texts), 3)

    db = tiny_db()
    spec = feature_spec(db, text_embedder=CallableTextEmbedder(fn, "ones"),
                        stypes={"users": {"name": "text_embedded"}})
    assert calls and spec.key != feature_spec(db, stypes={"users": {"name": "text_embedded"}}).key


def _with(db: Database, table: str, **columns) -> Database:
    tables = {t: db[t].df for t in db.table_names}
    tables[table] = tables[table].assign(**columns)
    return Database(tables, primary_keys={"users": "uid", "orders": "oid"}, foreign_keys={"orders": {"uid": "users"}},
                    time_columns={"orders": "at"})


def test_infinite_values_are_missing_in_statistics_and_features():
    import torch_frame

    db = tiny_db()
    inf = _with(db, "orders", amount=[np.inf, 2.0, -np.inf, 4.0, 5.0])
    nan = _with(db, "orders", amount=[np.nan, 2.0, np.nan, 4.0, 5.0])
    spec_inf, spec_nan = feature_spec(inf), feature_spec(nan)
    assert spec_inf.stypes == spec_nan.stypes
    assert spec_inf.col_stats["orders"]["amount"] == spec_nan.col_stats["orders"]["amount"]
    assert np.isfinite(list(spec_inf.col_stats["orders"]["amount"].values())[0])
    a = materialize(inf, spec_inf)["orders"].feat_dict[torch_frame.numerical]
    b = materialize(nan, spec_nan)["orders"].feat_dict[torch_frame.numerical]
    torch.testing.assert_close(a, b, equal_nan=True)
    # predict-time: an inf in another database is missing under the training statistics
    late = materialize(_with(db, "orders", amount=[1.0, np.inf, 3.0, 4.0, 5.0]), feature_spec(db))["orders"]
    assert torch.isnan(late.feat_dict[torch_frame.numerical][1]).all()
    assert np.isinf(inf["orders"].df["amount"]).sum() == 2  # the user's frame is untouched


def test_timedeltas_are_seconds_and_all_missing_columns_are_dropped():
    import torch_frame

    db = _with(tiny_db(), "users", wait=pd.to_timedelta([1, 2, None], "h"), blank=np.nan, none=None)
    spec = feature_spec(db)
    assert spec.stypes["users"]["wait"] == torch_frame.numerical
    assert "blank" not in spec.stypes["users"] and "none" not in spec.stypes["users"]
    assert spec.col_stats["users"]["wait"][list(spec.col_stats["users"]["wait"])[0]] == pytest.approx(5400.0)


def test_categorical_vocabularies_are_capped():
    import torch_frame

    from skrel.graph.hetero import MAX_CATEGORIES

    n = MAX_CATEGORIES + 600  # 300 rows of one code, then MAX_CATEGORIES + 300 codes seen once
    codes = np.r_[np.repeat(["common"], 300), np.char.add("c", np.arange(n - 300).astype(str))]
    users = pd.DataFrame({"uid": np.arange(n), "code": codes})
    db = Database({"users": users}, primary_keys={"users": "uid"})
    spec = feature_spec(db, stypes={"users": {"code": "categorical"}})
    (values, counts), = spec.col_stats["users"]["code"].values()
    assert len(values) == MAX_CATEGORIES and values[0] == "common" and counts[0] == 300
    idx = materialize(db, spec)["users"].feat_dict[torch_frame.categorical][:, 0]
    assert idx.max() == MAX_CATEGORIES - 1 and (idx == -1).sum() == 301


def test_vectorised_statistics_are_torch_frames():
    import torch_frame
    from torch_frame.data.stats import compute_col_stats

    from skrel.graph.hetero import _col_stats

    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    x[::7] = np.nan
    x[3] = -np.inf
    df = pd.DataFrame({"x": x, "i": rng.integers(0, 9, 500).astype(float), "c": rng.choice(["a", "b"], 500)})
    stypes = {"x": torch_frame.numerical, "i": torch_frame.numerical, "c": torch_frame.categorical}
    ours = _col_stats(df, stypes)
    for col, st in stypes.items():
        theirs = compute_col_stats(df[col], st)
        assert ours[col].keys() == theirs.keys()
        for key in theirs:
            if st == torch_frame.numerical:
                np.testing.assert_allclose(ours[col][key], theirs[key], rtol=1e-12)
            else:
                assert ours[col][key] == theirs[key]


def test_pandas_category_columns_are_categorical():
    """A column the user typed ``category`` is categorical, whatever its strings look like to
    torch_frame's inference (which reads long or many-valued strings as text)."""
    import torch_frame

    db = tiny_db()
    users = db["users"].df.assign(city=pd.Categorical(["a long city name", "another long city name", "x y z w"]))
    orders = db["orders"].df
    db2 = Database({"users": users, "orders": orders}, primary_keys={"users": "uid", "orders": "oid"},
                   foreign_keys={"orders": {"uid": "users"}}, time_columns={"orders": "at"})
    assert feature_spec(db2).stypes["users"]["city"] == torch_frame.categorical
