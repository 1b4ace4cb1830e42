"""The shared estimator base: tags before fit, the validation holdout, logging instead of print."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import is_classifier, is_regressor

from skrel.estimators._base import enable_verbose_logging, holdout_latest, logger
from skrel.estimators.registry import get_model_class

SKREL = Path(__file__).resolve().parents[2] / "skrel"


@pytest.mark.parametrize("name", ["baseline", "dfs", "rdl", "relgt"])
def test_unfitted_estimator_with_explicit_task_type_has_its_tags(name):
    cls = get_model_class(name)
    for task_type in ("binary", "multiclass"):
        est = cls(task_type=task_type)
        assert is_classifier(est) and not is_regressor(est)
    est = cls(task_type="regression")
    assert is_regressor(est) and not is_classifier(est)
    est = cls()
    assert not is_classifier(est) and not is_regressor(est)


def test_holdout_latest_takes_whole_latest_cutoffs(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    X_tr, y_tr, X_va, y_va = holdout_latest(X, y, 0.1)
    assert len(X_tr) + len(X_va) == len(X) and len(y_va) == len(X_va)
    assert X_tr.cutoffs.max() < X_va.cutoffs.min()  # whole cutoffs, the latest ones
    assert 0 < len(X_va) <= 0.5 * len(X)
    one = X[X.cutoffs == X.cutoffs.max()]
    assert holdout_latest(one, y[: len(one)], 0.1)[2] is None  # a single cutoff: nothing to hold out


def test_library_code_logs_and_never_prints():
    """Library modules report through ``logging``; only the command line prints its output."""
    offenders = []
    for path in SKREL.rglob("*.py"):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(SKREL.parent)}:{node.lineno}")
    assert not offenders, offenders


def test_enable_verbose_logging_respects_user_configuration(monkeypatch):
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])  # the user configured logging
    enable_verbose_logging()
    assert logger.level == logging.INFO and logger.handlers == []
    monkeypatch.setattr(root, "handlers", [])  # nobody did: skrel shows its messages on stderr
    enable_verbose_logging()
    assert len(logger.handlers) == 1


def test_holdout_never_drops_a_class_from_training(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    late = X.cutoffs == X.cutoffs.max()
    y = np.where(late, 1, 0)  # class 1 only at the latest cutoff: holding it out would lose it
    assert holdout_latest(X, y, 0.1, classification=True)[2] is None
    assert holdout_latest(X, y, 0.1)[2] is not None
