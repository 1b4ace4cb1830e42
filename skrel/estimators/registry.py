"""The model names the command line, the benchmarks and the conformance suite know.

Each family registers its estimator class, the parameters the command line's ``--set`` may
change, and ``test_params``: small settings that make the shared conformance suite fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module

__all__ = ["ModelSpec", "MODELS", "get_model_class", "make_model"]


@dataclass(frozen=True)
class ModelSpec:
    module: str
    cls: str
    test_params: dict = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {
    "baseline": ModelSpec("skrel.estimators.baseline", "BaselineEstimator", {"n_estimators": 20}),
    "dfs": ModelSpec("skrel.estimators.dfs", "DFSEstimator", {"max_depth": 1}),
    "rdl": ModelSpec("skrel.estimators.rdl", "RDLEstimator",
                     {"channels": 8, "max_epochs": 2, "fanouts": [8, 4], "encoder_layers": 1,
                      "min_steps_per_epoch": None}),
    "relgt": ModelSpec("skrel.estimators.relgt", "RelGTEstimator",
                       {"channels": 8, "max_epochs": 2, "tokens": 12, "centroids": 8}),
}


def get_model_class(name: str):
    try:
        spec = MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.") from None
    return getattr(import_module(spec.module), spec.cls)


def make_model(name: str, **params):
    """An estimator of the named family with ``params`` set (checked by ``set_params``)."""
    est = get_model_class(name)()
    if params:
        est.set_params(**params)
    return est
