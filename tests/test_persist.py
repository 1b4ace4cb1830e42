"""Saved models (skrel.persist) and the schema-drift checks of a loaded model (skrel.data.drift)."""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import skrel
from conftest import make_shop, shop_task
from skrel.data import Database, SchemaError, Table
from skrel.data.drift import DriftWarning
from skrel.estimators.baseline import BaselineEstimator
from skrel.estimators.dfs import DFSEstimator
from skrel.persist import FORMAT_VERSION, MAGIC, ModelFileError, ModelVersionWarning, load_model, save_model

AT = pd.Timestamp("2021-07-01")  # the shop task's test timestamp


def rebuild(db: Database, **changes) -> Database:
    """``db`` with some tables replaced (a Table, or None to drop it); the others as they are."""
    tables = {n: Table(t.df, t.pkey, dict(t.fkeys), t.time_col) for n, t in db.tables.items()}
    for name, table in changes.items():
        if table is None:
            del tables[name]
        else:
            tables[name] = table
    return Database(tables)


def users_with(db: Database, **columns) -> Table:
    df = db["users"].df.copy()
    for c, v in columns.items():
        if v is None:
            df = df.drop(columns=c)
        else:
            df[c] = v
    return Table(df, "user_id")


@pytest.fixture(scope="module")
def shop():
    return make_shop(), shop_task("binary")


@pytest.fixture(scope="module")
def saved(shop, tmp_path_factory):
    """The baseline fitted on the shop task, saved and loaded back; and the file."""
    db, task = shop
    est = BaselineEstimator(n_estimators=20, random_state=0).fit(db, task)
    path = save_model(est, tmp_path_factory.mktemp("model") / "m.joblib", db=db, scores={"metric": "roc_auc",
                                                                                          "val": 0.7})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same version: no warning
        loaded = load_model(path)
    return est, loaded, path


# ---------------------------------------------------------------------- the file and its card
def test_card_describes_the_training(shop, saved):
    db, task = shop
    est, loaded, _ = saved
    card = loaded.model_card_
    assert card["skrel_version"] == skrel.__version__
    assert {"python", "numpy", "pandas", "scikit-learn", "joblib", "lightgbm"} <= set(card["versions"])
    assert card["estimator"]["family"] == "baseline" and card["estimator"]["params"]["n_estimators"] == 20
    assert card["task"] == {"name": "user-active", "entity_table": "users", "entity_col": "user_id",
                            "target_col": "churn_free", "task_type": "binary", "window": "60 days 00:00:00",
                            "metric": "roc_auc", "val_timestamp": "2021-03-01T00:00:00",
                            "test_timestamp": "2021-07-01T00:00:00"}
    assert card["classes"] == [0, 1]
    assert card["fingerprint"] == db.fingerprint
    assert card["scores"] == {"metric": "roc_auc", "val": 0.7}
    X, _ = task.split(db, "train")
    Xv, _ = task.split(db, "val")
    assert card["train_cutoffs"] == [pd.Timestamp(X.cutoffs.min()).isoformat(),
                                     pd.Timestamp(X.cutoffs.max()).isoformat()]
    assert card["val_cutoffs"][1] == pd.Timestamp(Xv.cutoffs.max()).isoformat()
    assert card["n_train_rows"] == len(X)
    orders = card["schema"]["orders"]
    assert orders["primary_key"] == "order_id" and orders["time_column"] == "at"
    assert orders["foreign_keys"] == {"user_id": "users", "item_id": "items"}
    assert orders["columns"]["qty"] == "float64" and orders["kinds"]["at"] == "datetime"
    # the training rows' database is cut at the test timestamp
    assert orders["rows"] == len(db.upto(task.test_timestamp)["orders"]) < len(db["orders"])
    assert card["categories"] == {"users": {"country": ["de", "fr", "uk"]}, "items": {"cat": ["a", "b", "c"]}}
    pd.testing.assert_frame_equal(loaded.predict_frame(db, AT), est.predict_frame(db, AT))


def test_model_fitted_on_rows(shop, tmp_path):
    db, task = shop
    X, y = task.split(db, "train")
    est = DFSEstimator(max_depth=1, n_estimators=20, random_state=0).fit(X, y)
    path = save_model(est, tmp_path / "rows.joblib", X=X)
    card = load_model(path).model_card_
    assert card["task"] == {"name": None, "entity_table": "users", "task_type": "binary"}
    assert card["val_cutoffs"] is None and card["fingerprint"] == X.db.fingerprint
    with pytest.raises(ValueError, match="fitted with fit\\(X, y\\): give its training rows as X="):
        save_model(est, tmp_path / "x.joblib", db=db)


def test_save_errors(shop, saved, tmp_path):
    db, task = shop
    est = saved[0]
    with pytest.raises(ValueError, match="needs the training data"):
        save_model(est, tmp_path / "m.joblib")
    with pytest.raises(ValueError, match="not both"):
        save_model(est, tmp_path / "m.joblib", db=db, X=task.split(db, "train")[0])
    missing = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError, match=f"directory '{missing}' does not exist"):
        save_model(est, missing / "m.joblib", db=db)
    assert not (tmp_path / "no").exists()
    with pytest.raises(NotFittedError):
        save_model(BaselineEstimator(), tmp_path / "m.joblib", db=db)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind


def test_load_rejects_what_is_not_a_skrel_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        load_model(tmp_path / "absent.joblib")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="is not a skrel model file: joblib cannot read it"):
        load_model(text)
    plain = tmp_path / "plain.joblib"
    joblib.dump(BaselineEstimator(), plain)
    with pytest.raises(ModelFileError, match="holding a BaselineEstimator, not a skrel model"):
        load_model(plain)
    joblib.dump({"estimator": BaselineEstimator(), "card": {}}, plain)
    with pytest.raises(ModelFileError, match="holding a dict, not a skrel model"):
        load_model(plain)
    joblib.dump({MAGIC: FORMAT_VERSION + 1, "card": {}, "estimator": None}, plain)
    with pytest.raises(ModelFileError, match=f"format {FORMAT_VERSION + 1}"):
        load_model(plain)


def test_another_skrel_version_warns(shop, saved, tmp_path, monkeypatch):
    db, _ = shop
    monkeypatch.setattr(skrel, "__version__", "0.0.1")
    path = save_model(saved[0], tmp_path / "old.joblib", db=db)
    monkeypatch.undo()
    with pytest.warns(ModelVersionWarning, match=f"saved by skrel 0.0.1; this is skrel {skrel.__version__}"):
        est = load_model(path)
    assert est.model_card_["skrel_version"] == "0.0.1"


# ---------------------------------------------------------------------- drift
def no_drift_warning():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error", DriftWarning)
    return ctx


def test_missing_table_or_column_and_changed_dtype_are_errors(shop, saved):
    db, _ = shop
    loaded = saved[1]
    with pytest.raises(SchemaError, match=r"Table\(s\) \['items'\] of the training schema are missing"):
        loaded.predict_frame(rebuild(db, items=None, orders=Table(db["orders"].df, "order_id", {"user_id": "users"},
                                                                  "at")), AT)
    with pytest.raises(SchemaError, match=r"Column\(s\) \['users.age'\] of the training schema are missing"):
        loaded.predict_frame(rebuild(db, users=users_with(db, age=None)), AT)
    with pytest.raises(SchemaError, match=r"Column users.age was numeric \(float64\) in training but is text "
                                          r"\(object\) now"):
        loaded.predict_frame(rebuild(db, users=users_with(db, age=db["users"].df["age"].astype(str))), AT)
    with pytest.raises(SchemaError, match=r"Foreign key orders.item_id -> items of the training schema is missing"):
        loaded.predict_frame(rebuild(db, orders=Table(db["orders"].df, "order_id", {"user_id": "users"}, "at")), AT)
    with pytest.raises(SchemaError, match="Table 'orders' has primary key 'order_id' and time column None"):
        loaded.predict_frame(rebuild(db, orders=Table(db["orders"].df, "order_id", dict(db["orders"].fkeys))), AT)


def test_compatible_dtypes_extra_tables_and_columns_are_accepted(shop, saved):
    db, _ = shop
    est, loaded = saved[:2]
    expected = est.predict_frame(db, AT)
    users = db["users"].df.assign(country=db["users"].df["country"].astype("category"), note="x")
    changed = Database({"extra": pd.DataFrame({"k": [1]}), **{n: Table(t.df, t.pkey, dict(t.fkeys), t.time_col)
                                                              for n, t in reversed(db.tables.items())},
                        "users": Table(users, "user_id")})
    ctx = no_drift_warning()
    try:
        got = loaded.predict_frame(changed, AT)
    finally:
        ctx.__exit__(None, None, None)
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("family", [BaselineEstimator, DFSEstimator])
def test_new_foreign_key_is_left_out_with_a_warning(shop, tmp_path, family):
    db, task = shop
    est = family(n_estimators=20, random_state=0, **({"max_depth": 1} if family is DFSEstimator else {}))
    est.fit(db, task)
    loaded = load_model(save_model(est, tmp_path / "m.joblib", db=db))
    cats = pd.DataFrame({"cat": ["a", "b", "c"], "label": ["x", "y", "z"]})
    changed = rebuild(db, cats=Table(cats, "cat"), items=Table(db["items"].df, "item_id", {"cat": "cats"}))
    with pytest.warns(DriftWarning, match=r"Foreign key\(s\) \['items.cat -> cats'\] are new since training"):
        got = loaded.predict_frame(changed, AT)
    pd.testing.assert_frame_equal(got, est.predict_frame(db, AT))


def test_unseen_categories_are_encoded_as_missing(shop, saved):
    db, _ = shop
    est, loaded = saved[:2]
    country = db["users"].df["country"].copy()
    country[[0, 5]] = ["es", "es"]
    with pytest.warns(DriftWarning, match=r"users.country: 1 value\(s\) \(first: \['es'\]\)"):
        got = loaded.predict_frame(rebuild(db, users=users_with(db, country=country)), AT)
    country[[0, 5]] = None  # what the family does with a value it never saw: missing
    expected = est.predict_frame(rebuild(db, users=users_with(db, country=country)), AT)
    pd.testing.assert_frame_equal(got, expected)
    assert not np.allclose(got["proba_1"], est.predict_frame(db, AT)["proba_1"])  # the rows did change


def test_prediction_time_outside_the_training_cutoffs_warns(shop, saved):
    db, _ = shop
    loaded = saved[1]
    card = loaded.model_card_
    with pytest.warns(DriftWarning, match=f"before the training data \\(training cutoffs {card['train_cutoffs'][0]}"
                                          .replace("T", " ")):
        loaded.predict_frame(db, "2019-12-01")
    with pytest.warns(DriftWarning, match="far past the training data"):
        loaded.predict_frame(db, "2023-06-01")
    ctx = no_drift_warning()
    try:
        loaded.predict_frame(db, AT)
        loaded.predict_frame(db, "2021-12-01")
    finally:
        ctx.__exit__(None, None, None)


@pytest.mark.parametrize("name", ["rdl", "relgt", "relatron"])
def test_graph_families_and_the_selector_round_trip(shop, tmp_path, name):
    """Torch modules (pickled through their state) and the selector save and load with their card."""
    import torch

    from skrel.estimators.registry import FAMILIES
    from skrel.relatron import RelatronSelector

    db, task = shop
    if name == "relatron":
        est = RelatronSelector(candidates=["baseline", "dfs"], macro="dfs", budget=2, post_selection=None,
                               embedding_params={"components": ("temporal", "scale")}, random_state=0)
    else:
        est = FAMILIES[name].get_class()(**{**FAMILIES[name].test_params, "max_epochs": 1, "random_state": 0})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        est.fit(db, task)
        loaded = load_model(save_model(est, tmp_path / "m.joblib", db=db))
        pd.testing.assert_frame_equal(loaded.predict_frame(db, AT), est.predict_frame(db, AT))
    finally:
        torch.set_num_threads(threads)
    assert loaded.model_card_["estimator"]["family"] == name
    if name == "relatron":
        assert loaded.model_card_["estimator"]["selected_family"] == "dfs"
