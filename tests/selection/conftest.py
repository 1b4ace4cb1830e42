"""A tiny performance bank for the bank and selector tests: four small synthetic tasks (homophily 0
and 1, binary and regression), the baseline and DFS families, real fits."""

from __future__ import annotations

import warnings

import pytest

from skrel.datasets import make_synthetic
from skrel.selection.bank import PerformanceBank

TINY_CONFIGS = {"baseline": [{"n_estimators": 20}], "dfs": [{"max_depth": 1, "n_estimators": 50},
                                                            {"max_depth": 2, "n_estimators": 50}]}


def tiny_task(homophily: float, task_type: str, seed: int):
    db, tasks = make_synthetic(n_entities=100, n_rows=2000, homophily=homophily, task_type=task_type,
                               random_state=seed)
    return db, tasks["synthetic"]


@pytest.fixture(scope="session")
def tiny_bank():
    bank = PerformanceBank()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (h, kind) in enumerate([(0.0, "binary"), (1.0, "binary"), (0.0, "regression"), (1.0, "regression")]):
            db, task = tiny_task(h, kind, seed=i)
            bank.extend(db, task, task_id=f"tiny/h{h}-{kind}", group=f"seed{i}", source="synthetic",
                        configs=TINY_CONFIGS, landscape=False)
    return bank


@pytest.fixture(scope="session")
def make_tiny_task():
    """``make_tiny_task(homophily, task_type, seed) -> (db, task)``."""
    return tiny_task
