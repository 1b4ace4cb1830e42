"""skrel: machine learning over relational databases, with scikit-learn's API.

Heavy dependencies (torch, torch_geometric, featuretools, tabpfn, skorch, lightgbm) are imported
lazily: ``import skrel`` and the data layer stay light. The estimator classes exported here are
those of :data:`skrel.estimators.registry.FAMILIES`, read when first asked for.
"""

from importlib import import_module

from .data import Database, RelationalDataset, SchemaError, Table, Task

__version__ = "0.1.0"

_LAZY_FIXED = {
    "RelationalEstimator": "skrel.estimators._base",
    "TemporalSplit": "skrel.model_selection",
    "DFSTransformer": "skrel.features.dfs",
    "TorchFrameLearner": "skrel.estimators._neural_tabular",
    "RelatronSelector": "skrel.relatron.selector",
    "PerformanceBank": "skrel.relatron.bank",
    "predict_frame": "skrel.predict",
    "save_model": "skrel.persist",
    "load_model": "skrel.persist",
    "datasets": "skrel.datasets",
}


def _lazy() -> dict[str, str]:
    """Lazy exports: the fixed ones plus every registered family's estimator class."""
    from .estimators.registry import FAMILIES

    return {**_LAZY_FIXED, **{spec.cls: spec.module for spec in FAMILIES.values()}}


_EAGER = ["Database", "Table", "Task", "RelationalDataset", "SchemaError", "__version__"]


def __getattr__(name):
    # ``__all__`` too is computed on demand: reading the registry imports scipy.stats, which
    # ``import skrel`` should not pay for.
    if name == "__all__":
        return [*_EAGER, *_lazy()]
    lazy = _lazy()
    if name in lazy:
        module = import_module(lazy[name])
        value = module if name == "datasets" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skrel' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_lazy()) | {"__all__"})
