"""skrel.relatron.bank: configurations, records, what the bank says, its file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from skrel.estimators.registry import make_model
from skrel.relatron.bank import BANK_BUDGET, BANK_PATH, BANK_VERSION, EMB_PREFIX, PerformanceBank, bank_configurations


def test_configurations_start_with_the_defaults_are_seeded_and_unique():
    a = bank_configurations("rdl", 8, random_state=0)
    assert a == bank_configurations("rdl", 8, random_state=0)
    assert a != bank_configurations("rdl", 8, random_state=1)
    assert a[0] == {k: v for k, v in BANK_BUDGET.items()}
    assert len({json.dumps(p, sort_keys=True) for p in a}) == 8
    assert all(p["max_epochs"] <= BANK_BUDGET["max_epochs"] for p in a)


def test_dfs_configurations_include_neural_learners_that_build():
    configs = bank_configurations("dfs", 8)
    neural = [p for p in configs if isinstance(p.get("learner"), dict)]
    assert neural and all("lr" not in p for p in neural)
    est = make_model("dfs", neural[0])
    assert type(est.get_params()["learner"]).__name__ == "TorchFrameLearner"


def _records(rows):
    base = dict(group="g", source="synthetic", task_type="binary", metric="roc_auc", params="{}", seed=0,
                test_asof=np.nan, fit_seconds=1.0, peak_rss_mb=1.0)
    return pd.DataFrame([{**base, **r} for r in rows])


def test_best_family_takes_each_familys_validation_choice_within_the_budget():
    rows = [
        # task a: dfs#0 has the best val but rdl's val-chosen config wins on test
        dict(task_id="a", family="dfs", config=0, val=0.80, test=0.70),
        dict(task_id="a", family="dfs", config=1, val=0.60, test=0.90),  # best test, but not val-chosen
        dict(task_id="a", family="rdl", config=0, val=0.70, test=0.75),
        dict(task_id="a", family="rdl", config=1, val=0.90, test=0.60),  # only within budget 2
        # task b: MAE, lower is better
        dict(task_id="b", family="dfs", config=0, val=2.0, test=3.0, metric="mae", task_type="regression"),
        dict(task_id="b", family="rdl", config=0, val=2.5, test=2.0, metric="mae", task_type="regression"),
    ]
    bank = PerformanceBank(_records(rows))
    assert bank.best_family(budget=1).to_dict() == {"a": "rdl", "b": "rdl"}
    assert bank.best_family(budget=2)["a"] == "dfs"  # rdl#1 is val-chosen and bad on test
    assert bank.best_family(budget=1, families=["dfs"]).to_dict() == {"a": "dfs", "b": "dfs"}
    scores = bank.family_scores(budget=2)
    assert scores.loc["a", "dfs"] == 0.70 and scores.loc["a", "rdl"] == 0.60
    assert bank.configurations(["b", "a"], "dfs", top=1) == [{}]


def test_extend_records_every_fit_with_the_schema(tiny_bank):
    frame = tiny_bank.to_frame()
    assert frame["task_id"].nunique() == 4 and len(frame) == 4 * 3
    for col in ("val", "test", "test_asof", "fit_seconds", "peak_rss_mb", "params", "landscape_p1"):
        assert col in frame
    assert np.isfinite(frame[["val", "test", "test_asof"]].to_numpy(dtype=float)).all()
    assert frame["landscape_flatness"].isna().all()  # LightGBM: no loss surface (and landscape=False)
    emb = tiny_bank.embedding_columns
    assert f"{EMB_PREFIX}scale.log_train_rows" in emb and f"{EMB_PREFIX}homophily.adjusted.max" in emb
    tasks = tiny_bank.tasks()
    assert set(tasks["best_family"]) <= {"baseline", "dfs"} and len(tasks) == 4
    with pytest.raises(ValueError, match="already in the bank"):
        tiny_bank.extend(None, type("T", (), {"name": "x"})(), task_id="tiny/h0.0-binary")


def test_save_and_load_round_trip_and_version_check(tiny_bank, tmp_path):
    path = tiny_bank.save(tmp_path / "bank.parquet")
    again = PerformanceBank.load(path)
    pd.testing.assert_frame_equal(again.to_frame(), tiny_bank.to_frame(), check_dtype=False)
    frame = tiny_bank.to_frame()
    frame["bank_version"] = BANK_VERSION + 1
    PerformanceBank(frame).save(tmp_path / "new.parquet")
    with pytest.raises(ValueError, match="schema version"):
        PerformanceBank.load(tmp_path / "new.parquet")
    with pytest.raises(FileNotFoundError, match="skrel bank build"):
        PerformanceBank.load(tmp_path / "missing.parquet")


@pytest.mark.skipif(not BANK_PATH.exists(), reason="the shipped bank is built by `skrel bank build`")
def test_the_shipped_bank_loads_and_covers_every_family():
    bank = PerformanceBank.load()
    frame = bank.to_frame()
    assert {"dfs", "rdl", "relgt", "baseline"} <= set(frame["family"])
    assert frame.groupby("task_id")["family"].nunique().min() >= 2
    assert set(frame["source"]) <= {"real", "synthetic"}


def test_unknown_families_are_one_clear_error(shop_binary):
    db, task = shop_binary
    with pytest.raises(ValueError, match=r"Unknown model 'counts'; choose one of \["):
        PerformanceBank().extend(db, task, families=["counts"])
    with pytest.raises(ValueError, match="Unknown model 'counts'"):
        PerformanceBank().extend(db, task, configs={"counts": [{}]})
    with pytest.raises(ValueError, match=r"budget names famil\(ies\) \['rdl'\]"):
        PerformanceBank().extend(db, task, families=["baseline"], budget={"rdl": 2})


def test_the_bank_sizes_come_from_the_registry():
    from skrel.estimators.registry import FAMILIES
    from skrel.relatron.bank import bank_config_counts

    assert bank_config_counts() == {name: spec.bank_configs for name, spec in sorted(FAMILIES.items())}
    assert bank_config_counts(["dfs"]) == {"dfs": FAMILIES["dfs"].bank_configs}
