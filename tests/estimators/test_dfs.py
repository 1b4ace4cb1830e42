"""DFSEstimator: DFS features plus LightGBM, any scikit-learn estimator or TabPFN."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_classifier, is_regressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.impute import SimpleImputer

from skrel.estimators.dfs import DFSEstimator
from skrel.estimators.registry import MODELS, make_model
from skrel.features import dfs as dfs_module

FAST = dict(max_depth=1, windows=[60], random_state=0)


def test_classifier_on_db_and_task(shop_binary):
    db, task = shop_binary
    est = DFSEstimator(**FAST).fit(db, task)
    assert is_classifier(est) and list(est.classes_) == [0, 1]
    X, y = task.split(db, "test")
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    imp = est.feature_importances_
    assert isinstance(imp, pd.Series) and list(imp.index) == list(est.get_feature_names_out())
    assert "COUNT(orders, Last 60 Days)" in imp.index and imp.sum() > 0


def test_regressor_and_feature_names(shop_regression):
    db, task = shop_regression
    est = DFSEstimator(**FAST).fit(db, task)
    assert is_regressor(est) and not hasattr(est, "predict_proba")
    X, y = task.split(db, "test")
    pred = est.predict(X)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    assert est.transformer_.features_[0].name == "age"


def test_any_sklearn_learner_is_cloned(shop_binary):
    db, task = shop_binary
    learner = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=200))
    est = DFSEstimator(**FAST, learner=learner, agg_primitives=["count", "mean"]).fit(db, task)
    assert not hasattr(learner[-1], "coef_")  # the user's object is untouched
    assert est.learner_ is not learner
    X, _ = task.split(db, "val")
    assert est.predict_proba(X).shape == (len(X), 2)
    with pytest.raises(AttributeError, match="neither feature_importances_ nor coef_"):
        est.feature_importances_
    est = DFSEstimator(**FAST, learner=LogisticRegression(max_iter=50)).set_params(
        agg_primitives=["count"], ignore_columns={"users": ["age"]}, max_categories=1)
    est.fit(*task.split(db, "train"))
    assert est.feature_importances_.index.tolist() == ["COUNT(orders)", "COUNT(orders, Last 60 Days)"]


def test_learner_must_match_the_task(shop_binary):
    db, task = shop_binary
    with pytest.raises(ValueError, match="regressor but the task is a binary"):
        DFSEstimator(**FAST, learner=HistGradientBoostingRegressor()).fit(db, task)


def test_not_fitted(shop_binary):
    db, task = shop_binary
    with pytest.raises(NotFittedError):
        DFSEstimator().predict(task.split(db, "val")[0])
    with pytest.raises(NotFittedError):
        DFSEstimator().feature_importances_


def test_grid_search_over_the_learner_computes_features_once_per_rows(monkeypatch):
    from conftest import make_shop, shop_task

    db, task = make_shop(), shop_task("binary")  # a fresh database: an empty cache
    X, y = task.split(db, "train")
    calls = []
    engine = dfs_module.ENGINES["duckdb"]
    monkeypatch.setitem(dfs_module.ENGINES, "duckdb", lambda *a, **k: calls.append(len(a[4])) or engine(*a, **k))
    est = DFSEstimator(**FAST, learner=HistGradientBoostingClassifier(max_iter=5, early_stopping=False),
                       validation_fraction=None, max_features=None)
    grid = GridSearchCV(est, {"learner__max_iter": [3, 6], "learner__max_depth": [2, 3]}, cv=KFold(2),
                        scoring="roc_auc")
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    # KFold(2)'s folds use two row sets (each half is once a train, once a test set) and the refit
    # a third: three computations, not one per candidate and fold (4 x 2 x 2 + 1 = 17)
    assert sorted(calls) == [len(X) // 2, len(X) - len(X) // 2, len(X)]
    # with the feature budget, a fit computes every definition once per row set (then only the kept
    # ones are computed for other rows): at most two computations per row set
    calls.clear()
    GridSearchCV(est.set_params(max_features=5), {"learner__max_iter": [3, 6]}, cv=KFold(2),
                 scoring="roc_auc").fit(X, y)
    assert len(calls) <= 5 and set(calls) <= {len(X) // 2, len(X) - len(X) // 2, len(X)}


def test_verbose_progress(shop_binary, capsys, caplog):
    import logging

    db, task = shop_binary
    with caplog.at_level(logging.INFO, logger="skrel"):
        DFSEstimator(**FAST, verbose=1).fit(db, task)
    assert "features" in caplog.text  # log lines through logging, never print
    capsys.readouterr()
    DFSEstimator(**FAST).fit(db, task)
    assert capsys.readouterr().err == ""  # silent by default: no progress bar, no handler added


def test_registry_entry_is_fast(shop_binary):
    db, task = shop_binary
    est = make_model("dfs", **MODELS["dfs"].test_params)
    assert isinstance(est, DFSEstimator) and est.max_depth == 1
    est.fit(db, task)
    assert est.predict(task.split(db, "test")[0]).shape[0] > 0


# ---------------------------------------------------------------------------------------- TabPFN
@pytest.fixture(scope="session")
def tabpfn_checkpoints(tmp_path_factory):
    """Tiny random-weight TabPFN v2 checkpoints (classifier and regressor), made here: no download."""
    torch = pytest.importorskip("torch")
    v2 = pytest.importorskip("tabpfn.architectures.tabpfn_v2")
    out = {}
    folder = tmp_path_factory.mktemp("tabpfn")
    for kind in ("classifier", "regressor"):
        reg = kind == "regressor"
        config = v2.TabPFNV2Config(emsize=16, nlayers=1, nhead=2, max_num_classes=0 if reg else 10,
                                   num_buckets=64 if reg else 0)
        torch.manual_seed(0)
        state = v2.get_architecture(config).state_dict()
        if reg:
            state = {**state, "criterion.borders": torch.linspace(-5.0, 5.0, 65),
                     "criterion.losses_per_bucket": torch.zeros(64)}
        path = folder / f"tiny-{kind}.ckpt"
        torch.save({"state_dict": state, "config": dataclasses.asdict(config), "architecture_name": "tabpfn_v2"},
                   path)
        out[kind] = path
    return out


def test_tabpfn_from_a_local_checkpoint(shop_binary, shop_regression, tabpfn_checkpoints):
    db, task = shop_binary
    params = dict(max_depth=1, agg_primitives=["count", "mean"], windows=[], random_state=0)
    est = DFSEstimator(**params, learner="tabpfn", model_path=str(tabpfn_checkpoints["classifier"])).fit(db, task)
    X, _ = task.split(db, "test")
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert est.learner_.n_train_rows_ == len(task.split(db, "train")[0])
    db, task = shop_regression
    est = DFSEstimator(**params, learner="tabpfn", model_path=tabpfn_checkpoints["regressor"]).fit(db, task)
    assert np.isfinite(est.predict(task.split(db, "test")[0])).all()


def test_tabpfn_row_limit_is_explicit(shop_binary, tabpfn_checkpoints):
    from skrel.estimators._tabular import TabPFNLearner

    db, task = shop_binary
    X, y = task.split(db, "train")
    rng = np.random.default_rng(0)
    Xm = rng.normal(size=(len(y), 3))
    learner = TabPFNLearner(model_path=tabpfn_checkpoints["classifier"], max_train_rows=100, n_estimators=1,
                            random_state=0)
    with pytest.warns(UserWarning, match=f"training on 100 of {len(y)} rows"):
        learner.fit(Xm, y)
    assert learner.n_train_rows_ == 100 and set(learner.classes_) == {0, 1}


def test_tabpfn_missing_checkpoint_fails_before_any_work(shop_binary, tmp_path, monkeypatch):
    db, task = shop_binary
    calls = []
    monkeypatch.setitem(dfs_module.ENGINES, "duckdb", lambda *a, **k: calls.append(1))
    est = DFSEstimator(**FAST, learner="tabpfn", model_path=str(tmp_path / "nope.ckpt"))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        est.fit(db, task)
    with pytest.raises(ValueError, match="needs model_path"):
        DFSEstimator(**FAST, learner="tabpfn").fit(db, task)
    assert calls == []


def test_vocabulary_reaches_lightgbm(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    est = DFSEstimator(**FAST, n_estimators=300, lr=0.3, num_leaves=7, n_iter_no_change=3, n_jobs=1).fit(X, y)
    params = est.learner_.get_params()
    assert (params["learning_rate"], params["num_leaves"], params["n_jobs"]) == (0.3, 7, 1)
    assert est.learner_.best_iteration_ < 300  # validation_fraction=0.1: the latest cutoffs stopped it
    with pytest.raises(TypeError, match="early_stopping_rounds"):
        DFSEstimator(early_stopping_rounds=5)


# ---------------------------------------------------------------- label history
def test_label_history_features_are_appended(shop_binary):
    from skrel.features.label_history import LABEL_HISTORY_FEATURES, label_history_features

    db, task = shop_binary
    plain = DFSEstimator(**FAST).fit(db, task)
    est = DFSEstimator(**FAST, label_history=True).fit(db, task)
    assert est.feature_names_ == plain.feature_names_ + list(LABEL_HISTORY_FEATURES)
    assert list(est.get_feature_names_out()) == est.feature_names_
    assert list(est.feature_importances_.index) == est.feature_names_
    X, _ = task.split(db, "test")
    history = label_history_features(X, task, classes=est.classes_, horizon=est.horizon).to_numpy()
    np.testing.assert_array_equal(est._matrix(X)[:, -len(LABEL_HISTORY_FEATURES):], history)
    assert est.predict_proba(X).shape == (len(X), 2)


def test_label_history_needs_the_task(shop_regression):
    db, task = shop_regression
    X, y = task.split(db, "train")
    with pytest.raises(ValueError, match=r"label_history=True\) needs the task: call fit\(db, task\)"):
        DFSEstimator(**FAST, label_history=True).fit(X, y)


def test_label_history_predictions_ignore_rows_after_the_cutoff(shop_regression):
    from conftest import with_changes_after

    from skrel.data import RelationalDataset

    db, task = shop_regression
    est = DFSEstimator(**FAST, label_history=True).fit(db, task)
    ids = db["users"].df["user_id"].to_numpy()
    for day, seed in ((200, 0), (650, 2)):
        t = pd.Timestamp("2020-01-01") + pd.Timedelta(days=day)
        X = RelationalDataset(db, "users", ids, [t] * len(ids))
        changed = with_changes_after(db, t, np.random.default_rng(seed))
        np.testing.assert_allclose(est.predict(X.with_database(changed)), est.predict(X), rtol=1e-6)
