"""One seed, one number: the command line and the Python API give the same scores, bit for bit.

Issue 9, item 8. ``skrel fit ... --model rdl`` and ``make_model("rdl", random_state=0).fit(db, task)``
must agree exactly on one machine and thread count, whatever ran before in the process (the
benchmarks fit several models on one database, sharing ``db.cache``), however torch was limited
to one thread (``OMP_NUM_THREADS=1`` or ``torch.set_num_threads(1)``) and whatever the hash seed.
What the scores may depend on: the CPU's floating-point code paths (MKL picks its kernels per
processor; a different processor gives a different training trajectory) and the torch thread
count. The subprocess test below pins the environment-level knobs, not the processor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import skrel.cli
import skrel.datasets
from skrel.cli import main
from skrel.estimators.registry import make_model
from skrel.metrics import evaluate

from conftest import make_shop, shop_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
TINY = {"channels": 8, "max_epochs": 2, "fanouts": [4, 2], "encoder_layers": 1, "batch_size": 64}


def _cli(capsys, monkeypatch, model: str, params: dict) -> dict:
    # A fresh database, as a fresh `skrel fit` process would load; the shop task is small.
    monkeypatch.setattr(skrel.datasets, "load_dataset",
                        lambda name, path=None, **kw: (make_shop(), {"user-active": shop_task()}))
    sets = [f"{k}={json.dumps(v)}" for k, v in params.items()]
    assert main(["fit", "synthetic", "user-active", "--model", model, "--set", *sets, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _api(db, model: str, params: dict) -> dict:
    task = shop_task()
    est = make_model(model, **{"random_state": 0, **params}).fit(db, task)
    return {split: evaluate(est, *task.split(db, split), task.metric) for split in ("val", "test", "test_asof")}


@pytest.mark.parametrize("model", ["rdl", "baseline"])
def test_cli_and_api_give_the_same_scores(capsys, monkeypatch, model):
    params = TINY if model == "rdl" else {"n_estimators": 20}
    cli = _cli(capsys, monkeypatch, model, params)
    api = _api(make_shop(), model, params)
    assert cli["params"]["random_state"] == 0
    for split in ("val", "test", "test_asof"):
        assert cli[split] == api[split], split


def test_earlier_fits_on_the_same_database_change_nothing():
    # The benchmark's situation: the baseline anchor, then other settings, then the fit measured,
    # all over one database and its caches (graph, feature spec, samplers, label tables, cut dbs).
    alone = _api(make_shop(), "rdl", TINY)
    db = make_shop()
    _api(db, "baseline", {"n_estimators": 20})
    _api(db, "rdl", {**TINY, "fanouts": [8, 8], "temporal_strategy": "last", "max_epochs": 1})
    _api(db, "rdl", {**TINY, "random_state": 1})
    assert _api(db, "rdl", TINY) == alone


_CHILD = """
import hashlib, json, os, sys
import torch
if os.environ.get("SET_THREADS"):
    torch.set_num_threads(int(os.environ["SET_THREADS"]))
sys.path.insert(0, {tests!r})
from conftest import make_shop, shop_task
from skrel.estimators.registry import make_model
db, task = make_shop(), shop_task()
est = make_model("rdl", random_state=0, **json.loads({tiny!r})).fit(db, task)
X, _ = task.split(db, "test")
print(hashlib.sha256(est.predict_proba(X).tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_hash_seed_and_the_way_threads_are_limited_change_nothing():
    code = _CHILD.format(tests=str(ROOT / "tests"), tiny=json.dumps(TINY))
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PYTHONHASHSEED", "SET_THREADS")}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")])
    variants = [
        {"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"},
        {"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "1"},
        {"SET_THREADS": "1", "PYTHONHASHSEED": "2"},  # the benchmarks' torch.set_num_threads(1)
    ]
    out = []
    for extra in variants:
        res = subprocess.run([sys.executable, "-c", code], env={**base, **extra}, capture_output=True, text=True,
                             timeout=300, cwd=ROOT)
        assert res.returncode == 0, res.stderr[-2000:]
        out.append(res.stdout.strip().splitlines()[-1])
    assert len(set(out)) == 1, dict(zip(map(str, variants), out))
