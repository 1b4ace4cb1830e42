"""The components of the task embedding, by name: what each computes and whether it needs
validation rows. :func:`~skrel.relatron.embedding.embed_task` runs the asked-for ones in this order.

A component is a function ``(rows: EmbeddingRows, settings: EmbeddingSettings) -> dict`` of entry
name -> float, its entries named ``<component>.<entry>`` (homophily also ``homophily[<meta-path>].<stat>``).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from ._affinity import feature_affinity, path_affinity
from ._homophily import homophily
from ._scale import scale
from ._temporal import temporal

__all__ = ["Component", "REGISTRY", "COMPONENTS", "check_components"]


class Component(NamedTuple):
    """One component of the task embedding."""

    compute: Callable
    needs_validation: bool


#: Component name -> :class:`Component`, in the order they run (the order of the embedding's entries).
REGISTRY: dict[str, Component] = {
    "homophily": Component(homophily, needs_validation=False),
    "path_affinity": Component(path_affinity, needs_validation=True),
    "feature_affinity": Component(feature_affinity, needs_validation=True),
    "temporal": Component(temporal, needs_validation=False),
    "scale": Component(scale, needs_validation=False),
}

#: The component names, in the order they run.
COMPONENTS = tuple(REGISTRY)


def check_components(components) -> list[str]:
    """The asked-for component names in the order they run; a ValueError names unknown ones."""
    if isinstance(components, str):
        components = (components,)
    unknown = sorted(set(components) - set(REGISTRY))
    if unknown:
        raise ValueError(f"Unknown component(s) {unknown}; choose among {list(COMPONENTS)}.")
    return [name for name in REGISTRY if name in components]
