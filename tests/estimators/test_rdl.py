"""RDLEstimator: fit/predict on the three task types, point-in-time guarantee, persistence, embeddings."""

from __future__ import annotations

import io
import logging
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.utils._param_validation import InvalidParameterError

from conftest import with_changes_after
from skrel.data import Database, RelationalDataset
from skrel.estimators._torch import AUTO_BATCH_CAP, activation_bytes
from skrel.estimators.rdl import RDLEstimator, resolve_fanouts, seed_embeddings
from skrel.graph import build_graph

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(channels=8, max_epochs=2, fanouts=[8, 4], encoder_layers=1, min_steps_per_epoch=None, random_state=0)


@pytest.fixture(scope="module")
def fitted_binary(shop_binary):
    db, task = shop_binary
    return RDLEstimator(**FAST).fit(db, task)


def test_binary_and_regression(fitted_binary, shop_binary, shop_regression):
    db, task = shop_binary
    X, y = task.split(db, "test")
    proba = fitted_binary.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert len(fitted_binary.history_) == 2 and fitted_binary.best_epoch_ in (0, 1)
    db, task = shop_regression
    est = RDLEstimator(**FAST).fit(db, task)
    X, _ = task.split(db, "test")
    y_train = task.split(db, "train")[1]
    pred = est.predict(X)
    lo, hi = np.quantile(y_train, [0.02, 0.98])
    assert pred.shape == (len(X),) and pred.min() >= lo - 1e-9 and pred.max() <= hi + 1e-9


def test_multiclass(shop_regression):
    db, task = shop_regression
    X, y = task.split(db, "train")
    labels = np.array(["low", "mid", "high"])[np.digitize(y, np.quantile(y, [0.33, 0.66]))]
    est = RDLEstimator(**FAST).fit(X, labels)
    proba = est.predict_proba(X[:20])
    assert est.task_type_ == "multiclass" and proba.shape == (20, 3)
    assert set(est.predict(X[:20])) <= set(est.classes_)


# ---------------------------------------------------------------------- point in time
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(day=st.integers(30, 700), seed=st.integers(0, 1000))
def test_rows_after_the_cutoff_change_no_prediction(fitted_binary, shop_db, day, seed):
    t = pd.Timestamp("2020-01-01") + pd.Timedelta(days=day)
    ids = shop_db["users"].df["user_id"].to_numpy()
    X = RelationalDataset(shop_db, "users", ids, [t] * len(ids))
    before = fitted_binary.predict_proba(X)
    changed = with_changes_after(shop_db, t, np.random.default_rng(seed))
    after = fitted_binary.predict_proba(X.with_database(changed))
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-7)


def test_rows_at_the_cutoff_are_visible(fitted_binary, shop_db):
    orders = shop_db["orders"].df
    t = orders["at"].iloc[0]
    user = orders["user_id"].iloc[0]
    X = RelationalDataset(shop_db, "users", [user], [t])
    before = fitted_binary.predict_proba(X)
    moved = orders.copy()
    moved.loc[moved.index[0], "qty"] = 1e4  # the row dated exactly at the cutoff
    db2 = Database({"users": shop_db["users"].df, "items": shop_db["items"].df, "orders": moved},
                   primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
                   foreign_keys={"orders": {"user_id": "users", "item_id": "items"}}, time_columns={"orders": "at"})
    assert not np.allclose(fitted_binary.predict_proba(X.with_database(db2)), before)
    moved.loc[moved.index[0], "at"] = t + pd.Timedelta(seconds=1)  # one second later: invisible
    db3 = Database({"users": shop_db["users"].df, "items": shop_db["items"].df, "orders": moved},
                   primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
                   foreign_keys={"orders": {"user_id": "users", "item_id": "items"}}, time_columns={"orders": "at"})
    without = fitted_binary.predict_proba(X.with_database(db3))
    moved.loc[moved.index[0], "qty"] = 1.0
    db4 = Database({"users": shop_db["users"].df, "items": shop_db["items"].df, "orders": moved},
                   primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
                   foreign_keys={"orders": {"user_id": "users", "item_id": "items"}}, time_columns={"orders": "at"})
    np.testing.assert_allclose(fitted_binary.predict_proba(X.with_database(db4)), without, rtol=1e-6)


def test_a_rows_prediction_does_not_depend_on_the_other_rows(fitted_binary, shop_binary):
    db, task = shop_binary
    X, _ = task.split(db, "test")
    full = fitted_binary.predict_proba(X)
    idx = np.array([5, 0, 17, 3])
    np.testing.assert_allclose(fitted_binary.predict_proba(X[idx]), full[idx], rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------- persistence
def test_pickle_keeps_torch_state_apart(fitted_binary, shop_binary):
    db, task = shop_binary
    X, _ = task.split(db, "test")
    state = fitted_binary.__getstate__()
    assert "module_" not in state and isinstance(state["_module_state"], bytes)
    assert torch.load(io.BytesIO(state["_module_state"]), map_location="cpu", weights_only=True)
    clone = pickle.loads(pickle.dumps(fitted_binary))
    np.testing.assert_array_equal(clone.predict_proba(X), fitted_binary.predict_proba(X))


def test_unpickling_maps_torch_state_to_the_cpu(fitted_binary, monkeypatch):
    calls = []
    load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    pickle.loads(pickle.dumps(fitted_binary))
    ours = [c for c in calls if c.get("weights_only")]  # (torch_frame's CPU time statistics load too)
    assert len(ours) == 1 and ours[0]["map_location"] == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_trained_model_loads_on_a_cpu_only_process(shop_binary, tmp_path):
    db, task = shop_binary
    est = RDLEstimator(**FAST, device="cuda").fit(db, task)
    path = tmp_path / "gpu.pkl"
    path.write_bytes(pickle.dumps(est))
    code = (
        "import pickle, sys, numpy as np, torch; sys.path.insert(0, 'tests')\n"
        "from conftest import make_shop, shop_task\n"
        "assert not torch.cuda.is_available()\n"
        f"est = pickle.loads(open({str(path)!r}, 'rb').read()); est.set_params(device='cpu')\n"
        "db = make_shop(); X, _ = shop_task('binary').split(db, 'test'); p = est.predict_proba(X)\n"
        "assert np.isfinite(p).all(); print('ok')\n"
    )
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


# ---------------------------------------------------------------------- fit(X, y) and validation
def test_fit_X_y_holds_out_the_latest_cutoffs(shop_binary, capsys, caplog):
    db, task = shop_binary
    X, y = task.split(db, "train")
    with caplog.at_level(logging.INFO, logger="skrel"):
        est = RDLEstimator(**FAST, verbose=1).fit(X, y)
    assert all(h["valid_score"] is not None for h in est.history_)
    assert "latest cutoffs" in caplog.text and "valid_score" in caplog.text  # skorch's epoch table
    assert "%|" in capsys.readouterr().err  # tqdm's progress bar
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="skrel"):
        est = RDLEstimator(**FAST, validation_fraction=None).fit(X, y)
    assert all(h["valid_score"] is None for h in est.history_) and est.best_epoch_ == 1
    assert caplog.text == "" and capsys.readouterr().err == ""


def test_small_training_sets_get_enough_steps(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    few = {**FAST, "max_epochs": 1, "validation_fraction": None}
    steps = RDLEstimator(**{**few, "min_steps_per_epoch": 10}).fit(X[:100], y[:100]).history_[0]["steps"]
    assert steps == 10
    assert RDLEstimator(**few).fit(X[:100], y[:100]).history_[0]["steps"] == 1


# ---------------------------------------------------------------------- batch size from a memory budget
def _auto(X, y, **params):
    few = {**FAST, "max_epochs": 1, "validation_fraction": None, "batch_size": "auto"}
    return RDLEstimator(**{**few, **params}).fit(X, y)


def test_auto_batch_size_follows_the_memory_limit(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    large = _auto(X, y, memory_limit="1GiB")
    assert large.batch_size_ == AUTO_BATCH_CAP
    small = _auto(X, y, memory_limit=500_000)
    smaller = _auto(X, y, memory_limit=200_000)
    assert 1 <= smaller.batch_size_ < small.batch_size_ < AUTO_BATCH_CAP
    # training batches are the chosen size
    assert small.history_[0]["steps"] == -(-len(X) // small.batch_size_)
    assert RDLEstimator().get_params()["batch_size"] == "auto"


def test_auto_batch_size_is_deterministic(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    Xt, _ = task.split(db, "test")
    a, b = _auto(X, y, memory_limit="400KB"), _auto(X, y, memory_limit="400KB")
    assert a.batch_size_ == b.batch_size_ < AUTO_BATCH_CAP
    np.testing.assert_array_equal(a.predict_proba(Xt), b.predict_proba(Xt))


def test_auto_batch_size_default_budget_and_explicit_int(shop_binary, monkeypatch):
    import skrel.estimators._torch as torch_base

    db, task = shop_binary
    X, y = task.split(db, "train")
    monkeypatch.setattr(torch_base, "default_memory_limit", lambda: 300_000)
    assert _auto(X, y).batch_size_ == _auto(X, y, memory_limit=300_000).batch_size_ < AUTO_BATCH_CAP
    fixed = _auto(X, y, batch_size=32, memory_limit=1)  # an int is taken as it is, whatever the budget
    assert fixed.batch_size_ == 32 and fixed.history_[0]["steps"] == -(-len(X) // 32)
    with pytest.raises(InvalidParameterError, match="batch_size"):
        _auto(X, y, batch_size="big")
    with pytest.raises(ValueError, match="memory_limit"):
        _auto(X, y, memory_limit="lots")


def test_f1_tasks_keep_batches_of_512_within_the_smallest_usual_budget(f1_path):
    """rel-f1's scores stay those of batch_size=512: the default budget's 2 GiB cap fits 512 rows
    (about 3.1 MiB a row; with 4 GiB or more available the default budget is at least 1.6 GiB)."""
    from skrel.datasets import load_f1

    db, tasks = load_f1(f1_path)
    for name in ("driver-dnf", "driver-top3", "driver-position"):
        X, y = tasks[name].split(db, "train")
        est = RDLEstimator(max_epochs=1, max_steps_per_epoch=1, validation_fraction=None, random_state=0,
                           memory_limit="1.6GiB").fit(X, y)
        assert est.batch_size_ == AUTO_BATCH_CAP, name


def test_activation_bytes_grow_with_the_batch_and_leave_the_random_state(fitted_binary, shop_binary):
    db, task = shop_binary
    X, _ = task.split(db, "train")
    chosen, before = fitted_binary.batch_size_, torch.random.get_rng_state()
    fitted_binary.batch_size_ = 64  # one batch each
    try:
        small = activation_bytes(fitted_binary, fitted_binary._make_loader(X[:8]))
        large = activation_bytes(fitted_binary, fitted_binary._make_loader(X[:64]))
    finally:
        fitted_binary.batch_size_ = chosen
    assert 0 < small < large
    assert torch.equal(torch.random.get_rng_state(), before)


def test_same_seed_same_predictions_other_seed_differs(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    Xt, _ = task.split(db, "test")
    a = RDLEstimator(**FAST).fit(X, y).predict_proba(Xt)
    b = RDLEstimator(**FAST).fit(X, y).predict_proba(Xt)
    c = RDLEstimator(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(Xt)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_input_and_parameters(fitted_binary, shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    with pytest.raises(ValueError, match=r"not primary-key values of table 'users' \(first: \[12345\]\)"):
        fitted_binary.predict(RelationalDataset(db, "users", [12345], [pd.Timestamp("2021-01-01")]))
    with pytest.raises(ValueError, match="fitted on 'users'"):
        fitted_binary.predict(RelationalDataset(db, "items", [0], [pd.Timestamp("2021-01-01")]))
    with pytest.raises(ValueError, match="even"):
        RDLEstimator(**{**FAST, "channels": 7}).fit(X, y)
    with pytest.raises(ValueError, match="one per layer"):
        RDLEstimator(**{**FAST, "fanouts": [4, 4, 4]}).fit(X, y)
    assert resolve_fanouts(128, 2) == [128, 64] and resolve_fanouts(-1, 3) == [-1, -1, -1]


def test_graph_is_built_once_per_database(shop_binary):
    db, task = shop_binary
    g = build_graph(db.upto(task.test_timestamp))
    RDLEstimator(**FAST).fit(db, task)
    assert build_graph(db.upto(task.test_timestamp)) is g


# ---------------------------------------------------------------------- embeddings
def test_seed_embeddings_trained_and_untrained(fitted_binary, shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "test")
    emb = fitted_binary.embed(X)
    assert emb.shape == (len(X), 8) and np.isfinite(emb).all()
    a = seed_embeddings(X, y, channels=8, fanouts=[8, 4], encoder_layers=1, random_state=0)
    b = seed_embeddings(X, y, channels=8, fanouts=[8, 4], encoder_layers=1, random_state=0)
    c = seed_embeddings(X, y, channels=8, fanouts=[8, 4], encoder_layers=1, random_state=1)
    assert a.shape == (len(X), 8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("task_type", ["binary", "regression"])
def test_seed_embeddings_are_those_of_the_network_fit_starts_from(shop_db, task_type):
    """The untrained network is RDLEstimator's own (its _prepare: feature statistics at X's latest
    cutoff, graph, module settings), not a copy of it: a step of a vanishing learning rate from the
    weights fit starts from leaves the same embeddings."""
    entities = shop_db["users"].df[shop_db["users"].pkey].to_numpy()
    X = RelationalDataset(shop_db, "users", entities, np.full(len(entities), np.datetime64("2020-06-01", "ns")))
    y = np.arange(len(X)) % 2 if task_type == "binary" else np.linspace(0.0, 5.0, len(X))
    settings = dict(channels=8, fanouts=[8, 4], encoder_layers=1, batch_size=64, random_state=3)
    seed = seed_embeddings(X, y, task_type=task_type, **settings)
    barely = RDLEstimator(lr=1e-30, max_epochs=1, max_steps_per_epoch=1, validation_fraction=None,
                          min_steps_per_epoch=None, task_type=task_type, **settings).fit(X, y)
    np.testing.assert_allclose(seed, barely.embed(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="single class"):
        seed_embeddings(X, np.zeros(len(X), dtype=int), task_type="binary", **settings)


# ---------------------------------------------------------------------- real data (slow)
@pytest.mark.slow
def test_f1_driver_top3_beats_chance_clearly(f1_path):
    from sklearn.metrics import roc_auc_score

    from skrel.datasets import load_f1

    db, tasks = load_f1(f1_path)
    task = tasks["driver-top3"]
    est = RDLEstimator(max_epochs=4, random_state=0).fit(db, task)
    X, y = task.split(db, "test")
    assert roc_auc_score(y, est.predict_proba(X)[:, 1]) > 0.7
