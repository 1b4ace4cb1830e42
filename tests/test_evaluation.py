"""skrel.metrics (one metric table, scorers that agree with scikit-learn's own) and skrel.evaluation (fit_and_report,
parse_params)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.model_selection import GridSearchCV, cross_val_score

from skrel.estimators.registry import make_model
from skrel.evaluation import fit_and_report, parse_params
from skrel.metrics import METRICS, evaluate, make_scorer
from skrel.model_selection import TemporalSplit


def fitted(db, task, **params):
    X, y = task.split(db, "train")
    return make_model("baseline", n_estimators=20, random_state=0, **params).fit(X, y)


@pytest.fixture(scope="module")
def binary(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "test")
    return fitted(db, task), X, y


def test_one_table():
    assert set(METRICS) == {"roc_auc", "accuracy", "log_loss", "mae", "rmse", "r2"}
    import skrel.evaluation

    assert skrel.evaluation.METRICS is METRICS and skrel.evaluation.evaluate is evaluate  # re-exported
    assert not hasattr(skrel.metrics, "greater_is_better")


def test_evaluate_binary_matches_sklearn(binary):
    est, X, y = binary
    proba = est.predict_proba(X)
    assert evaluate(est, X, y, "roc_auc") == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert evaluate(est, X, y, "accuracy") == pytest.approx(skm.accuracy_score(y, est.predict(X)))
    assert evaluate(est, X, y, "log_loss") == pytest.approx(skm.log_loss(y, proba))


def test_evaluate_string_labels_and_multiclass(shop_binary, shop_multiclass):
    db, task = shop_binary
    X, y = task.split(db, "train")
    X_test, y_test = task.split(db, "test")
    names = np.array(["idle", "active"])
    est = make_model("baseline", n_estimators=20, random_state=0).fit(X, names[y])
    # classes_ are sorted (["active", "idle"]): roc_auc must score the positive column of classes_[1]
    expected = skm.roc_auc_score(names[y_test] == "idle", est.predict_proba(X_test)[:, 1])
    assert evaluate(est, X_test, names[y_test], "roc_auc") == pytest.approx(expected)

    db, task = shop_multiclass
    est = fitted(db, task)
    X, y = task.split(db, "test")
    proba = est.predict_proba(X)
    assert evaluate(est, X, y, "roc_auc") == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert evaluate(est, X, y, "log_loss") == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2]))
    # a subset of rows that lacks a class is still scored against all of classes_
    one_class_missing = y != 2
    assert np.isfinite(evaluate(est, X[one_class_missing], y[one_class_missing], "log_loss"))


def test_evaluate_regression_and_errors(shop_regression):
    db, task = shop_regression
    est = fitted(db, task)
    X, y = task.split(db, "test")
    pred = est.predict(X)
    assert evaluate(est, X, y, "mae") == pytest.approx(skm.mean_absolute_error(y, pred))
    assert evaluate(est, X, y, "rmse") == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert evaluate(est, X, y, "r2") == pytest.approx(skm.r2_score(y, pred))
    with pytest.raises(ValueError, match="'roc_auc' needs predicted probabilities.*regressor"):
        evaluate(est, X, y, "roc_auc")
    with pytest.raises(ValueError, match=r"Unknown metric 'auc'; choose one of \['accuracy'"):
        evaluate(est, X, y, "auc")
    with pytest.raises(ValueError, match="Unknown metric"):
        make_scorer("auc")


def test_scorers_are_higher_is_better(binary, shop_regression):
    est, X, y = binary
    for metric in ("roc_auc", "accuracy"):
        assert make_scorer(metric)(est, X, y) == evaluate(est, X, y, metric)
    assert make_scorer("log_loss")(est, X, y) == -evaluate(est, X, y, "log_loss") < 0
    db, task = shop_regression
    reg = fitted(db, task)
    Xr, yr = task.split(db, "test")
    for metric in ("mae", "rmse"):
        assert make_scorer(metric)(reg, Xr, yr) == -evaluate(reg, Xr, yr, metric) < 0
    assert make_scorer("r2")(reg, Xr, yr) == evaluate(reg, Xr, yr, "r2")
    assert repr(make_scorer("mae")) == "make_scorer('mae')"


def test_scorers_agree_with_sklearn_scoring_names(shop_binary, shop_regression):
    """As ``scoring=``, each scorer gives scikit-learn's own scorer's numbers, fold by fold."""
    db, task = shop_binary
    X, y = task.split(db, "train")
    cv = TemporalSplit(n_splits=2, gap=task.window)
    est = make_model("baseline", n_estimators=20, random_state=0)
    for ours, theirs in (("roc_auc", "roc_auc"), ("log_loss", "neg_log_loss"), ("accuracy", "accuracy")):
        np.testing.assert_allclose(cross_val_score(est, X, y, cv=cv, scoring=make_scorer(ours)),
                                   cross_val_score(est, X, y, cv=cv, scoring=theirs), rtol=1e-10)
    db, task = shop_regression
    X, y = task.split(db, "train")
    cv = TemporalSplit(n_splits=2, gap=task.window)
    for ours, theirs in (("mae", "neg_mean_absolute_error"), ("rmse", "neg_root_mean_squared_error"), ("r2", "r2")):
        np.testing.assert_allclose(cross_val_score(est, X, y, cv=cv, scoring=make_scorer(ours)),
                                   cross_val_score(est, X, y, cv=cv, scoring=theirs), rtol=1e-10)


def test_grid_search_picks_by_the_scorer(shop_regression):
    db, task = shop_regression
    X, y = task.split(db, "train")
    cv = TemporalSplit(n_splits=2, gap=task.window)
    grid = {"n_estimators": [1, 20]}
    search = GridSearchCV(make_model("baseline", random_state=0), grid, cv=cv, scoring=make_scorer("mae")).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert (scores < 0).all() and search.best_score_ == scores.max()
    assert search.best_params_ == {"n_estimators": grid["n_estimators"][int(np.argmax(scores))]}
    assert search.best_params_ == {"n_estimators": 20}  # one boosting round underfits


def test_fit_and_report(shop_binary):
    db, task = shop_binary
    r = fit_and_report("shop", db, task, "baseline", {"n_estimators": 20, "random_state": 0})
    assert {k: r[k] for k in ("dataset", "task", "model", "metric")} == {
        "dataset": "shop", "task": "user-active", "model": "baseline", "metric": "roc_auc"}
    assert r["params"] == {"n_estimators": 20, "random_state": 0}
    assert all(0 <= r[s] <= 1 for s in ("val", "test", "test_asof")) and r["fit_seconds"] > 0 and r["peak_rss_mb"] > 0
    est = make_model("baseline", n_estimators=20, random_state=0).fit(db, task)
    X, y = task.split(db, "test")
    assert r["test"] == pytest.approx(evaluate(est, X, y, "roc_auc"))


def test_parse_params():
    assert parse_params(["n_estimators=20", "lr=0.05", "fanouts=[8, 4]", "aggr=mean", "device=null",
                         "name=a=b", " verbose =1", "n_estimators=30"]) == {
        "n_estimators": 30, "lr": 0.05, "fanouts": [8, 4], "aggr": "mean", "device": None, "name": "a=b", "verbose": 1}
    assert parse_params(None) == {} and parse_params([]) == {}
    for bad in ("novalue", "=3"):
        with pytest.raises(ValueError, match=f"expected KEY=VALUE, got '{bad}'"):
            parse_params([bad])
