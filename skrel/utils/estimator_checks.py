"""The conformance suite of skrel estimator families, runnable on any family.

A family (a :class:`~skrel.RelationalEstimator` subclass registered in
:data:`skrel.estimators.registry.FAMILIES`, see ``docs/adding-a-family.md``) promises what
scikit-learn's model selection relies on: ``clone``, ``get_params``/``set_params``, not-fitted
errors, binary, multiclass and regression outputs, pickling, determinism under ``random_state``,
``fit(db, task)`` equal to ``fit(X, y, X_val=..., y_val=...)``, ``GridSearchCV``,
``cross_val_score`` and ``Pipeline``, clear errors on bad input, and the shared parameter
vocabulary. Each promise is one ``check_*`` function taking the estimator; the checks fit on
:func:`make_shop_database`, a small seeded shop (users, items, orders over two years) with a
binary, a regression and a three-class task (:func:`shop_task`).

Two ways to run them, as in scikit-learn (``sklearn.utils.estimator_checks``):

- :func:`check_estimator` runs every check on one estimator and raises on the first failure;
- :func:`parametrize_with_checks` is a pytest decorator yielding one ``(estimator, check)`` test
  per check, with ids such as ``baseline-check_not_fitted``.

The checks clone the estimator they are given (its parameters, ``random_state`` set to 0 unless
it is an int), so keep its settings small: a few seconds per fit (``FamilySpec.test_params``,
:func:`make_test_estimator`). The registry checks look the estimator's class up in
:data:`~skrel.estimators.registry.FAMILIES`; register the family first.

Examples
--------
>>> from skrel.utils.estimator_checks import make_test_estimator, parametrize_with_checks
>>> @parametrize_with_checks([make_test_estimator("baseline")])  # doctest: +SKIP
... def test_skrel_conformance(estimator, check):
...     check(estimator)
"""

from __future__ import annotations

import contextlib
import functools
import io
import pickle
import re
import tempfile
from numbers import Integral
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, ParameterSampler, cross_val_score
from sklearn.pipeline import Pipeline

__all__ = [
    "check_estimator",
    "parametrize_with_checks",
    "make_test_estimator",
    "make_shop_database",
    "shop_task",
    "SHOP_LABEL_SQL",
    "SHOP_REG_SQL",
    "SHOP_MULTICLASS_SQL",
    "check_init_stores_params_and_clone",
    "check_not_fitted",
    "check_fit_returns_self_tags_and_persistence",
    "check_same_random_state_same_predictions",
    "check_fit_db_task_agrees_with_fit_X_y",
    "check_grid_search_cross_val_and_pipeline",
    "check_fit_rejects_bad_input",
    "check_parameter_vocabulary",
    "check_registry_entry_is_usable",
    "check_multiclass",
    "check_loss_surface_flag_is_backed_by_the_landscape_tools",
    "check_validation_rows_of_a_single_class",
]


# ---------------------------------------------------------------------- the checks' data
def make_shop_database(seed: int = 0, n_users: int = 60, n_items: int = 15, n_orders: int = 1500):
    """users <- orders -> items, orders dated over two years; a user's spend drives the labels.

    Parameters
    ----------
    seed : int, default=0
        Seed of the generator.
    n_users, n_items, n_orders : int
        Rows of each table.

    Returns
    -------
    Database
    """
    from skrel.data import Database

    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "user_id": np.arange(n_users),
            "age": rng.integers(18, 70, n_users).astype(float),
            "country": rng.choice(["fr", "de", "uk"], n_users),
            "signup": pd.Timestamp("2019-06-01") + pd.to_timedelta(rng.integers(0, 200, n_users), "D"),
        }
    )
    items = pd.DataFrame(
        {"item_id": np.arange(n_items), "price": rng.gamma(2.0, 10.0, n_items), "cat": rng.choice(list("abc"), n_items)}
    )
    propensity = rng.gamma(1.0, 1.0, n_users)
    user = rng.choice(n_users, n_orders, p=propensity / propensity.sum())
    orders = pd.DataFrame(
        {
            "order_id": np.arange(n_orders),
            "user_id": user,
            "item_id": rng.integers(0, n_items, n_orders),
            "qty": rng.integers(1, 5, n_orders).astype(float),
            "at": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 730, n_orders), "D"),
        }
    )
    return Database(
        {"users": users, "items": items, "orders": orders},
        primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
        foreign_keys={"orders": {"user_id": "users", "item_id": "items"}},
        time_columns={"orders": "at"},
    )


#: binary: whether a user places at least two orders in the window
SHOP_LABEL_SQL = """
SELECT t.timestamp, u.user_id, CAST(COUNT(o.order_id) >= 2 AS INTEGER) AS churn_free
FROM timestamps t
CROSS JOIN users u
LEFT JOIN orders o ON o.user_id = u.user_id AND o.at > t.timestamp AND o.at <= t.timestamp + {window}
GROUP BY t.timestamp, u.user_id
"""

#: regression: the quantity a user orders in the window (users who order)
SHOP_REG_SQL = """
SELECT t.timestamp, u.user_id, SUM(o.qty) AS spend
FROM timestamps t
CROSS JOIN users u
JOIN orders o ON o.user_id = u.user_id AND o.at > t.timestamp AND o.at <= t.timestamp + {window}
GROUP BY t.timestamp, u.user_id
"""

#: three classes: a user's orders in the window, bucketed 0, 1 or 2+
SHOP_MULTICLASS_SQL = """
SELECT t.timestamp, u.user_id, CAST(LEAST(COUNT(o.order_id), 2) AS INTEGER) AS orders_bucket
FROM timestamps t
CROSS JOIN users u
LEFT JOIN orders o ON o.user_id = u.user_id AND o.at > t.timestamp AND o.at <= t.timestamp + {window}
GROUP BY t.timestamp, u.user_id
"""

_SHOP_TASKS = {
    "binary": ("user-active", "churn_free", SHOP_LABEL_SQL),
    "regression": ("user-spend", "spend", SHOP_REG_SQL),
    "multiclass": ("user-orders", "orders_bucket", SHOP_MULTICLASS_SQL),
}


def shop_task(kind: str = "binary"):
    """A task on :func:`make_shop_database`: 60-day windows, val from 2021-03-01, test from 2021-07-01.

    Parameters
    ----------
    kind : {"binary", "regression", "multiclass"}, default="binary"
        ``"binary"``: at least two orders (``user-active``); ``"regression"``: the quantity
        ordered (``user-spend``); ``"multiclass"``: 0, 1 or 2+ orders (``user-orders``, about
        30/25/45 percent of the train rows).

    Returns
    -------
    Task
    """
    from skrel.data import Task

    if kind not in _SHOP_TASKS:
        raise ValueError(f"kind must be one of {sorted(_SHOP_TASKS)}, got {kind!r}.")
    name, target, sql = _SHOP_TASKS[kind]
    return Task(name=name, entity_table="users", entity_col="user_id", target_col=target, task_type=kind,
                window=pd.Timedelta(days=60), val_timestamp=pd.Timestamp("2021-03-01"),
                test_timestamp=pd.Timestamp("2021-07-01"), label_sql=sql)


@functools.lru_cache(maxsize=None)
def _shop(kind: str):
    """``(db, task)`` of ``kind`` over one shared database (its label cache serves every check)."""
    return _shop_database(), shop_task(kind)


@functools.lru_cache(maxsize=None)
def _shop_database():
    return make_shop_database()


def _problem(kind: str) -> dict:
    db, task = _shop(kind)
    X, y = task.split(db, "train")
    X_val, y_val = task.split(db, "val")
    X_test, y_test = task.split(db, "test")
    return dict(db=db, task=task, X=X, y=y, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test)


# ---------------------------------------------------------------------- helpers
def make_test_estimator(name: str, **params):
    """An estimator of the registered family ``name`` with its ``test_params``, ``random_state=0``
    and ``params``: small settings the checks fit in seconds.

    Examples
    --------
    >>> make_test_estimator("baseline").get_params()["n_estimators"]
    20
    """
    from skrel.estimators.registry import get_spec

    spec = get_spec(name)
    return spec.get_class()(**{**spec.test_params, "random_state": 0, **params})


def _fresh(estimator, **params):
    """A clone of ``estimator`` with a fixed integer ``random_state`` and ``params`` set."""
    random_state = estimator.get_params().get("random_state")
    if not isinstance(random_state, Integral):
        random_state = 0
    return clone(estimator).set_params(**{"random_state": random_state, **params})


def _spec_of(estimator):
    """The :class:`~skrel.estimators.registry.FamilySpec` whose class ``estimator`` is an instance of."""
    from skrel.estimators.registry import FAMILIES

    cls = type(estimator)
    for spec in FAMILIES.values():
        if spec.cls != cls.__name__:
            continue
        try:
            if spec.get_class() is cls:
                return spec
        except (ImportError, AttributeError):
            continue
    raise ValueError(
        f"{cls.__name__} is not a registered family: add FAMILIES[NAME] = FamilySpec(NAME, "
        f"module={cls.__module__!r}, cls={cls.__name__!r}, ...) to skrel.estimators.registry.FAMILIES "
        "before running the checks (docs/adding-a-family.md)."
    )


def _label(estimator) -> str:
    """The registered family name of ``estimator``, else its class name (test ids)."""
    try:
        return _spec_of(estimator).name
    except ValueError:
        return type(estimator).__name__


def _outputs(est, X):
    return est.predict_proba(X) if is_classifier(est) else est.predict(X)


@contextlib.contextmanager
def _raises(exc_type, match: str):
    """Assert that the block raises ``exc_type`` with a message matching ``match``."""
    try:
        yield
    except exc_type as exc:
        if not re.search(match, str(exc)):
            raise AssertionError(f"{exc_type.__name__} raised, but its message does not match {match!r}: "
                                 f"{exc}") from exc
    else:
        raise AssertionError(f"expected {exc_type.__name__} matching {match!r}; nothing was raised")


# ---------------------------------------------------------------------- the checks
def check_init_stores_params_and_clone(estimator):
    """``clone`` keeps the parameters, ``__init__`` sets no fitted attribute, ``set_params`` works."""
    est = _fresh(estimator)
    params = est.get_params()
    twin = clone(est)
    assert twin.get_params() == params, "clone changed the parameters"
    fitted = [k for k in vars(twin) if k.endswith("_") and not k.startswith("_")]
    assert not fitted, f"an unfitted clone has fitted attributes {fitted}: __init__ must only store parameters"
    est.set_params(random_state=7)
    assert est.get_params()["random_state"] == 7, "set_params(random_state=7) did not set it"


def check_not_fitted(estimator):
    """``predict`` before ``fit`` raises NotFittedError."""
    db, task = _shop("binary")
    X, _ = task.split(db, "val")
    with _raises(NotFittedError, ""):
        _fresh(estimator).predict(X)


def check_fit_returns_self_tags_and_persistence(estimator, kind: str = "binary"):
    """``fit`` returns self; classifier or regressor as the task says; finite outputs of the right
    shape; joblib and pickle round trips predict the same."""
    p = _problem(kind)
    est = _fresh(estimator)
    assert est.fit(p["X"], p["y"]) is est, "fit must return self"
    binary = kind == "binary"
    assert is_classifier(est) == binary and is_regressor(est) == (not binary), (
        f"a fitted {kind} estimator must be a {'classifier' if binary else 'regressor'} (its tags)")
    X_test = p["X_test"]
    out = _outputs(est, X_test)
    assert out.shape[0] == len(X_test) and np.isfinite(out).all(), "outputs must be finite, one per row"
    if binary:
        assert out.shape == (len(X_test), 2) and np.allclose(out.sum(1), 1), "predict_proba must be (n, 2), rows summing to 1"
        assert set(np.unique(est.predict(X_test))) <= set(est.classes_), "predict must return values of classes_"
    else:
        assert not hasattr(est, "predict_proba"), "a regressor must not expose predict_proba"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        joblib.dump(est, path)
        np.testing.assert_array_equal(_outputs(joblib.load(path), X_test), out)
    buf = io.BytesIO()
    pickle.dump(est, buf)
    np.testing.assert_array_equal(_outputs(pickle.loads(buf.getvalue()), X_test), out)


def check_same_random_state_same_predictions(estimator):
    """Two fits with the same ``random_state`` predict identically."""
    db, task = _shop("binary")
    X, y = task.split(db, "train")
    X_test, _ = task.split(db, "test")
    a = _fresh(estimator).fit(X, y).predict_proba(X_test)
    b = _fresh(estimator).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)


def check_fit_db_task_agrees_with_fit_X_y(estimator, kind: str = "binary"):
    """``fit(db, task)`` is ``fit(X, y, X_val=..., y_val=...)`` on the task's train and val splits."""
    p = _problem(kind)
    a = _fresh(estimator).fit(p["db"], p["task"])
    b = _fresh(estimator).fit(p["X"], p["y"], X_val=p["X_val"], y_val=p["y_val"])
    np.testing.assert_allclose(_outputs(a, p["X_test"]), _outputs(b, p["X_test"]), rtol=1e-6, atol=1e-9)


def check_grid_search_cross_val_and_pipeline(estimator):
    """``GridSearchCV`` and ``cross_val_score`` with a ``TemporalSplit``, and a one-step ``Pipeline``."""
    from skrel.model_selection import TemporalSplit

    db, task = _shop("binary")
    X, y = task.split(db, "train")
    X_test, _ = task.split(db, "test")
    cv = TemporalSplit(n_splits=2, gap=task.window)
    search = GridSearchCV(_fresh(estimator), {"random_state": [0, 1]}, cv=cv, scoring="roc_auc").fit(X, y)
    assert 0.0 <= search.best_score_ <= 1.0
    assert search.predict_proba(X_test).shape == (len(X_test), 2)
    scores = cross_val_score(_fresh(estimator), X, y, cv=cv, scoring="neg_log_loss")
    assert scores.shape == (2,) and np.isfinite(scores).all(), f"cross_val_score gave {scores}"
    pipe = Pipeline([("model", _fresh(estimator))]).fit(X, y)
    assert is_classifier(pipe)
    np.testing.assert_allclose(pipe.predict_proba(X_test), _fresh(estimator).fit(X, y).predict_proba(X_test))


def check_fit_rejects_bad_input(estimator):
    """A non-relational X, a wrong number of labels, labels instead of a task and a task type that
    contradicts the task are refused with errors that say so."""
    db, task = _shop("binary")
    X, y = task.split(db, "train")
    with _raises(TypeError, "RelationalDataset"):
        _fresh(estimator).fit(np.zeros((len(y), 3)), y)
    with _raises(ValueError, "one label per row"):
        _fresh(estimator).fit(X, y[:-1])
    with _raises(TypeError, "Task"):
        _fresh(estimator).fit(db, y)
    with _raises(ValueError, "contradicts"):
        _fresh(estimator, task_type="regression").fit(db, task)


def check_parameter_vocabulary(estimator):
    """docs/parameters.md: no retired alias, and every parameter the family's kinds must have."""
    from skrel.estimators.registry import check_vocabulary

    spec = _spec_of(estimator)
    problems = check_vocabulary(estimator.get_params(deep=False), torch=spec.torch, boosted=spec.boosted)
    assert not problems, f"{spec.name}: " + "; ".join(problems)


def check_registry_entry_is_usable(estimator):
    """``test_params``, the budget parameter and search-space samples are parameters the family accepts."""
    spec = _spec_of(estimator)
    params = estimator.get_params(deep=False)
    assert spec.budget_param in params, f"budget_param {spec.budget_param!r} is not a parameter"
    unknown = sorted(set(spec.test_params) - set(params))
    assert not unknown, f"test_params names unknown parameters {unknown}"
    for sample in ParameterSampler(spec.search_space, n_iter=5, random_state=0):
        clone(_fresh(estimator).set_params(**sample))
    assert isinstance(spec.has_loss_surface(_fresh(estimator)), bool)


def check_multiclass(estimator):
    """predict_proba is (n, 3) and sums to one, predict is in classes_, and a pickle predicts the same."""
    from skrel.evaluation import make_scorer

    db, task = _shop("multiclass")
    X, y = task.split(db, "train")
    X_test, y_test = task.split(db, "test")
    est = _fresh(estimator).fit(X, y)
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


def check_loss_surface_flag_is_backed_by_the_landscape_tools(estimator):
    """A family registered with a loss surface has what the landscape metrics need; one without is refused."""
    from skrel.relatron import has_loss_surface

    est = _fresh(estimator)
    assert has_loss_surface(est) == _spec_of(est).has_loss_surface(est)
    assert has_loss_surface(est) == hasattr(est, "probe_batches"), (
        "a family with a loss surface must have probe_batches, and one without must not")


def check_validation_rows_of_a_single_class(estimator):
    """A validation split holding one class cannot give an AUROC: the family still fits and predicts."""
    db, task = _shop("binary")
    X, y = task.split(db, "train")
    X_val, y_val = task.split(db, "val")
    one = y_val == y_val[0]
    est = _fresh(estimator).fit(X, y, X_val=X_val[one], y_val=y_val[one])
    proba = est.predict_proba(task.split(db, "test")[0])
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1)
    if hasattr(est, "validation_scores_"):  # the torch families score such epochs by minus the loss
        assert all(np.isfinite(est.validation_scores_)) and all(s < 0 for s in est.validation_scores_)


# ---------------------------------------------------------------------- running them
def _yield_checks(estimator):
    """Every check, bound to its variant (the task kind) where it has several."""
    yield check_init_stores_params_and_clone
    yield check_not_fitted
    for kind in ("binary", "regression"):
        yield functools.partial(check_fit_returns_self_tags_and_persistence, kind=kind)
    yield check_same_random_state_same_predictions
    for kind in ("binary", "regression"):
        yield functools.partial(check_fit_db_task_agrees_with_fit_X_y, kind=kind)
    yield check_grid_search_cross_val_and_pipeline
    yield check_fit_rejects_bad_input
    yield check_parameter_vocabulary
    yield check_registry_entry_is_usable
    yield check_multiclass
    yield check_loss_surface_flag_is_backed_by_the_landscape_tools
    yield check_validation_rows_of_a_single_class


def _check_name(check) -> str:
    """``check_x`` or, for a variant, ``check_x(kind=binary)``."""
    if isinstance(check, functools.partial):
        args = ",".join(f"{k}={v}" for k, v in check.keywords.items())
        return f"{check.func.__name__}({args})"
    return check.__name__


def _expected(estimator, expected_failed_checks) -> dict:
    expected = expected_failed_checks(estimator) if callable(expected_failed_checks) else expected_failed_checks
    expected = dict(expected or {})
    names = {_check_name(c) for c in _yield_checks(estimator)}
    unknown = sorted(set(expected) - names)
    if unknown:
        raise ValueError(f"expected_failed_checks names unknown check(s) {unknown}; the checks are {sorted(names)}.")
    return expected


def _check_instance(estimator, where: str):
    if isinstance(estimator, type):
        raise TypeError(f"{where} takes estimator instances, got the class {estimator.__name__}; "
                        f"pass {estimator.__name__}(...) with small settings.")


def check_estimator(estimator, *, expected_failed_checks=None) -> list[dict]:
    """Run every conformance check on ``estimator``.

    Parameters
    ----------
    estimator : RelationalEstimator
        An instance of a registered family, with settings small enough to fit in seconds (the
        checks fit clones of it a few dozen times).
    expected_failed_checks : dict or callable, optional
        ``{check name: reason}`` (or a callable ``estimator -> dict``) of checks known to fail:
        they must fail, and are reported as expected failures. Names as in the results, e.g.
        ``"check_multiclass"`` or ``"check_fit_db_task_agrees_with_fit_X_y(kind=regression)"``.

    Returns
    -------
    list of dict
        One ``{"check": name, "status": "passed" | "expected failure", "reason": str | None}``
        per check, in order.

    Raises
    ------
    Exception
        The first unexpected failure, as the check raised it, with a note naming the check; an
        AssertionError when a check listed in ``expected_failed_checks`` passes.
    """
    _check_instance(estimator, "check_estimator")
    expected = _expected(estimator, expected_failed_checks)
    label = _label(estimator)
    results = []
    for check in _yield_checks(estimator):
        name = _check_name(check)
        try:
            check(estimator)
        except Exception as exc:
            if name in expected:
                results.append({"check": name, "status": "expected failure", "reason": expected[name]})
                continue
            exc.add_note(f"skrel conformance check {label}-{name} failed (skrel.utils.estimator_checks.{name.split('(')[0]}).")
            raise
        if name in expected:
            raise AssertionError(f"{label}-{name} passed, but expected_failed_checks says it fails "
                                 f"({expected[name]}); remove it from the list.")
        results.append({"check": name, "status": "passed", "reason": None})
    return results


def parametrize_with_checks(estimators, *, expected_failed_checks=None):
    """A pytest decorator that runs every conformance check on each estimator, one test per check.

    Parameters
    ----------
    estimators : list of RelationalEstimator
        Instances of registered families, with small settings (see :func:`check_estimator`).
    expected_failed_checks : callable, optional
        ``estimator -> {check name: reason}``: those checks are marked ``xfail(strict=True)``.

    Returns
    -------
    decorator
        ``pytest.mark.parametrize("estimator, check", ...)``; ids read ``<family>-<check>``, the
        family's registered name (its class name when it is not registered at collection time).

    Examples
    --------
    >>> @parametrize_with_checks([make_test_estimator("baseline")])  # doctest: +SKIP
    ... def test_skrel_conformance(estimator, check):
    ...     check(estimator)
    """
    import pytest

    params = []
    for estimator in estimators:
        _check_instance(estimator, "parametrize_with_checks")
        expected = _expected(estimator, expected_failed_checks)
        label = _label(estimator)
        for check in _yield_checks(estimator):
            name = _check_name(check)
            marks = [pytest.mark.xfail(reason=expected[name], strict=True)] if name in expected else []
            params.append(pytest.param(estimator, check, id=f"{label}-{name}", marks=marks))
    return pytest.mark.parametrize("estimator, check", params)
