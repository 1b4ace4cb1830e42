"""On make_synthetic, the task embedding's adjusted homophily follows the ``homophily`` knob."""

from __future__ import annotations

import numpy as np
import pytest

from skrel.datasets import make_synthetic
from skrel.relatron import metapath_homophily, metapaths, task_embedding

GROUP_PATH = "entities->entities.group_id"
LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SMALL = dict(n_entities=300, n_rows=12000)


def _group_adjusted(h: float, seed: int) -> float:
    db, tasks = make_synthetic(**SMALL, homophily=h, random_state=seed)
    paths = [m for m in metapaths(db, "entities") if m.name == GROUP_PATH]
    assert len(paths) == 1
    table = metapath_homophily(db, tasks["synthetic"], paths=paths, max_pairs=None)
    return float(table.loc[GROUP_PATH, "adjusted"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adjusted_homophily_increases_with_the_knob(seed):
    adj = [_group_adjusted(h, seed) for h in LEVELS]
    # Strictly increasing over six levels, from chance (groups are noise at h=0) to clearly positive.
    assert all(b > a for a, b in zip(adj, adj[1:])), adj
    assert abs(adj[0]) < 0.03 and adj[-1] > 0.2, adj


def test_embedding_max_is_the_group_path():
    def entries(h):
        db, tasks = make_synthetic(**SMALL, homophily=h, random_state=0)
        return task_embedding(db, tasks["synthetic"], components=("homophily",))

    high, low = entries(1.0), entries(0.0)
    key = f"homophily[{GROUP_PATH}].adjusted"
    assert high[key] == high["homophily.adjusted.max"] > 0.2
    assert abs(low[key]) < 0.03 and abs(low["homophily.adjusted.max"]) < 0.03
    # The other meta-paths (through event_types) join nearly all entity pairs: chance level.
    others = [k for k in high if k.endswith("].adjusted") and k != key]
    assert others and all(abs(high[k]) < 0.02 for k in others)
    assert np.isfinite(high[f"homophily[{GROUP_PATH}].edges"]) and high[f"homophily[{GROUP_PATH}].edges"] > 0
