"""Model selection over relational tasks: Relatron's task embedding and loss-landscape metrics.

``task_embedding`` (:mod:`skrel.selection.embedding`) says what kind of task this is;
``landscape_metrics``, ``make_landscape_scorer`` and ``landscape_refit``
(:mod:`skrel.selection.landscape`, loaded on first use: it needs torch) say how flat a trained
candidate's minimum is, as scikit-learn tools.
"""

from importlib import import_module

from .embedding import COMPONENTS, MetaPath, TaskEmbedding, metapath_homophily, metapaths, task_embedding

_LANDSCAPE = ("landscape_metrics", "make_landscape_scorer", "landscape_refit", "LandscapeScorer", "LandscapeRefit",
              "has_loss_surface")

__all__ = ["COMPONENTS", "MetaPath", "TaskEmbedding", "metapath_homophily", "metapaths", "task_embedding",
           *_LANDSCAPE]


def __getattr__(name):
    if name in _LANDSCAPE:
        value = getattr(import_module("skrel.selection.landscape"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skrel.selection' has no attribute {name!r}")
