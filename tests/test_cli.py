"""The command line's contract: names, JSON keys, and rel-f1's split sizes."""

from __future__ import annotations

import json

import pytest

from skrel.cli import main

REL_F1_SIZES = {
    "driver-dnf": {"train": 11411, "val": 566, "test": 702},
    "driver-top3": {"train": 1353, "val": 588, "test": 726},
    "driver-position": {"train": 7453, "val": 499, "test": 760},
}


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_describe_f1_reproduces_relbench_sizes(capsys, f1_path):
    out = run_json(capsys, ["describe", "f1", "--path", str(f1_path), "--json"])
    assert out["tasks"] == REL_F1_SIZES
    assert out["tables"]["results"]["foreign_keys"] == {"raceId": "races", "driverId": "drivers",
                                                         "constructorId": "constructors"}


def test_describe_flights_text(capsys):
    assert main(["describe", "flights"]) == 0
    text = capsys.readouterr().out
    assert "planes" in text and "task plane-" in text


def test_fit_json_keys(capsys):
    out = run_json(capsys, ["fit", "flights", "plane-cancel", "--model", "baseline", "--set", "n_estimators=20",
                            "--json"])
    for key in ("dataset", "task", "model", "metric", "val", "test", "fit_seconds", "peak_rss_mb"):
        assert key in out
    assert out["metric"] == "roc_auc" and 0.0 <= out["test"] <= 1.0 and 0.0 <= out["val"] <= 1.0
    assert out["params"] == {"n_estimators": 20, "random_state": 0}


def test_set_takes_several_values_and_repeats(capsys):
    out = run_json(capsys, ["fit", "flights", "plane-cancel", "--model", "baseline", "--set", "n_estimators=10",
                            "learning_rate=0.2", "--set", "random_state=3", "--json"])
    assert out["params"] == {"n_estimators": 10, "learning_rate": 0.2, "random_state": 3}


def test_fit_unknown_model_and_bad_set(capsys):
    assert main(["fit", "flights", "plane-cancel", "--model", "nope"]) == 2
    assert "Unknown model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", "flights", "plane-cancel", "--model", "baseline", "--set", "novalue"])
    assert main(["fit", "flights", "plane-cancel", "--model", "baseline", "--set", "no_such_param=1"]) == 2


def test_f1_needs_path(capsys):
    assert main(["describe", "f1"]) == 2
    assert "path" in capsys.readouterr().err
