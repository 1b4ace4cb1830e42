"""Relatron: choosing the model for a relational task, from its task embedding, loss-landscape
metrics and a performance bank (for cross-validation splitters and searches over one family, see
:mod:`skrel.model_selection`).

``embed_task`` and ``task_embedding`` (:mod:`skrel.relatron.embedding`) say what kind of task this is;
``landscape_metrics``, ``make_landscape_scorer`` and ``landscape_refit``
(:mod:`skrel.relatron.landscape`, loaded on first use: it needs torch) say how flat a trained
candidate's minimum is, as scikit-learn tools; ``PerformanceBank`` (:mod:`skrel.relatron.bank`)
holds how every family did on many tasks; ``RelatronSelector`` (:mod:`skrel.relatron.selector`)
chooses, searches and post-selects; ``write_report`` (:mod:`skrel.relatron.report`) explains it.
"""

from importlib import import_module

from .embedding import COMPONENTS, MetaPath, TaskEmbedding, embed_task, metapath_homophily, metapaths, task_embedding

_LAZY = {
    **{name: "skrel.relatron.landscape" for name in ("landscape_metrics", "make_landscape_scorer",
                                                      "landscape_refit", "LandscapeScorer", "LandscapeRefit",
                                                      "has_loss_surface")},
    "PerformanceBank": "skrel.relatron.bank",
    "RelatronSelector": "skrel.relatron.selector",
    "SelectorWarning": "skrel.relatron.selector",
    "write_report": "skrel.relatron.report",
}

__all__ = ["COMPONENTS", "MetaPath", "TaskEmbedding", "embed_task", "metapath_homophily", "metapaths", "task_embedding",
           *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skrel.relatron' has no attribute {name!r}")
