"""A family defined outside skrel, registered for this module's tests, passing every conformance check.

This is how another package tests its family (docs/adding-a-family.md shows the registration and the
test below): the family is a ``RelationalEstimator`` subclass living in the package, a ``FamilySpec``
registers it, and ``skrel.utils.estimator_checks.parametrize_with_checks`` runs skrel's conformance
suite on it, one pytest test per check. The other tests here check the checks: a broken family fails
the check that names its fault, expected failures are honoured, and readable ids.
"""

from __future__ import annotations

import contextlib
import re
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import loguniform
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from skrel import RelationalEstimator
from skrel.data import horizon_cutoffs
from skrel.estimators.registry import FAMILIES, FamilySpec
from skrel.utils.estimator_checks import (check_estimator, check_init_stores_params_and_clone,
                                          check_parameter_vocabulary, parametrize_with_checks)

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-family.md"


class RecencyBoostingEstimator(RelationalEstimator):
    """Per table that references the entity table: its rows of the last ``days`` days and the days
    since its latest row, then scikit-learn's histogram gradient boosting, early-stopped on val.

    Parameters
    ----------
    days : int, default=90
        Look-back window of the counts: rows dated in ``(t - days, t]``, ``t`` the row's time.
    n_estimators : int, default=100
        Boosting iterations at most (the budget parameter).
    lr : float, default=0.1
        Learning rate.
    num_leaves : int, default=31
        Leaves per tree.
    horizon, n_iter_no_change, validation_fraction, n_jobs, task_type, random_state, verbose
        As in docs/parameters.md (``n_jobs``: OpenMP threads of the boosting).
    """

    _parameter_constraints = {
        **RelationalEstimator._parameter_constraints,
        "days": [Integral],
        "n_estimators": [Integral],
        "lr": [Real],
        "num_leaves": [Integral],
        "horizon": [str],
        "n_iter_no_change": [Integral, None],
        "validation_fraction": [Real, None],
        "n_jobs": [Integral, None],
    }

    def __init__(self, days=90, n_estimators=100, lr=0.1, num_leaves=31, horizon="cutoff", n_iter_no_change=10,
                 validation_fraction=0.1, n_jobs=None, task_type="auto", random_state=None, verbose=0):
        self.days = days
        self.n_estimators = n_estimators
        self.lr = lr
        self.num_leaves = num_leaves
        self.horizon = horizon
        self.n_iter_no_change = n_iter_no_change
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.task_type = task_type
        self.random_state = random_state
        self.verbose = verbose

    def _features(self, X):
        rows = pd.DataFrame({"id": X.entity_ids, "t": horizon_cutoffs(X, self.horizon), "row": np.arange(len(X))})
        columns = []
        for name in sorted(X.db.tables):
            table = X.db[name]
            for col, ref in sorted(table.fkeys.items()):
                if ref != X.entity_table or table.time_col is None:
                    continue
                m = rows.merge(table.df[[col, table.time_col]], left_on="id", right_on=col)
                age = (m["t"] - m[table.time_col]) / pd.Timedelta(days=1)
                seen = age >= 0  # rows dated after the row's time are never seen
                recent = seen & (age < self.days)
                columns.append(np.bincount(m.loc[recent, "row"], minlength=len(X)).astype(float))
                latest = age[seen].groupby(m.loc[seen, "row"]).min()
                columns.append(latest.reindex(np.arange(len(X))).to_numpy())  # NaN: no row yet
        if not columns:
            raise ValueError(f"No table with a time column references {X.entity_table!r}: nothing to count.")
        return np.column_stack(columns)

    def _fit(self, X, y, X_val, y_val):
        if X_val is None and self.validation_fraction:  # hold out the latest cutoffs
            cutoffs = np.unique(X.cutoffs)
            n_val = int(round(len(cutoffs) * self.validation_fraction))
            if 0 < n_val < len(cutoffs):
                held = X.cutoffs >= cutoffs[-n_val]
                X, y, X_val, y_val = X[~held], y[~held], X[held], y[held]
        stop = X_val is not None and self.n_iter_no_change is not None
        common = dict(learning_rate=self.lr, max_iter=self.n_estimators, max_leaf_nodes=self.num_leaves,
                      early_stopping=stop, n_iter_no_change=self.n_iter_no_change or 10,
                      random_state=self.random_state, verbose=self.verbose)
        model = (HistGradientBoostingRegressor(**common) if self.task_type_ == "regression"
                 else HistGradientBoostingClassifier(**common))
        val = dict(X_val=self._features(X_val), y_val=y_val) if stop else {}
        with threadpool_limits(self.n_jobs) if self.n_jobs else contextlib.nullcontext():
            self.model_ = model.fit(self._features(X), y, **val)

    def _predict_proba(self, X):
        return self.model_.predict_proba(self._features(X))

    def _predict_values(self, X):
        return self.model_.predict(self._features(X))


# ---- docs/adding-a-family.md shows this part verbatim (test_the_docs_show_this_file keeps them equal)
SPEC = FamilySpec(
    name="recency",
    module=__name__,  # where the class lives, e.g. "mypackage.recency"
    cls="RecencyBoostingEstimator",
    description="recency and frequency of related rows, then histogram gradient boosting",
    test_params={"n_estimators": 20},
    boosted=True,
    budget_param="n_estimators",
    search_space={"days": [30, 90, 365], "lr": loguniform(0.03, 0.3), "num_leaves": [15, 31]},
)


@pytest.fixture(autouse=True, scope="module")
def registered_family():
    """The family is registered for this module's tests only (a package registers it on import)."""
    FAMILIES[SPEC.name] = SPEC
    yield
    del FAMILIES[SPEC.name]


@parametrize_with_checks([RecencyBoostingEstimator(n_estimators=20)])
def test_skrel_conformance(estimator, check):
    check(estimator)
# ---- end of the part the docs show


def test_the_docs_show_this_file():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    shown = next(b for b in blocks if "parametrize_with_checks([" in b)
    part = Path(__file__).read_text().split("# ---- docs/adding-a-family.md shows this part verbatim")[1]
    part = part.split("\n", 1)[1].split("# ---- end of the part the docs show")[0]
    assert part.strip() in shown, "docs/adding-a-family.md must show this file's registration and test as they are"


def test_ids_name_the_family_and_the_check():
    mark = parametrize_with_checks([RecencyBoostingEstimator(n_estimators=20)])
    ids = [p.id for p in mark.args[1]]
    assert len(ids) == 14 and len(set(ids)) == 14
    assert ids[:3] == ["recency-check_init_stores_params_and_clone", "recency-check_not_fitted",
                       "recency-check_fit_returns_self_tags_and_persistence(kind=binary)"]
    assert "recency-check_fit_db_task_agrees_with_fit_X_y(kind=regression)" in ids
    FAMILIES.pop(SPEC.name)  # unregistered, the class name stands in
    try:
        assert parametrize_with_checks([RecencyBoostingEstimator()]).args[1][0].id == (
            "RecencyBoostingEstimator-check_init_stores_params_and_clone")
    finally:
        FAMILIES[SPEC.name] = SPEC


class StoresAFittedAttributeInInit(RecencyBoostingEstimator):
    """Broken: ``__init__`` sets a fitted attribute."""

    def __init__(self, days=90, n_estimators=100, lr=0.1, num_leaves=31, horizon="cutoff", n_iter_no_change=10,
                 validation_fraction=0.1, n_jobs=None, task_type="auto", random_state=None, verbose=0):
        super().__init__(days, n_estimators, lr, num_leaves, horizon, n_iter_no_change, validation_fraction, n_jobs,
                         task_type, random_state, verbose)
        self.features_ = None


class IgnoresRandomState(RecencyBoostingEstimator):
    """Broken: predictions carry noise from an unseeded generator."""

    def _predict_proba(self, X):
        proba = super()._predict_proba(X) + np.random.default_rng().uniform(0, 1e-3, (len(X), 1))
        return proba / proba.sum(1, keepdims=True)

    def _predict_values(self, X):
        return super()._predict_values(X) + np.random.default_rng().uniform(0, 1e-3, len(X))


def test_a_broken_family_fails_the_check_that_names_its_fault():
    with pytest.raises(AssertionError, match=r"fitted attributes \['features_'\]") as info:
        check_estimator(StoresAFittedAttributeInInit(n_estimators=5))
    assert "check_init_stores_params_and_clone" in " ".join(info.value.__notes__)
    check_init_stores_params_and_clone(RecencyBoostingEstimator())  # the unbroken family passes it


def test_expected_failures_are_reported_and_must_fail(monkeypatch):
    monkeypatch.setitem(FAMILIES, "noisy", FamilySpec("noisy", __name__, "IgnoresRandomState", boosted=True,
                                                      test_params={"n_estimators": 5}))
    noisy = IgnoresRandomState(n_estimators=5)
    reason = "draws from an unseeded generator"
    faults = ["check_fit_returns_self_tags_and_persistence(kind=binary)",
              "check_fit_returns_self_tags_and_persistence(kind=regression)",
              "check_same_random_state_same_predictions", "check_fit_db_task_agrees_with_fit_X_y(kind=binary)",
              "check_fit_db_task_agrees_with_fit_X_y(kind=regression)", "check_grid_search_cross_val_and_pipeline",
              "check_multiclass"]
    results = check_estimator(noisy, expected_failed_checks=dict.fromkeys(faults, reason))
    assert [r["check"] for r in results if r["status"] == "expected failure"] == faults
    assert all(r["reason"] == reason for r in results if r["status"] == "expected failure")
    assert sum(r["status"] == "passed" for r in results) == 14 - len(faults)
    with pytest.raises(AssertionError, match="check_not_fitted passed, but expected_failed_checks says it fails"):
        check_estimator(noisy, expected_failed_checks={"check_not_fitted": "wrongly listed"})
    with pytest.raises(ValueError, match=r"unknown check\(s\) \['check_nothing'\]"):
        check_estimator(noisy, expected_failed_checks={"check_nothing": "?"})
    mark = parametrize_with_checks([noisy], expected_failed_checks=lambda est: {faults[2]: reason})
    xfail = [p for p in mark.args[1] if p.marks]
    assert [p.id for p in xfail] == [f"noisy-{faults[2]}"] and xfail[0].marks[0].kwargs["strict"] is True


def test_an_unregistered_family_or_a_class_is_refused():
    class Unregistered(RecencyBoostingEstimator):
        pass

    with pytest.raises(ValueError, match="Unregistered is not a registered family.*FamilySpec"):
        check_parameter_vocabulary(Unregistered())
    with pytest.raises(TypeError, match="takes estimator instances, got the class RecencyBoostingEstimator"):
        check_estimator(RecencyBoostingEstimator)
