"""RelatronSelector and PerformanceBank on bad input: each error names its cause and says what to do."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skrel.relatron import RelatronSelector, SelectorWarning
from skrel.relatron.bank import BANK_PATH, PerformanceBank
from skrel.relatron.selector import _parse_budget, meta_proba

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(not BANK_PATH.exists(),
                                 reason="the shipped bank is built by benchmarks/build_bank.py")]

FAST = dict(candidates=["baseline", "dfs"], budget=1, post_selection=None, random_state=0,
            embedding_params={"components": ("homophily", "temporal", "scale")})
#: cheap fits for the families the tests run (the shipped bank's own configurations are heavier)
LIGHT = {"baseline": {"n_estimators": 20}, "dfs": {"max_depth": 1, "n_estimators": 20}}


@pytest.fixture(scope="module")
def user_task(make_tiny_task):
    return make_tiny_task(0.5, "binary", seed=7)


@pytest.fixture(scope="module")
def records():
    """The shipped bank's records, every baseline and DFS configuration made light."""
    frame = PerformanceBank.load().to_frame()
    for family, params in LIGHT.items():
        frame.loc[frame["family"] == family, "params"] = json.dumps(params)
    return frame


def make(bank, **extra):
    return RelatronSelector(bank=bank, **{**FAST, **extra})


# ------------------------------------------------------------------ the bank's file
def test_a_corrupt_bank_file_is_named(tmp_path, user_task):
    path = tmp_path / "bank.parquet"
    path.write_bytes(b"PAR1" + bytes(100) + b"PAR1")  # was: ArrowInvalid / OSError about '<Buffer>', no file
    with pytest.raises(ValueError, match=f"performance bank {path} as parquet.*damaged.*skrel bank build"):
        PerformanceBank.load(path)
    db, task = user_task
    with pytest.raises(ValueError, match=f"performance bank {path} as parquet"):
        make(str(path)).fit(db, task)


def test_a_directory_is_not_a_bank(tmp_path, records, user_task):
    PerformanceBank(records).save(tmp_path / "inside.parquet")  # pandas would read the directory as a dataset
    with pytest.raises(IsADirectoryError, match=f"{tmp_path} is a directory.*one bank parquet file"):
        PerformanceBank.load(tmp_path)
    db, task = user_task
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        make(tmp_path).fit(db, task)


def test_a_parquet_file_that_is_not_a_bank_is_named(tmp_path):
    path = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    with pytest.raises(ValueError, match=f"{path} is not a performance bank: it lacks column\\(s\\) .*'family'"):
        PerformanceBank.load(path)


# ------------------------------------------------------------------ what the bank holds
def test_a_bank_without_scores_is_refused_before_any_work(records, user_task):
    db, task = user_task
    frame = records.assign(val=np.nan, test=np.nan)  # was: IndexError in meta_proba
    with pytest.raises(ValueError, match="no fit with both a val and a test score"):
        make(PerformanceBank(frame)).fit(db, task)


def test_a_bank_without_embedding_columns_is_refused(records, user_task, tmp_path):
    db, task = user_task
    frame = records[[c for c in records.columns if not c.startswith("emb:")]]  # was: SimpleImputer, 0 feature(s)
    with pytest.raises(ValueError, match="has no 'emb:' columns"):
        make(PerformanceBank(frame)).fit(db, task)
    path = PerformanceBank(frame).save(tmp_path / "noemb.parquet")
    with pytest.raises(ValueError, match=f"performance bank {path} has no 'emb:' columns"):
        make(str(path)).fit(db, task)


def test_a_bank_whose_embedding_matches_no_entry_of_the_task(records, user_task):
    db, task = user_task
    frame = records.rename(columns=lambda c: c.replace("emb:", "emb:other.") if c.startswith("emb:") else c)
    with pytest.raises(ValueError, match="None of the bank's .* 'emb:' columns is an entry of this task's embedding"):
        make(PerformanceBank(frame)).fit(db, task)


def test_no_scored_bank_task_for_the_candidates_falls_back_to_validation(records, user_task):
    db, task = user_task
    frame = records.copy()
    frame.loc[frame["family"].isin(["baseline", "dfs"]), ["val", "test"]] = np.nan  # only rdl and relgt scored
    with pytest.warns(SelectorWarning, match="No bank task has val and test scores for the candidates"):
        sel = make(PerformanceBank(frame)).fit(db, task)
    assert sel.macro_reason_.startswith("validation fallback (no bank task scores the candidates)")
    assert sel.selected_family_ in ("baseline", "dfs") and sel.macro_proba_ == {}


def test_meta_proba_without_labels_says_so(records):
    tasks = PerformanceBank(records).tasks()
    with pytest.raises(ValueError, match="No bank task has a best family"):
        meta_proba(tasks, pd.Series(dtype=object), ["emb:scale.log_train_rows"], np.zeros((1, 1)), "binary")


# ------------------------------------------------------------------ budget
@pytest.mark.parametrize("budget, why", [
    ("abc", "not a duration"), (True, "a boolean"), ("0s", "not a positive"), ("-5s", "not a positive"),
    ("300", "without a unit"), (0, ""), (-1, ""), (0.0, ""),
])
def test_bad_budgets_are_rejected_naming_the_parameter(budget, why, records, user_task):
    db, task = user_task
    with pytest.raises(InvalidParameterError, match=f"'budget' parameter of RelatronSelector.*{why}"):
        make(PerformanceBank(records), budget=budget).fit(db, task)


def test_good_budgets_parse():
    assert _parse_budget(3) == (3, None)
    assert _parse_budget(2.5) == (None, 2.5)
    assert _parse_budget("300s") == (None, 300.0)
    assert _parse_budget("10min") == (None, 600.0)


# ------------------------------------------------------------------ a validation split where the metric is undefined
def test_validation_rows_of_one_class_are_named_with_the_metric(records, user_task):
    db, task = user_task
    X, y = task.split(db, "train")
    X_val, y_val = task.split(db, "val")
    # was: "Every candidate of dfs failed to fit", after every fit had succeeded
    with pytest.raises(ValueError, match=r"validation rows .* only the class\(es\) \[0\] of \[0, 1\], so the metric "
                                         "'roc_auc' is undefined on the validation split"):
        make(PerformanceBank(records)).fit(X, y, X_val=X_val, y_val=np.zeros_like(y_val))


def test_a_task_whose_val_split_has_one_class_is_named(records, user_task):
    db, task = user_task
    labels = {s: task.labels(db, s).copy() for s in ("train", "val", "test")}
    labels["val"][task.target_col] = 1
    one_class = dataclasses.replace(task, name="one-class-val", label_sql=None, tables=labels)
    with pytest.raises(ValueError, match=r"val split of task 'one-class-val' \(\d+ rows\) holds only the class\(es\) "
                                         r"\[1\] .*'roc_auc' is undefined"):
        make(PerformanceBank(records)).fit(db, one_class)


# ------------------------------------------------------------------ not fitted
@pytest.mark.parametrize("call", ["predict_proba", "predict", "score", "report"])
def test_every_method_of_an_unfitted_selector_raises_not_fitted(call, user_task, tmp_path):
    db, task = user_task
    X, y = task.split(db, "test")
    args = {"predict_proba": (X,), "predict": (X,), "score": (X, y), "report": (tmp_path / "r.html",)}[call]
    with pytest.raises(NotFittedError):  # predict_proba was: AttributeError, no attribute 'predict_proba'
        getattr(RelatronSelector(), call)(*args)


def test_an_unfitted_regression_selector_has_no_predict_proba():
    assert hasattr(RelatronSelector(), "predict_proba")  # the task type is unknown before fit
    assert not hasattr(RelatronSelector(task_type="regression"), "predict_proba")
