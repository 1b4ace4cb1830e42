"""skrel: machine learning over relational databases, with scikit-learn's API.

Heavy dependencies (torch, torch_geometric, featuretools, tabpfn, skorch, lightgbm) are imported
lazily: ``import skrel`` and the data layer stay light.
"""

from importlib import import_module

from .data import Database, RelationalDataset, SchemaError, Table, Task

__version__ = "0.1.0"

_LAZY = {
    "TemporalSplit": "skrel.model_selection",
    "BaselineEstimator": "skrel.estimators.baseline",
    "DFSTransformer": "skrel.features.dfs",
    "DFSEstimator": "skrel.estimators.dfs",
    "RDLEstimator": "skrel.estimators.rdl",
    "RelGTEstimator": "skrel.estimators.relgt",
    "datasets": "skrel.datasets",
}

__all__ = ["Database", "Table", "Task", "RelationalDataset", "SchemaError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module = import_module(_LAZY[name])
        value = module if name == "datasets" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skrel' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
