"""One conformance suite, run over every registered estimator family and every task kind.

Every family in ``skrel.estimators.registry.FAMILIES`` joins by registering; its ``test_params``
keep these fits small. The helpers (``make``, ``outputs``) read the registry when called, so a
family registered later (``tests/test_registry.py`` registers a toy one) is checked the same way.
"""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, ParameterSampler, cross_val_score
from sklearn.pipeline import Pipeline

from skrel.estimators import registry
from skrel.evaluation import make_scorer
from skrel.model_selection import TemporalSplit

FAMILIES = registry.family_names()

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is faster


def make(name, **extra):
    """An estimator of family ``name`` with its fast ``test_params`` and ``random_state=0``."""
    spec = registry.FAMILIES[name]
    return spec.get_class()(**{**spec.test_params, "random_state": 0, **extra})


@pytest.fixture(params=["binary", "regression"])
def problem(request, shop_binary, shop_regression):
    db, task = shop_binary if request.param == "binary" else shop_regression
    X, y = task.split(db, "train")
    X_val, y_val = task.split(db, "val")
    X_test, y_test = task.split(db, "test")
    return dict(db=db, task=task, X=X, y=y, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test)


def outputs(est, X):
    return est.predict_proba(X) if is_classifier(est) else est.predict(X)


@pytest.mark.parametrize("name", FAMILIES)
def test_init_stores_params_and_clone(name):
    est = make(name)
    params = est.get_params()
    twin = clone(est)
    assert twin.get_params() == params
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(twin))
    est.set_params(random_state=7)
    assert est.get_params()["random_state"] == 7


@pytest.mark.parametrize("name", FAMILIES)
def test_not_fitted(name, shop_binary):
    db, task = shop_binary
    X, _ = task.split(db, "val")
    with pytest.raises(NotFittedError):
        make(name).predict(X)


@pytest.mark.parametrize("name", FAMILIES)
def test_fit_returns_self_tags_and_persistence(name, problem, tmp_path):
    est = make(name)
    assert est.fit(problem["X"], problem["y"]) is est
    binary = problem["task"].task_type == "binary"
    assert is_classifier(est) == binary and is_regressor(est) == (not binary)
    X_test = problem["X_test"]
    out = outputs(est, X_test)
    assert out.shape[0] == len(X_test) and np.isfinite(out).all()
    if binary:
        assert out.shape == (len(X_test), 2) and np.allclose(out.sum(1), 1)
        assert set(np.unique(est.predict(X_test))) <= set(est.classes_)
    else:
        assert not hasattr(est, "predict_proba")
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    np.testing.assert_array_equal(outputs(joblib.load(path), X_test), out)
    buf = io.BytesIO()
    pickle.dump(est, buf)
    np.testing.assert_array_equal(outputs(pickle.loads(buf.getvalue()), X_test), out)


@pytest.mark.parametrize("name", FAMILIES)
def test_same_random_state_same_predictions(name, shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    X_test, _ = task.split(db, "test")
    a = make(name).fit(X, y).predict_proba(X_test)
    b = make(name).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", FAMILIES)
def test_fit_db_task_agrees_with_fit_X_y(name, problem):
    a = make(name).fit(problem["db"], problem["task"])
    b = make(name).fit(problem["X"], problem["y"], X_val=problem["X_val"], y_val=problem["y_val"])
    np.testing.assert_allclose(outputs(a, problem["X_test"]), outputs(b, problem["X_test"]), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", FAMILIES)
def test_grid_search_cross_val_and_pipeline(name, shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    X_test, _ = task.split(db, "test")
    cv = TemporalSplit(n_splits=2, gap=task.window)
    search = GridSearchCV(make(name), {"random_state": [0, 1]}, cv=cv, scoring="roc_auc").fit(X, y)
    assert 0.0 <= search.best_score_ <= 1.0
    assert search.predict_proba(X_test).shape == (len(X_test), 2)
    scores = cross_val_score(make(name), X, y, cv=cv, scoring="neg_log_loss")
    assert scores.shape == (2,) and np.isfinite(scores).all()
    pipe = Pipeline([("model", make(name))]).fit(X, y)
    assert is_classifier(pipe)
    np.testing.assert_allclose(pipe.predict_proba(X_test), make(name).fit(X, y).predict_proba(X_test))


@pytest.mark.parametrize("name", FAMILIES)
def test_fit_rejects_bad_input(name, shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    with pytest.raises(TypeError, match="RelationalDataset"):
        make(name).fit(np.zeros((len(y), 3)), y)
    with pytest.raises(ValueError, match="one label per row"):
        make(name).fit(X, y[:-1])
    with pytest.raises(TypeError, match="Task"):
        make(name).fit(db, y)
    with pytest.raises(ValueError, match="contradicts"):
        make(name, task_type="regression").fit(db, task)


@pytest.mark.parametrize("name", FAMILIES)
def test_parameter_vocabulary(name):
    """docs/parameters.md: no retired alias, and every parameter the family's kinds must have."""
    spec = registry.FAMILIES[name]
    params = spec.get_class()().get_params(deep=False)
    problems = registry.check_vocabulary(params, torch=spec.torch, boosted=spec.boosted)
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("name", FAMILIES)
def test_registry_entry_is_usable(name):
    """test_params, the budget parameter and search-space samples are parameters the family accepts."""
    spec = registry.FAMILIES[name]
    params = spec.get_class()().get_params(deep=False)
    assert spec.budget_param in params
    assert set(spec.test_params) <= set(params), sorted(set(spec.test_params) - set(params))
    for sample in ParameterSampler(spec.search_space, n_iter=5, random_state=0):
        clone(make(name).set_params(**sample))
    assert isinstance(spec.has_loss_surface(make(name)), bool)


def check_multiclass(name, db, task):
    """predict_proba is (n, 3) and sums to one, predict is in classes_, and a pickle predicts the same."""
    X, y = task.split(db, "train")
    X_test, y_test = task.split(db, "test")
    est = make(name).fit(X, y)
    assert is_classifier(est)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    proba = est.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    pred = est.predict(X_test)
    assert pred.shape == (len(X_test),) and set(np.unique(pred)) <= set(est.classes_)
    assert np.isfinite(make_scorer("log_loss")(est, X_test, y_test))
    twin = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(twin.predict_proba(X_test), proba)
    np.testing.assert_array_equal(twin.predict(X_test), pred)


@pytest.mark.parametrize("name", FAMILIES)
def test_multiclass(name, shop_multiclass):
    check_multiclass(name, *shop_multiclass)


@pytest.mark.parametrize("name", FAMILIES)
def test_loss_surface_flag_is_backed_by_the_landscape_tools(name):
    """A family registered with a loss surface has what the landscape metrics need; one without is refused."""
    from skrel.relatron import has_loss_surface

    est = make(name)
    assert has_loss_surface(est) == registry.FAMILIES[name].has_loss_surface(est)
    assert has_loss_surface(est) == hasattr(est, "probe_batches")


@pytest.mark.parametrize("name", FAMILIES)
def test_validation_rows_of_a_single_class(name, shop_binary):
    """A validation split holding one class cannot give an AUROC: every family still fits and predicts."""
    db, task = shop_binary
    X, y = task.split(db, "train")
    X_val, y_val = task.split(db, "val")
    one = y_val == y_val[0]
    est = make(name).fit(X, y, X_val=X_val[one], y_val=y_val[one])
    proba = est.predict_proba(task.split(db, "test")[0])
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1)
    if hasattr(est, "validation_scores_"):  # the torch families score such epochs by minus the loss
        assert all(np.isfinite(est.validation_scores_)) and all(s < 0 for s in est.validation_scores_)
