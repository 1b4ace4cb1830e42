"""The family registry: the vocabulary check's logic, the registry's consistency with docs/parameters.md,
and a new family (the worked example of docs/adding-a-family.md) joining the CLI, the lazy exports and the
conformance suite by registering."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.base import BaseEstimator
from sklearn.model_selection import ParameterSampler

import skrel
from conftest import shop_task
from skrel.cli import build_parser, main
from skrel.estimators import registry
from skrel.estimators.registry import FAMILIES, VOCABULARY, FamilySpec, check_vocabulary
from skrel.utils.estimator_checks import check_estimator, check_parameter_vocabulary, make_test_estimator

DOCS = Path(__file__).resolve().parents[1] / "docs"

ALL = ["task_type", "horizon", "n_iter_no_change", "validation_fraction", "n_jobs", "random_state", "verbose"]
BOOSTED = ["n_estimators", "lr", "num_leaves"]
TORCH = ["max_epochs", "lr", "weight_decay", "batch_size", "max_steps_per_epoch", "min_steps_per_epoch",
         "gradient_clip_value", "channels", "num_layers", "encoder_layers", "dropout", "text_embedder", "stypes",
         "device", "callbacks"]


def fake_class(names, cls_name="Fake"):
    """An estimator class whose ``__init__`` takes exactly ``names`` (what ``get_params`` reads)."""
    src = f"def __init__(self, {', '.join(f'{n}=None' for n in names)}):\n"
    src += "".join(f"    self.{n} = {n}\n" for n in names) or "    pass\n"
    ns: dict = {}
    exec(src, ns)
    return type(cls_name, (BaseEstimator,), {"__init__": ns["__init__"]})


def problems_of(names, **kinds):
    return check_vocabulary(fake_class(names)().get_params(deep=False), **kinds)


# ---------------------------------------------------------------------- vocabulary logic
def test_conforming_fakes_have_no_problems():
    assert problems_of(ALL) == []
    assert problems_of(ALL + BOOSTED, boosted=True) == []
    assert problems_of(ALL + TORCH + ["tokens", "heads"], torch=True) == []
    assert problems_of(ALL + TORCH + ["n_estimators"], torch=True) == []  # extra names are free


def test_retired_alias_is_named_with_its_replacement():
    problems = problems_of([*ALL, *TORCH, "epochs"], torch=True)
    assert problems == ["parameter 'epochs' is a retired alias of 'max_epochs' (epochs); rename it"]
    problems = problems_of([n for n in ALL if n != "random_state"] + ["seed"])
    assert problems == [
        "parameter 'seed' is a retired alias of 'random_state' (random state); rename it",
        "parameter 'random_state' (random state) is missing; every family must have it",
    ]
    # an alias is wrong in any family, whatever its kind
    assert problems_of(ALL + ["learning_rate"]) == [
        "parameter 'learning_rate' is a retired alias of 'lr' (learning rate); rename it"
    ]


def test_required_names_follow_the_kinds():
    assert problems_of([n for n in ALL if n != "n_jobs"] + BOOSTED, boosted=True) == [
        "parameter 'n_jobs' (threads) is missing; every family must have it"
    ]
    assert problems_of(ALL + ["n_estimators", "lr"], boosted=True) == [
        "parameter 'num_leaves' (leaves) is missing; every boosted family must have it"
    ]
    # lr is required of both kinds; boosted names are not required of a torch family, nor torch names of boosted
    assert problems_of(ALL + [n for n in TORCH if n != "lr"], torch=True) == [
        "parameter 'lr' (learning rate) is missing; every torch family must have it"
    ]
    assert problems_of(ALL + BOOSTED, boosted=True, torch=False) == []
    missing = problems_of(ALL + BOOSTED, torch=True, boosted=True)
    assert {re.search(r"'(\w+)'", p).group(1) for p in missing} == set(TORCH) - {"lr"}


def test_conformance_vocabulary_test_fails_and_passes_on_fakes(monkeypatch):
    """The conformance suite's vocabulary check, pointed at fake families through the registry."""
    module = types.ModuleType("skrel_fake_families")
    module.Good = fake_class(ALL + BOOSTED, "Good")
    module.Bad = fake_class(ALL + ["n_estimators", "learning_rate", "num_leaves"], "Bad")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(FAMILIES, "good", FamilySpec("good", module.__name__, "Good", boosted=True))
    monkeypatch.setitem(FAMILIES, "bad", FamilySpec("bad", module.__name__, "Bad", boosted=True))
    check_parameter_vocabulary(module.Good())
    with pytest.raises(AssertionError, match="'learning_rate' is a retired alias of 'lr'.*'lr' .* is missing"):
        check_parameter_vocabulary(module.Bad())


# ---------------------------------------------------------------------- registry content
def doc_vocabulary():
    """docs/parameters.md's tables: {(kind, name): set of retired aliases}."""
    kind, rows = None, {}
    for line in (DOCS / "parameters.md").read_text().splitlines():
        if line.startswith("## "):
            kind = "all" if "Every family" in line else "boosted" if "boosted" in line else "torch"
        m = re.match(r"^\| `(\w+)` \|.*\|(.*)\|$", line)
        if m and kind:
            rows[(kind, m.group(1))] = set(re.findall(r"`(\w+)`", m.group(2)))
    return rows


def test_vocabulary_is_the_table_of_docs_parameters_md():
    doc = doc_vocabulary()
    assert len(doc) >= 20
    covered = set()
    for concept, term in VOCABULARY.items():
        assert set(term.required) <= set(registry.KINDS), concept
        aliases = set()
        for kind in term.required:
            assert (kind, term.name) in doc, f"{term.name} ({kind}) is not in docs/parameters.md"
            aliases |= doc[(kind, term.name)]
            covered.add((kind, term.name))
        assert aliases == set(term.aliases), term.name
    assert covered == set(doc), f"rows of docs/parameters.md not in VOCABULARY: {sorted(set(doc) - covered)}"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_registry_entries_use_the_new_names(name):
    spec = FAMILIES[name]
    assert spec.name == name and spec.description
    retired = set().union(*(t.aliases for t in VOCABULARY.values()))
    for field in ("test_params", "search_space"):
        assert not set(getattr(spec, field)) & retired, f"{name}.{field} uses retired names"
    assert spec.budget_param == ("max_epochs" if spec.torch else "n_estimators")
    # with its default settings, a family has a loss surface exactly when it is a torch one (DFS: a
    # callable of its learner, False for the default LightGBM)
    assert spec.has_loss_surface() is spec.torch
    assert spec.loss_surface is spec.torch or (name == "dfs" and callable(spec.loss_surface))
    samples = list(ParameterSampler(spec.search_space, n_iter=20, random_state=0))
    assert len(samples) == 20 and all(set(s) == set(spec.search_space) for s in samples)
    if "lr" in spec.search_space:
        assert all(0 < s["lr"] < 1 for s in samples)


def test_required_test_params():
    assert FAMILIES["rdl"].test_params == {"channels": 8, "max_epochs": 2, "fanouts": [8, 4], "encoder_layers": 1,
                                           "min_steps_per_epoch": None}
    assert FAMILIES["relgt"].test_params == {"channels": 8, "max_epochs": 2, "tokens": 12, "centroids": 8}
    assert FAMILIES["baseline"].test_params == {"n_estimators": 20}
    assert FAMILIES["dfs"].test_params == {"max_depth": 1}
    assert registry.MODELS is FAMILIES and registry.family_names() == sorted(FAMILIES)


def test_family_spec_checks_and_loss_surface_callable():
    with pytest.raises(TypeError, match="loss_surface must be a bool or a callable"):
        FamilySpec("x", "m", "C", loss_surface="yes")
    with pytest.raises(ValueError, match="identifier"):
        FamilySpec("two words", "m", "C")
    spec = FamilySpec("baseline2", "skrel.estimators.baseline", "BaselineEstimator",
                      loss_surface=lambda est: est.get_params()["n_estimators"] < 10)
    assert spec.has_loss_surface(spec.get_class()(n_estimators=5)) is True
    assert spec.has_loss_surface() is False  # default settings
    assert spec.kinds == {"all"} and FAMILIES["rdl"].kinds == {"all", "torch"}
    with pytest.raises(ValueError, match=r"Unknown model 'nope'; choose one of \['baseline', 'dfs', 'rdl', 'relgt'\]"):
        registry.get_model_class("nope")


# ---------------------------------------------------------------------- a new family joins by registering
def doc_example_module():
    text = (DOCS / "adding-a-family.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    module = types.ModuleType("recent_counts")
    exec(compile(blocks[0], str(DOCS / "adding-a-family.md"), "exec"), module.__dict__)
    spec_ns = {}
    exec(blocks[1].replace("FamilySpec(", "spec = FamilySpec(", 1), spec_ns)
    return module, spec_ns["spec"]


@pytest.fixture
def counts_family(monkeypatch):
    """The worked example of docs/adding-a-family.md, registered for one test."""
    module, spec = doc_example_module()
    monkeypatch.setitem(sys.modules, "recent_counts", module)
    spec = FamilySpec(**{**spec.__dict__, "module": "recent_counts"})
    monkeypatch.setitem(FAMILIES, "counts", spec)
    yield spec
    skrel.__dict__.pop("RecentCountsEstimator", None)  # the lazy export caches itself


def test_new_family_in_cli_and_lazy_exports(counts_family, capsys):
    fit_parser = build_parser()._subparsers._group_actions[0].choices["fit"]
    model = next(a for a in fit_parser._actions if a.dest == "model")
    assert "counts" in model.choices
    assert main(["fit", "--help"]) == 0
    assert counts_family.description in capsys.readouterr().out
    assert "RecentCountsEstimator" in skrel.__all__ and "RecentCountsEstimator" in dir(skrel)
    assert skrel.RecentCountsEstimator is sys.modules["recent_counts"].RecentCountsEstimator
    assert main(["fit", "flights", "plane-cancel", "--model", "counts", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "counts" and 0.0 <= out["test"] <= 1.0


def test_new_family_passes_the_conformance_suite(counts_family):
    est = make_test_estimator("counts")
    assert est.get_params()["max_iter"] == 5
    results = check_estimator(est)
    assert len(results) == 14 and {r["status"] for r in results} == {"passed"}
    assert "check_multiclass" in [r["check"] for r in results]


def test_new_family_learns(counts_family, shop_db):
    """The example is a real model: recent order counts predict future activity better than the baseline,
    which sees only the users table (measured: 0.85 against 0.69 test AUROC)."""
    from skrel.evaluation import fit_and_report
    from skrel.metrics import evaluate

    task = shop_task("binary")
    est = make_test_estimator("counts", max_iter=50, horizon="data").fit(shop_db, task)
    X, y = task.split(shop_db, "test")
    auc = evaluate(est, X, y, "roc_auc")
    baseline = fit_and_report("shop", shop_db, task, "baseline", {"n_estimators": 20, "random_state": 0})["test"]
    assert auc > 0.8 and auc > baseline + 0.1
    assert isinstance(FAMILIES["counts"].search_space["alpha"], type(loguniform(1e-5, 1e-2)))
    assert np.isfinite(est.model_.coef_).all()
