"""A seeded synthetic relational database whose label homophily is a knob.

Schema (``depth=2``, ``n_tables=5``)::

    groups <- entities <- events <- sub_events   (a chain of ``depth`` timed tables below ``entities``)
                                    sub_events -> event_types  (static; ``polarity`` is +1 or -1)
                          events -> dim_1, dim_2, ...  (static distractor tables when ``n_tables > depth + 3``)

``groups`` is static, with ``n_entities // 20`` rows (at least one) and noise columns ``budget``
and ``region``; every entity references one group (``entities.group_id``, a balanced random
partition: groups of 20 or 21 entities). The deepest table of the chain (the *leaf*: ``events`` at
``depth=1``, ``sub_events`` at ``depth=2``, ``subsub_events`` at ``depth=3``...) has ``n_rows`` rows
and carries the numeric column ``value`` and the foreign key ``type_id``; each level above has half
as many rows as the level below it, and a child row is dated up to two days after its parent. A
leaf row belongs to an entity through its chain of parents. Every timed table also has a noise
column ``amount``. ``n_tables`` counts every table: entities, groups, the chain, event_types and
the distractors.

Generation. Writing ``h`` for ``homophily``: every group ``g`` and every entity ``e`` has its own
hidden state drifting week by week, independent AR(1) processes with unit variance and weekly
autocorrelation 0.97 (so the recent past matters most). The entity's latent state is

    z(e, s) = sqrt(h) * z_group(g(e), s) + sqrt(1 - h) * z_own(e, s),

again unit-variance AR(1) with autocorrelation 0.97; two entities of one group have latent
correlation ``h`` in the same week (``h * 0.97^k`` ``k`` weeks apart), entities of different groups
0. At ``h=0`` the groups are pure noise; at ``h=1`` all entities of a group share one latent state.
The latent draws do not depend on ``h``, so that under one seed the levels of the knob share them.
Entities emit top-level events at a rate proportional to ``exp(h * z / 2)``. Leaf rows come in
*pairs*: two rows at the same time under the same parent, one of a type with polarity ``p = +1``
and one of a type with ``p = -1`` (think of the two legs of a transfer). A leaf row at time ``s``
has

    value = z(entity, s) * w + noise,      w = h + (1 - h) * p,      noise ~ N(0, 0.5^2).

Label (a :class:`~skrel.data.Task` with ``label_sql``, window 30 days): the mean of ``value * w``
over the entity's leaf rows dated in ``(t, t + 30 days]``; ``task_type="binary"`` takes its sign
(1 if positive), ``"regression"`` the mean itself, ``"multiclass"`` three classes split at -0.5 and
0.5. The label is a function of future rows of the database only (``w`` comes from the visible
``event_types.polarity``); entities without a leaf row in the window get no row. Past rows predict
it because they reveal the same drifting latent state; nothing hidden enters a label and no future
row enters the features (skrel cuts every table at the cutoff). Since ``value * w = z * w^2 +
noise * w`` and ``w^2 > 0``, the label follows ``z`` at every level of the knob: the labels of two
entities of one group are correlated in proportion to ``h`` and those of different groups are
not.

What this means for the task embedding: on the meta-path ``entities->entities.group_id`` (entity ->
group <- entity) adjusted label homophily rises with ``h`` from 0 (``docs/selection.md`` has the
measured table); the meta-paths through ``event_types`` and the distractors join nearly every pair
of entities and stay at 0.

What this means for the model families:

- ``homophily=1``: ``w = 1``, values are ``z`` plus noise and busy entities have high ``z``. Linear
  aggregates of the recent past (mean of ``value`` over the last weeks, counts) are sufficient
  statistics: deep feature synthesis (DFS) plus a tabular learner should win, and a GNN can at
  best match it.
- ``homophily=0``: ``w = p``: in each pair one row has value ``z + noise`` and the other
  ``-z + noise``, and which is which is told only by the polarity of the row's type, held in
  another table. Every single-column aggregate (mean, sum, spread, min, max of ``value``; counts;
  mean polarity, always 0) has the same distribution for ``z`` and ``-z``, so it carries no
  information about the sign of the label; only aggregates of a product across two tables, such as
  ``mean(value * polarity)``, do. Message passing (RDL, a relational graph transformer) can learn
  that product before aggregating; DFS's aggregate-then-combine features cannot express it, so
  RDL / RelGT should win. (Measured with LightGBM on per-entity aggregates over the last 60 days
  and all history, 4,000 entities, 120,000 rows, seed 1, before the groups were added: ROC AUC
  0.53 from standard aggregates vs 0.77 from ``mean(value * polarity)`` at ``h=0``; 0.78 vs 0.61
  at ``h=1``.)
- In between, ``mean(value)`` carries a share ``h`` of the signal and the interaction ``1 - h``.
- The group-mates' rows carry the shared part of the latent state, in proportion to ``h``. DFS
  reaches them with linear aggregates through the group (``groups.MEAN(sub_events.value)`` at
  ``max_depth=2``), which at high ``h`` average the shared state over about 20 entities: the regime
  where, after Relatron, linear aggregation over a homophilous meta-path suffices. At ``h=0`` these
  features are noise. RDL reaches them only with ``num_layers >= depth + 2`` (entity -> group ->
  entity -> ... -> leaf).
- RDL sees a leaf row's polarity only with ``num_layers >= depth + 1`` (entity <- ... <- leaf ->
  event_types): with fewer layers it cannot form ``value * polarity`` and has no edge at ``h=0``.

Measured (test ROC AUC, defaults otherwise: 1,000 entities, 40,000 leaf rows;
``DFSEstimator(max_depth=2)`` against ``RDLEstimator(channels=32, max_epochs=20,
num_layers=depth + 1)``, ``fanouts=32`` at ``depth=2``):

========  ====  =====  ======  ======  ========
depth     seed  h      DFS     RDL     RDL-DFS
========  ====  =====  ======  ======  ========
2         0     0.0    0.5924  0.7417  +0.149
2         0     1.0    0.7145  0.6662  -0.048
1         0     0.0    0.6241  0.8063  +0.182
1         0     0.5    0.7416  0.7489  +0.007
1         0     1.0    0.7127  0.7069  -0.006
1         1     0.0    0.5686  0.6935  +0.125
1         1     1.0    0.7741  0.7443  -0.030
========  ====  =====  ======  ======  ========

With ``num_layers=2`` at ``depth=2`` (RDL blind to polarity) and 5 epochs, DFS wins at both ends
(seed 0: 0.5924 vs 0.5027 at ``h=0``, 0.7145 vs 0.6404 at ``h=1``). DFS is above 0.5 at ``h=0``
although no single DFS feature has a test ROC AUC beyond 0.54 there. The likely reason: the latent
state persists for months and continuous per-entity columns (``size``, whole-history aggregates)
identify an entity, so the learner partly recalls the labels of the same entity at earlier cutoffs
(at ``depth=1``, seed 0, making ``size``, ``budget`` and ``amount`` small integers lowers DFS from
0.62 to 0.58).

Sizes and speed: all arrays are generated with vectorised numpy; 10^6 leaf rows take a few
seconds. The hidden latent matrices are returned nowhere.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd

from ..data import Database, Task

__all__ = ["make_synthetic"]

_START = np.datetime64("2020-01-01T00:00:00", "ns")
_SPAN_DAYS = 730
_PERIOD_DAYS = 7
_RHO = 0.97  # weekly autocorrelation of the latent state
_LAG_DAYS = 2.0  # a child row happens within this many days after its parent
_NOISE = 0.5
_N_TYPES = 8
_N_DIM_ROWS = 20
_GROUP_SIZE = 20  # entities per group (about)
_VAL = pd.Timestamp("2021-07-01")
_TEST = pd.Timestamp("2021-10-01")
_WINDOW = pd.Timedelta(days=30)
_DAY_NS = 86_400 * 10**9


def _level_name(k: int) -> str:
    return "events" if k == 1 else "sub" * (k - 1) + "_events"


def _pk(table: str) -> str:
    return table[:-1] + "_id"


def _label_sql(depth: int, homophily: float, task_type: str) -> str:
    leaf = _level_name(depth)
    joins = []
    for k in range(depth, 1, -1):
        parent, key = _level_name(k - 1), _pk(_level_name(k - 1))
        joins.append(f"JOIN {parent} l{k - 1} ON l{k}.{key} = l{k - 1}.{key}")
    h = repr(float(homophily))
    score = f"AVG(l{depth}.value * ({h} + (1.0 - {h}) * ty.polarity))"
    if task_type == "binary":
        target = f"CAST({score} > 0 AS BIGINT)"
    elif task_type == "multiclass":
        target = f"CASE WHEN {score} < -0.5 THEN 0 WHEN {score} <= 0.5 THEN 1 ELSE 2 END"
    else:
        target = score
    join_sql = "\n".join(joins)
    return f"""
SELECT t.timestamp, l1.entity_id, {target} AS label
FROM timestamps t
JOIN {leaf} l{depth} ON l{depth}."time" > t.timestamp AND l{depth}."time" <= t.timestamp + {{window}}
{join_sql}
JOIN event_types ty ON l{depth}.type_id = ty.type_id
GROUP BY t.timestamp, l1.entity_id
"""


def _ar1(rng: np.random.Generator, n_periods: int, n: int) -> np.ndarray:
    """``n`` independent stationary AR(1) series (unit variance, autocorrelation ``_RHO``)."""
    z = rng.standard_normal((n_periods, n))
    scale = np.sqrt(1.0 - _RHO**2)
    for k in range(1, n_periods):
        z[k] *= scale
        z[k] += _RHO * z[k - 1]
    return z


def _check_int(name, value, low):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return int(value)


def make_synthetic(
    n_entities: int = 1000,
    n_rows: int = 40000,
    n_tables: int = 5,
    depth: int = 2,
    homophily: float = 1.0,
    task_type: str = "binary",
    random_state: int = 0,
) -> tuple[Database, dict[str, Task]]:
    """Generate a synthetic relational database and its entity task.

    Parameters
    ----------
    n_entities : int, default=1000
        Rows of the entity table ``entities``.
    n_rows : int, default=40000
        Rows of the largest table (the leaf of the chain), an even number (leaf rows come in
        pairs). Each level above has half as many.
    n_tables : int, default=5
        Number of tables, at least ``depth + 3`` (entities, groups, the chain, ``event_types``);
        the rest are static distractor tables ``dim_1``, ``dim_2``... referenced by ``events``.
    depth : int, default=2
        Length of the chain of timed tables below ``entities``.
    homophily : float in [0, 1], default=1.0
        Label homophily through ``groups``: two entities of one group have latent (and so label)
        correlation ``homophily``. Also 1: the label follows linear aggregates of related rows; 0:
        it follows an interaction that aggregates cancel (see the module docstring).
    task_type : {"binary", "regression", "multiclass"}, default="binary"
    random_state : int, default=0
        Seed; the same seed gives the same database.

    Returns
    -------
    db : Database
    tasks : dict of str to Task
        One task, ``"synthetic"``: entity table ``entities``, target ``label``, window 30 days,
        val 2021-07-01, test 2021-10-01 (the data span 2020-01-01 to 2022-01-01).

    Examples
    --------
    >>> db, tasks = make_synthetic(n_entities=100, n_rows=2000, homophily=0.0)
    >>> sorted(db.table_names)
    ['entities', 'event_types', 'events', 'groups', 'sub_events']
    """
    n_entities = _check_int("n_entities", n_entities, 1)
    n_rows = _check_int("n_rows", n_rows, 1)
    depth = _check_int("depth", depth, 1)
    n_tables = _check_int("n_tables", n_tables, 1)
    if n_tables < depth + 3:
        raise ValueError(
            f"n_tables={n_tables} is too small for depth={depth}: the database needs entities, groups, "
            f"{depth} timed table(s) and event_types, so n_tables >= {depth + 3}."
        )
    if not isinstance(homophily, Real) or isinstance(homophily, bool) or not 0.0 <= float(homophily) <= 1.0:
        raise ValueError(f"homophily must be a float in [0, 1], got {homophily!r}.")
    homophily = float(homophily)
    if task_type not in ("binary", "regression", "multiclass"):
        raise ValueError(f"task_type must be 'binary', 'regression' or 'multiclass', got {task_type!r}.")
    if n_rows % 2:
        raise ValueError(f"n_rows must be even (leaf rows come in pairs), got {n_rows}.")
    sizes = [n_rows >> (depth - k) for k in range(1, depth + 1)]
    if sizes[0] < 1:
        raise ValueError(f"n_rows={n_rows} is too small for depth={depth}: use n_rows >= {max(2, 2 ** (depth - 1))}.")
    _check_int("random_state", random_state, 0)
    rng = np.random.default_rng(random_state)
    h = homophily

    # Groups: a balanced random partition of the entities, about _GROUP_SIZE per group.
    n_groups = max(1, n_entities // _GROUP_SIZE)
    group = rng.permutation(n_entities) % n_groups

    # Hidden weekly latent states, AR(1) processes with unit variance: one per group and one per
    # entity, mixed with unit variance so that two entities of one group have latent correlation h
    # in the same week (h * _RHO**k k weeks apart). The draws do not depend on h, so that the
    # levels of the knob share their randomness under one seed.
    n_periods = _SPAN_DAYS // _PERIOD_DAYS + 1
    z_own = _ar1(rng, n_periods, n_entities)
    z_group = _ar1(rng, n_periods, n_groups)
    z = z_own
    z *= np.sqrt(1.0 - h)
    z += np.sqrt(h) * z_group[:, group]

    entities = pd.DataFrame(
        {
            "entity_id": np.arange(n_entities, dtype=np.int64),
            "group_id": group.astype(np.int64),
            "size": rng.gamma(2.0, 1.0, n_entities),
            "segment": rng.choice(np.array(["a", "b", "c", "d"]), n_entities),
        }
    )
    groups = pd.DataFrame(
        {
            "group_id": np.arange(n_groups, dtype=np.int64),
            "budget": rng.lognormal(0.0, 1.0, n_groups),
            "region": rng.choice(np.array(["north", "south", "east", "west"]), n_groups),
        }
    )
    polarity = np.tile([1.0, -1.0], _N_TYPES // 2)
    event_types = pd.DataFrame(
        {
            "type_id": np.arange(_N_TYPES, dtype=np.int64),
            "polarity": polarity,
            "weight": rng.uniform(0.0, 1.0, _N_TYPES),
        }
    )

    span_ns, week_ns = _SPAN_DAYS * _DAY_NS, _PERIOD_DAYS * _DAY_NS
    cum_rate = np.cumsum(np.exp(0.5 * h * z).ravel())

    def draw_cells(n):
        # (week, entity) cells drawn with rate exp(h z / 2), a uniform time inside the week.
        # Sorted queries keep the search cache-friendly over the (weeks x entities) cells.
        cell = np.searchsorted(cum_rate, np.sort(rng.random(n)) * cum_rate[-1], side="right")
        period, ent = np.divmod(np.minimum(cell, cum_rate.size - 1), n_entities)
        offs = np.minimum(((period + rng.random(n)) * week_ns).astype(np.int64), span_ns - 1)
        order = np.argsort(offs, kind="stable")
        return ent[order], offs[order]

    def lag(n):
        return (rng.random(n) * _LAG_DAYS * _DAY_NS).astype(np.int64)

    # Timed levels above the leaf; the leaf is drawn as pairs below them.
    n_pairs = n_rows // 2
    levels: list[dict] = []
    if depth == 1:
        pair_ent, pair_offs = draw_cells(n_pairs)
        pair_parent = None
    else:
        ent, offs = draw_cells(sizes[0])
        levels.append({"entity": ent, "offs": offs})
        for k in range(1, depth - 1):
            parent = rng.integers(0, sizes[k - 1], sizes[k])
            offs = levels[-1]["offs"][parent] + lag(sizes[k])
            order = np.argsort(offs, kind="stable")
            parent, offs = parent[order], offs[order]
            levels.append({"parent": parent, "offs": offs, "entity": levels[-1]["entity"][parent]})
        pair_parent = rng.integers(0, sizes[depth - 2], n_pairs)
        pair_offs = levels[-1]["offs"][pair_parent] + lag(n_pairs)
        pair_ent = levels[-1]["entity"][pair_parent]

    # Each pair is one row of a positive-polarity type and one of a negative-polarity type, at the
    # same time under the same parent: every per-column multiset of a pair is then the same for z
    # and -z, so no single-column aggregate can recover the sign at homophily 0.
    pos, neg = np.flatnonzero(polarity > 0), np.flatnonzero(polarity < 0)
    pair_types = np.stack([rng.choice(pos, n_pairs), rng.choice(neg, n_pairs)], axis=1).ravel()
    leaf_offs = np.repeat(pair_offs, 2)
    order = np.lexsort((rng.random(n_rows), leaf_offs))
    leaf = {"offs": leaf_offs[order], "entity": np.repeat(pair_ent, 2)[order], "type": pair_types[order]}
    if pair_parent is not None:
        leaf["parent"] = np.repeat(pair_parent, 2)[order]
    levels.append(leaf)

    leaf_period = np.minimum(leaf["offs"] // week_ns, n_periods - 1)
    w = h + (1.0 - h) * polarity[leaf["type"]]
    value = z[leaf_period, leaf["entity"]] * w + _NOISE * rng.standard_normal(n_rows)

    tables: dict[str, pd.DataFrame] = {"entities": entities, "groups": groups, "event_types": event_types}
    pkeys = {"entities": "entity_id", "groups": "group_id", "event_types": "type_id"}
    fkeys: dict[str, dict[str, str]] = {"entities": {"group_id": "groups"}}
    times: dict[str, str] = {}
    n_dims = n_tables - depth - 3
    for k, lev in enumerate(levels, start=1):
        name = _level_name(k)
        n = len(lev["offs"])
        df = {_pk(name): np.arange(n, dtype=np.int64)}
        if k == 1:
            df["entity_id"] = lev["entity"].astype(np.int64)
            fkeys[name] = {"entity_id": "entities"}
            for j in range(1, n_dims + 1):
                df[f"dim_{j}_id"] = rng.integers(0, _N_DIM_ROWS, n)
                fkeys[name][f"dim_{j}_id"] = f"dim_{j}"
        else:
            parent = _level_name(k - 1)
            df[_pk(parent)] = lev["parent"].astype(np.int64)
            fkeys[name] = {_pk(parent): parent}
        if k == depth:
            df["type_id"] = lev["type"].astype(np.int64)
            fkeys[name]["type_id"] = "event_types"
        df["time"] = _START + lev["offs"].astype("timedelta64[ns]")
        df["amount"] = rng.lognormal(0.0, 1.0, n)
        if k == depth:
            df["value"] = value
        tables[name] = pd.DataFrame(df)
        pkeys[name] = _pk(name)
        times[name] = "time"
    for j in range(1, n_dims + 1):
        tables[f"dim_{j}"] = pd.DataFrame(
            {
                f"dim_{j}_id": np.arange(_N_DIM_ROWS, dtype=np.int64),
                "attr": rng.standard_normal(_N_DIM_ROWS),
                "kind": rng.choice(np.array(["x", "y", "z"]), _N_DIM_ROWS),
            }
        )
        pkeys[f"dim_{j}"] = f"dim_{j}_id"

    db = Database(tables, primary_keys=pkeys, foreign_keys=fkeys, time_columns=times)
    task = Task(
        name="synthetic",
        entity_table="entities",
        entity_col="entity_id",
        target_col="label",
        task_type=task_type,
        window=_WINDOW,
        label_sql=_label_sql(depth, h, task_type),
        val_timestamp=_VAL,
        test_timestamp=_TEST,
        description=f"Synthetic {task_type} label over the next 30 days (homophily={h}).",
    )
    return db, {"synthetic": task}
