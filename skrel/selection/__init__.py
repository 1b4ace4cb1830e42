"""Model selection over relational tasks: Relatron's task embedding (and, next, its meta-selector)."""

from .embedding import COMPONENTS, MetaPath, TaskEmbedding, metapath_homophily, metapaths, task_embedding

__all__ = ["COMPONENTS", "MetaPath", "TaskEmbedding", "metapath_homophily", "metapaths", "task_embedding"]
