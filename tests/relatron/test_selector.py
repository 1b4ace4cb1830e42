"""RelatronSelector: the choice, the search, post-selection, scikit-learn conformance, leakage, report."""

from __future__ import annotations

import io
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline

from skrel import RelationalDataset
from skrel.model_selection import TemporalSplit
from skrel.estimators.registry import make_model
from skrel.relatron import RelatronSelector, SelectorWarning, embed_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(candidates=["baseline", "dfs"], budget=2, post_selection=None,
            embedding_params={"components": ("homophily", "temporal", "scale")})


def make(bank, **extra):
    return RelatronSelector(bank=bank, random_state=0, **{**FAST, **extra})


@pytest.fixture(scope="module")
def user_task(make_tiny_task):
    return make_tiny_task(0.5, "binary", seed=7)


@pytest.fixture(scope="module")
def fitted(tiny_bank, user_task):
    db, task = user_task
    return make(tiny_bank, embedding_params=None).fit(db, task)


def test_fit_chooses_searches_and_keeps_a_model(fitted, user_task):
    db, task = user_task
    sel = fitted
    assert sel.selected_family_ in ("baseline", "dfs")
    assert set(sel.macro_proba_) == {"baseline", "dfs"} or "every comparable" in sel.macro_reason_
    assert len(sel.search_results_) == 2 and sel.search_results_["selected"].sum() == 1
    assert set(sel.search_results_["source"]) <= {"bank", "random"}
    assert sel.nearest_tasks_["distance"].is_monotonic_increasing
    assert sel.best_estimator_ is sel.top_candidates_[0]["estimator"]
    X, y = task.split(db, "test")
    proba = sel.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(proba, sel.best_estimator_.predict_proba(X))
    assert is_classifier(sel) and 0 <= sel.score(X, y) <= 1
    assert sel.n_fits_ == 3  # two in the search, one kept


def test_the_embedding_is_embed_task_over_the_rows_fitted_on(fitted, user_task):
    db, task = user_task
    (X, y), (X_val, y_val) = task.split(db, "train"), task.split(db, "val")
    expected = embed_task(X, y, X_val, y_val, task_type=task.task_type, random_state=fitted.seed_)
    assert fitted.task_embedding_.to_series().equals(expected.to_series())


def test_steps_hand_back_values_and_fit_alone_sets_the_fitted_state(tiny_bank, user_task):
    """No step leaves a private attribute behind for a later one, and a refit with other settings
    keeps nothing of the previous fit."""
    db, task = user_task
    sel = make(tiny_bank, candidates=[("mine", make_model("baseline", n_estimators=20)), "dfs"], ensemble=True,
               post_selection="landscape", top_k=2, macro="val").fit(db, task)
    assert [k for k in vars(sel) if k.startswith("_") and k != "_t0"] == []  # _t0: the log's clock
    assert sel.post_selection_note_ == "best validation score (a top candidate has no loss surface)"
    assert len(sel.ensemble_members_) == 2 and sel.n_fits_ == 2 + 2 + 1 + 1
    sel.set_params(post_selection=None, ensemble=False, candidates=["baseline", "dfs"], macro="meta").fit(db, task)
    assert sel.post_selection_note_ == "best validation score" and len(sel.ensemble_members_) == 1
    assert "mine" not in sel.macro_reason_


def test_same_random_state_same_predictions(fitted, tiny_bank, user_task):
    db, task = user_task
    again = make(tiny_bank, embedding_params=None).fit(db, task)
    X, _ = task.split(db, "test")
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    pd.testing.assert_frame_equal(again.search_results_.drop(columns="fit_seconds"),
                                  fitted.search_results_.drop(columns="fit_seconds"))


def test_macro_by_name_and_by_validation(tiny_bank, user_task):
    db, task = user_task
    named = make(tiny_bank, macro="baseline").fit(db, task)
    assert named.selected_family_ == "baseline" and "given" in named.macro_reason_
    by_val = make(tiny_bank, macro="val").fit(db, task)
    assert by_val.selected_family_ in ("baseline", "dfs") and "validation" in by_val.macro_reason_
    assert by_val.n_fits_ == 2 + 2 + 1  # one per family, the search, the kept model
    with pytest.raises(ValueError, match="macro"):
        make(tiny_bank, macro="nope").fit(db, task)


def test_a_task_unlike_every_bank_task_falls_back_to_validation_with_a_warning(tiny_bank, user_task):
    db, task = user_task
    from skrel.relatron.bank import PerformanceBank

    frame = tiny_bank.to_frame()
    shifted = frame.copy()
    shifted[[c for c in tiny_bank.embedding_columns if c.startswith("emb:scale.")]] += 100.0
    with pytest.warns(SelectorWarning, match="unlike every bank task"):
        sel = make(PerformanceBank(shifted)).fit(db, task)
    assert sel.macro_reason_.startswith("validation fallback")


def test_fit_X_y_holds_out_the_latest_cutoffs(tiny_bank, user_task):
    db, task = user_task
    X, y = task.split(db, "train")
    sel = make(tiny_bank).fit(X, y)
    assert sel.task_type_ == "binary" and sel.selected_family_ in ("baseline", "dfs")
    with pytest.raises(ValueError, match="validation rows"):
        make(tiny_bank, validation_fraction=None).fit(X, y)


def test_regression_task(tiny_bank, make_tiny_task):
    db, task = make_tiny_task(0.5, "regression", seed=8)
    sel = make(tiny_bank).fit(db, task)
    X, y = task.split(db, "test")
    assert is_regressor(sel) and sel.predict(X).shape == (len(X),)
    assert sel.metric_ == "mae" and (sel.search_results_["val"] > 0).all()  # MAE in its own direction


def test_ensemble_averages_the_runner_up_family(tiny_bank, user_task):
    db, task = user_task
    sel = make(tiny_bank, ensemble=True, macro="dfs").fit(db, task)
    assert len(sel.ensemble_members_) == 2
    X, _ = task.split(db, "test")
    expected = np.mean([m.predict_proba(X) for m in sel.ensemble_members_], axis=0)
    np.testing.assert_allclose(sel.predict_proba(X), expected)


def test_time_budget_stops_the_search(tiny_bank, user_task):
    db, task = user_task
    sel = make(tiny_bank, budget="0.001s", macro="dfs").fit(db, task)
    assert len(sel.search_results_) == 1  # at least one fit, then the budget is spent


def test_bad_parameters_are_rejected_in_fit(tiny_bank, user_task):
    db, task = user_task
    with pytest.raises(ValueError, match="Unknown candidate"):
        make(tiny_bank, candidates=["nope"]).fit(db, task)
    with pytest.raises(ValueError, match="weights"):
        make(tiny_bank, weights=(1.0,)).fit(db, task)
    with pytest.raises(ValueError):
        make(tiny_bank, budget=0).fit(db, task)


# ------------------------------------------------------------------ scikit-learn conformance
def test_clone_get_set_params(tiny_bank):
    sel = make(tiny_bank)
    twin = clone(sel)
    assert twin.get_params().keys() == sel.get_params().keys()
    assert not any(k.endswith("_") for k in vars(twin))
    assert twin.set_params(top_k=5).top_k == 5


def test_grid_search_cross_validation_pipeline_and_joblib(tiny_bank, user_task):
    db, task = user_task
    X, y = task.split(db, "train")
    search = GridSearchCV(make(tiny_bank, macro="dfs"), {"budget": [1, 2]}, cv=TemporalSplit(n_splits=2, gap=task.window),
                          scoring="roc_auc").fit(X, y)
    assert search.best_params_["budget"] in (1, 2)
    scores = cross_val_score(make(tiny_bank, macro="baseline", budget=1), X, y, cv=TemporalSplit(n_splits=2, gap=task.window),
                             scoring="roc_auc")
    assert np.isfinite(scores).all()
    pipe = Pipeline([("select", make(tiny_bank, macro="baseline", budget=1))]).fit(X, y)
    X_test, _ = task.split(db, "test")
    buf = io.BytesIO()
    joblib.dump(pipe, buf)
    buf.seek(0)
    np.testing.assert_array_equal(joblib.load(buf).predict_proba(X_test), pipe.predict_proba(X_test))


# ------------------------------------------------------------------ leakage
def test_rows_after_the_cutoff_change_no_prediction(fitted, user_task):
    db, task = user_task
    t = pd.Timestamp("2021-08-01")
    ids = db["entities"].df[db["entities"].pkey].to_numpy()
    X = RelationalDataset(db, "entities", ids, [t] * len(ids))
    before = fitted.predict_proba(X)
    from skrel.data import Database

    tables = {}
    for name in db.table_names:
        df = db[name].df.copy()
        tcol = db[name].time_col
        if tcol is not None and "value" in df:  # the leaf table: values after t change, and so does a label
            later = df[tcol] > t
            df.loc[later, "value"] = df.loc[later, "value"] * -3 + 7
        tables[name] = df
    changed = Database(tables, primary_keys={n: db[n].pkey for n in db.table_names if db[n].pkey},
                       foreign_keys={n: dict(db[n].fkeys) for n in db.table_names if db[n].fkeys},
                       time_columns={n: db[n].time_col for n in db.table_names if db[n].time_col})
    assert not changed["sub_events"].df["value"].equals(db["sub_events"].df["value"])
    np.testing.assert_allclose(fitted.predict_proba(X.with_database(changed)), before)


# ------------------------------------------------------------------ landscape post-selection and report
def test_landscape_post_selection_over_a_torch_family_and_the_report(tiny_bank, user_task, make_tiny_task, tmp_path):
    from skrel.estimators.registry import FAMILIES
    from skrel.relatron.bank import PerformanceBank

    db, task = user_task
    fast = dict(FAMILIES["rdl"].test_params)
    bank = PerformanceBank(tiny_bank.to_frame())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bank.extend(*make_tiny_task(0.0, "binary", seed=9), task_id="tiny/rdl", configs={"rdl": [fast, {**fast, "lr": 0.01}]})
        sel = RelatronSelector(candidates=["rdl"], bank=bank, budget=2, top_k=2, random_state=0,
                               embedding_params=FAST["embedding_params"]).fit(db, task)
    assert sel.selected_family_ == "rdl"
    assert list(sel.search_results_["source"]) == ["bank", "bank"]
    assert len(sel.top_candidates_) == 2 and all(c["landscape"] is not None for c in sel.top_candidates_)
    assert sel.search_results_["landscape_flatness"].notna().sum() == 2
    X, y = task.split(db, "test")
    page = sel.report(tmp_path / "report.html", X, y)
    html = page.read_text()
    for section in ("homophily", "candidates", "landscape", "learning-curves"):
        assert f'id="fig-{section}' in html, section
    assert 'id="sec-choice"' in html and "the only candidate" in html  # no probabilities to chart
