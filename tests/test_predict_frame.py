"""predict_frame: every entity visible at a time, only the rows visible then, for every family and the selector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from conftest import make_shop, shop_task
from skrel.data import Database, Table
from skrel.estimators.baseline import BaselineEstimator
from skrel.estimators.dfs import DFSEstimator
from skrel.estimators.registry import FAMILIES
from skrel.predict import predict_frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AT = pd.Timestamp("2021-07-01")  # the shop task's test timestamp
# tiny graph-family settings: these tests are about which rows are read, not about accuracy
TINY = {"baseline": {"n_estimators": 20}, "dfs": {"max_depth": 1, "n_estimators": 20},
        "rdl": {"channels": 8, "max_epochs": 1, "fanouts": [8, 4], "encoder_layers": 1, "min_steps_per_epoch": None},
        "relgt": {"channels": 8, "max_epochs": 1, "tokens": 12, "centroids": 8}}
# the selector with its packaged bank, the family given (no meta-choice), two fits
SELECTOR = dict(candidates=["baseline", "dfs"], macro="dfs", budget=2, post_selection=None,
                embedding_params={"components": ("temporal", "scale")})


def changed_after(db: Database, at: pd.Timestamp, seed: int = 0) -> Database:
    """``db`` with every row dated after ``at`` changed: numbers redrawn, foreign keys pointed at other
    parents, and 50 more rows per timed table (copies of earlier rows, re-dated after ``at``)."""
    rng = np.random.default_rng(seed)
    tables = {}
    for name, t in db.tables.items():
        df = t.df.copy()
        if t.time_col is not None:
            later = (df[t.time_col] > at).to_numpy()
            for c in df.columns:
                if c in t.fkeys:
                    parents = db[t.fkeys[c]].df[db[t.fkeys[c]].pkey].to_numpy()
                    df.loc[later, c] = rng.choice(parents, int(later.sum()))
                elif c not in (t.pkey, t.time_col) and pd.api.types.is_float_dtype(df[c]):
                    df.loc[later, c] = rng.normal(50.0, 30.0, int(later.sum()))
            new = df[~later].sample(n=50, random_state=seed)
            new[t.time_col] = at + pd.to_timedelta(rng.integers(1, 300, len(new)), "D")
            new[t.pkey] = df[t.pkey].max() + 1 + np.arange(len(new))
            df = pd.concat([df, new], ignore_index=True)
        tables[name] = Table(df, t.pkey, dict(t.fkeys), t.time_col)
    return Database(tables)


@pytest.fixture(scope="module")
def shop():
    return make_shop(), shop_task("binary")


@pytest.fixture(scope="module")
def later_shop(shop):
    db, _ = shop
    changed = changed_after(db, AT)
    assert changed.fingerprint != db.fingerprint and len(changed["orders"]) == len(db["orders"]) + 50
    assert changed.upto(AT).fingerprint == db.upto(AT).fingerprint  # the same database as of AT
    return changed


def fit(name, db, task):
    if name == "relatron":
        from skrel.relatron import RelatronSelector

        return RelatronSelector(random_state=0, **SELECTOR).fit(db, task)
    return FAMILIES[name].get_class()(random_state=0, **TINY[name]).fit(db, task)


@pytest.mark.parametrize("name", [*sorted(FAMILIES), "relatron"])
def test_rows_after_at_change_nothing(name, shop, later_shop):
    db, task = shop
    est = fit(name, db, task)
    frame = est.predict_frame(db, AT)
    assert list(frame.columns) == ["user_id", "cutoff", "prediction", "proba_0", "proba_1"]
    assert frame["user_id"].tolist() == db["users"].df["user_id"].tolist()
    assert (frame["cutoff"] == AT).all() and frame["cutoff"].dtype == "datetime64[ns]"
    pd.testing.assert_frame_equal(est.predict_frame(later_shop, AT), frame)
    # the same rows in the task's test split (cutoff AT, over the database cut at AT) get the same predictions
    X, _ = task.split(db, "test")
    at_test = X[X.cutoffs == AT.to_datetime64()]
    got = frame.set_index("user_id").loc[at_test.entity_ids, ["proba_0", "proba_1"]].to_numpy()
    np.testing.assert_array_equal(got, est.predict_proba(at_test))
    proba = frame[["proba_0", "proba_1"]].to_numpy()
    assert (frame["prediction"].to_numpy() == est.classes_[np.argmax(proba, 1)]).all()


def test_the_change_after_at_is_seen_later(shop, later_shop):
    """Not a vacuous guarantee: predicting after the change, the changed rows do count."""
    db, task = shop
    est = fit("dfs", db, task)
    later = AT + pd.Timedelta(days=200)
    assert not np.allclose(est.predict_frame(db, later)["proba_1"], est.predict_frame(later_shop, later)["proba_1"])


def test_regressor_frame(shop):
    db, _ = shop
    task = shop_task("regression")
    est = BaselineEstimator(n_estimators=20, random_state=0).fit(db, task)
    frame = est.predict_frame(db, AT)
    assert list(frame.columns) == ["user_id", "cutoff", "prediction"] and frame["prediction"].dtype == np.float64
    X, _ = task.split(db, "test")
    at_test = X[X.cutoffs == AT.to_datetime64()]
    np.testing.assert_array_equal(frame.set_index("user_id").loc[at_test.entity_ids, "prediction"],
                                  est.predict(at_test))


@pytest.fixture(scope="module")
def baseline(shop):
    db, task = shop
    return BaselineEstimator(n_estimators=20, random_state=0).fit(db, task)


def test_entities_order_chunks_and_time_zones(shop, baseline):
    db, _ = shop
    full = baseline.predict_frame(db, AT).set_index("user_id")
    some = baseline.predict_frame(db, AT, entities=[7, 3, 40])
    assert some["user_id"].tolist() == [7, 3, 40]
    pd.testing.assert_frame_equal(some.set_index("user_id"), full.loc[[7, 3, 40]])
    pd.testing.assert_frame_equal(baseline.predict_frame(db, AT, entities=pd.Series([3, 7])).set_index("user_id"),
                                  full.loc[[3, 7]])
    pd.testing.assert_frame_equal(predict_frame(baseline, db, AT, chunk_rows=7), baseline.predict_frame(db, AT))
    # an aware time is the same instant in naive UTC, as the database stores times
    pd.testing.assert_frame_equal(baseline.predict_frame(db, "2021-07-01 02:00:00+02:00"),
                                  baseline.predict_frame(db, AT))


def test_entity_table_with_a_time_column(shop):
    """Entities dated after ``at`` are not scored by default and refused when named."""
    db, task = shop
    users = db["users"].df.copy()
    users.loc[users["user_id"] == 5, "signup"] = pd.Timestamp("2021-08-01")
    timed = Database({"users": Table(users, "user_id", {}, "signup"),
                      **{n: Table(t.df, t.pkey, dict(t.fkeys), t.time_col) for n, t in db.tables.items()
                         if n != "users"}})
    est = BaselineEstimator(n_estimators=20, random_state=0).fit(timed, task)
    frame = est.predict_frame(timed, AT)
    assert 5 not in frame["user_id"].tolist() and len(frame) == len(users) - 1
    assert 5 in est.predict_frame(timed, "2021-08-01")["user_id"].tolist()
    with pytest.raises(ValueError, match=r"1 of the 2 entities are not visible at 2021-07-01 00:00:00: 1 are dated "
                                         r"after 2021-07-01 00:00:00 or have no time \(first: \[5\]\)"):
        est.predict_frame(timed, AT, entities=[4, 5])
    with pytest.raises(ValueError, match=r"No row of 'users' is visible at 2019-01-01"):
        est.predict_frame(timed, "2019-01-01")


def test_bad_arguments(shop, baseline):
    db, _ = shop
    with pytest.raises(ValueError, match=r"2 of the 3 entities are not visible .* 2 are not in users.user_id "
                                         r"\(first: \[999, 'x'\]\)"):
        baseline.predict_frame(db, AT, entities=np.array([1, 999, "x"], dtype=object))
    with pytest.raises(ValueError, match="entities is empty"):
        baseline.predict_frame(db, AT, entities=[])
    with pytest.raises(ValueError, match="entities must be 1-D"):
        baseline.predict_frame(db, AT, entities=[[1, 2]])
    with pytest.raises(ValueError, match="at is required"):
        baseline.predict_frame(db, None)
    with pytest.raises(ValueError, match="at='soon' is not a timestamp"):
        baseline.predict_frame(db, "soon")
    with pytest.raises(TypeError, match="db must be a skrel Database"):
        baseline.predict_frame(db["users"].df, AT)
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer"):
        baseline.predict_frame(db, AT, chunk_rows=0)
    with pytest.raises(NotFittedError):
        DFSEstimator().predict_frame(db, AT)


def test_every_estimator_has_it():
    from skrel.relatron import RelatronSelector

    for spec in FAMILIES.values():
        assert callable(getattr(spec.get_class(), "predict_frame", None)), spec.name
    assert callable(RelatronSelector.predict_frame)
