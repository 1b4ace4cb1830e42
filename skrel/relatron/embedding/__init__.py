"""Relatron's task embedding: what kind of relational task this is, in seconds.

``embed_task(X, y, X_val, y_val, task_type=...)`` (training and validation rows as arrays) and
``task_embedding(db, task)`` (a task's train and val splits) return a flat, named vector of
floats (a :class:`TaskEmbedding`) with five components, one module each, registered by name in
``_registry.REGISTRY`` (definitions as formulas in ``docs/selection.md``):

- ``homophily`` (``_homophily``): RDB task homophily, time-exact, on self-loop meta-paths from the
  entity table back to itself. Two *training* rows ``(entity, cutoff)`` are neighbours on a
  meta-path when a path instance joins their entities using only rows visible at *both* cutoffs
  (time ``<=`` the earlier cutoff; rows of tables without a time column are always visible).
  Computed in DuckDB.
- ``path_affinity`` (``_affinity``): how well a linear model on the seed embeddings of an
  untrained RDL network (1, 2 and 3 layers) fitted on training rows scores validation rows.
- ``feature_affinity`` (``_affinity``): how well a small fixed-budget tabular learner on depth-1
  and depth-2 DFS features fitted on training rows scores validation rows.
- ``temporal`` (``_temporal``): lag-1, 2, 3 autocorrelation of each entity's labels over training
  cutoffs, and the share of validation entities already seen at training cutoffs.
- ``scale`` (``_scale``): ``log1p`` of training rows, entities, cutoffs, tables and columns.

Leakage guarantee: everything is computed on the database cut at the last training or validation
cutoff, and on the training and validation labels; rows dated after every cutoff never enter,
and test labels are never read.
"""

from ._common import TaskEmbedding
from ._embed import embed_task, task_embedding
from ._homophily import MetaPath, metapath_homophily, metapaths
from ._registry import COMPONENTS

__all__ = ["COMPONENTS", "MetaPath", "TaskEmbedding", "embed_task", "metapath_homophily", "metapaths",
           "task_embedding"]
