"""Model selection over relational tasks: Relatron's task embedding, loss-landscape metrics, the
performance bank and the selector.

``task_embedding`` (:mod:`skrel.selection.embedding`) says what kind of task this is;
``landscape_metrics``, ``make_landscape_scorer`` and ``landscape_refit``
(:mod:`skrel.selection.landscape`, loaded on first use: it needs torch) say how flat a trained
candidate's minimum is, as scikit-learn tools; ``PerformanceBank`` (:mod:`skrel.selection.bank`)
holds how every family did on many tasks; ``RelatronSelector`` (:mod:`skrel.selection.selector`)
chooses, searches and post-selects; ``write_report`` (:mod:`skrel.selection.report`) explains it.
"""

from importlib import import_module

from .embedding import COMPONENTS, MetaPath, TaskEmbedding, metapath_homophily, metapaths, task_embedding

_LAZY = {
    **{name: "skrel.selection.landscape" for name in ("landscape_metrics", "make_landscape_scorer",
                                                      "landscape_refit", "LandscapeScorer", "LandscapeRefit",
                                                      "has_loss_surface")},
    "PerformanceBank": "skrel.selection.bank",
    "RelatronSelector": "skrel.selection.selector",
    "SelectorWarning": "skrel.selection.selector",
    "write_report": "skrel.selection.report",
}

__all__ = ["COMPONENTS", "MetaPath", "TaskEmbedding", "metapath_homophily", "metapaths", "task_embedding", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skrel.selection' has no attribute {name!r}")
