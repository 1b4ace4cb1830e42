"""Estimators over RelationalDataset.

Import a family's class from its module (``skrel.estimators.baseline``, ``.dfs``, ``.rdl``,
``.relgt``) or from ``skrel`` lazily; :data:`skrel.estimators.registry.FAMILIES` lists them all.
:class:`RelationalEstimator` is the base class a new family subclasses (``docs/adding-a-family.md``).
:class:`TorchFrameLearner` is DFS's neural learner (a pytorch-frame network over a feature matrix).
Nothing heavy is imported until a name is asked for.
"""

__all__ = ["RelationalEstimator", "TorchFrameLearner"]


def __getattr__(name):
    if name == "RelationalEstimator":
        from ._base import RelationalEstimator

        return RelationalEstimator
    if name == "TorchFrameLearner":
        from ..utils import import_optional

        return import_optional("skrel.estimators._neural_tabular", "TorchFrameLearner").TorchFrameLearner
    raise AttributeError(f"module 'skrel.estimators' has no attribute {name!r}")
