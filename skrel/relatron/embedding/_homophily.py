"""Meta-paths and RDB task homophily, time-exact, computed in DuckDB (the ``homophily`` component).

Two *training* rows ``(entity, cutoff)`` are neighbours on a self-loop meta-path when a path
instance joins their entities using only rows visible at *both* cutoffs (time ``<=`` the earlier
cutoff; rows of tables without a time column are always visible). Definitions as formulas:
``docs/selection.md``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd

from ...data import Database, SchemaError, Task
from ...data.files import FileTable, connect, register_table
from ...utils import quote_identifier as _q
from ._common import EmbeddingRows, EmbeddingSettings, logger

__all__ = ["MetaPath", "homophily", "metapath_homophily", "metapaths"]

# Regression targets: the kernel K(y, y') = 1[q(y) = q(y')] over this many quantile bins.
_N_BINS = 10
# Anchor sampling keeps at least this many anchor entities on average.
_MIN_ANCHORS = 50

# ---------------------------------------------------------------------------------------------------
# Meta-paths


@dataclass(frozen=True)
class MetaPath:
    """A self-loop meta-path from the entity table back to itself.

    Parameters
    ----------
    name : str
        Readable name, e.g. ``"drivers<-results.driverId->results.raceId"``.
    steps : tuple of (str, str, str, str)
        The half-path from the entity table to the pivot table, as ``(direction, from_table,
        fk_column, to_table)``: ``"down"`` enters ``to_table`` through its foreign key
        ``fk_column`` referencing ``from_table``; ``"up"`` leaves ``from_table`` through its own
        foreign key ``fk_column`` to ``to_table``. The meta-path is the half-path followed by its
        reverse; two entities are joined when they reach the same pivot row.
    direct : tuple of (str, str, str) or None
        For a table with two foreign keys to the entity table: ``(table, fk_1, fk_2)``; the
        meta-path is ``entity <-fk_1- table -fk_2-> entity`` (and ``steps`` is empty).
    """

    name: str
    steps: tuple = ()
    direct: tuple | None = None

    @property
    def pivot(self) -> str:
        """The table in the middle of the meta-path."""
        return self.direct[0] if self.direct is not None else self.steps[-1][3]


def metapaths(db: Database, entity_table: str, max_hops: int = 3) -> list[MetaPath]:
    """The self-loop meta-paths of ``entity_table``, at most ``max_hops`` foreign-key hops each way.

    A half-path goes *down* from the entity table into tables that reference it (zero or more
    times), then *up* through foreign keys to parents (at least once), never straight back through
    the foreign key it came by; its end table is the pivot. Also, for every table with two foreign
    keys to the entity table, the direct meta-path ``entity <- table -> entity``.

    Parameters
    ----------
    db : Database
    entity_table : str
    max_hops : int, default=3
        Most foreign-key hops from the entity table to the pivot.

    Returns
    -------
    list of MetaPath
        In a deterministic order (by hops, then name).

    Examples
    --------
    >>> from skrel.datasets import make_synthetic
    >>> db, _ = make_synthetic(n_entities=20, n_rows=200, n_tables=6)
    >>> for m in metapaths(db, "entities"):
    ...     print(m.name)
    entities->entities.group_id
    entities<-events.entity_id->events.dim_1_id
    entities<-events.entity_id<-sub_events.event_id->sub_events.type_id
    """
    if entity_table not in db:
        raise SchemaError(f"Entity table {entity_table!r} is not in the database; tables are {db.table_names}.")
    if not isinstance(max_hops, Integral) or max_hops < 1:
        raise ValueError(f"max_hops must be an int >= 1, got {max_hops!r}.")
    children: dict[str, list[tuple[str, str]]] = {name: [] for name in db.tables}
    for name, t in db.tables.items():
        for col, ref in t.fkeys.items():
            children[ref].append((name, col))
    found: list[tuple[int, str, MetaPath]] = []

    def name_of(steps) -> str:
        out = entity_table
        for direction, src, col, dst in steps:
            out += f"<-{dst}.{col}" if direction == "down" else f"->{src}.{col}"
        return out

    def walk(table: str, steps: tuple, phase: str) -> None:
        if steps and steps[-1][0] == "up":
            found.append((len(steps), name_of(steps), MetaPath(name_of(steps), steps)))
        if len(steps) == max_hops:
            return
        if phase == "down":
            for child, col in sorted(children[table]):
                walk(child, steps + (("down", table, col, child),), "down")
        for col, ref in sorted(db[table].fkeys.items()):
            if steps and steps[-1][0] == "down" and steps[-1][2] == col and steps[-1][3] == table:
                continue  # straight back through the foreign key we came by
            walk(ref, steps + (("up", table, col, ref),), "up")

    walk(entity_table, (), "down")
    for name in sorted(db.tables):
        cols = sorted(c for c, ref in db[name].fkeys.items() if ref == entity_table)
        for i in range(len(cols)):
            for j in range(i + 1, len(cols)):
                label = f"{entity_table}<-{name}.{cols[i]}={name}.{cols[j]}"
                found.append((1, label, MetaPath(label, (), (name, cols[i], cols[j]))))
    found.sort(key=lambda x: (x[0], x[1]))
    return [m for _, _, m in found]


# ---------------------------------------------------------------------------------------------------
# Homophily in DuckDB

@contextlib.contextmanager
def _connection(db: Database, n_jobs=None):
    """A DuckDB connection of the data layer (:func:`skrel.data.files.connect`) on which every
    table of ``db`` is readable under a safe alias; yields ``(connection, {table: alias})``."""
    paths = [t.path for t in db.tables.values() if isinstance(t, FileTable)]
    con = connect(paths, {"threads": int(n_jobs)} if n_jobs is not None else None)
    try:
        alias = {}
        for i, (name, table) in enumerate(db.tables.items()):
            alias[name] = f"skrel_t{i}"
            register_table(con, alias[name], table)
        yield con, alias
    finally:
        con.close()


def _half_path_sql(db: Database, alias: dict, entity_table: str, steps: tuple, t_max: pd.Timestamp) -> str:
    """SELECT e, p, tau: each entity, each pivot row it reaches, the earliest time a path is visible.

    A path instance is visible at cutoff ``t`` when every row on it is dated ``<= t`` (rows of
    untimed tables always are; rows with a missing time never are); ``tau`` is the latest time on
    the instance, minimised over the instances joining ``e`` to ``p``. ``alias`` names each
    table on the connection (:func:`_connection`).
    """
    frm = [f"{alias[entity_table]} r0"]
    tables = [entity_table]
    for k, (direction, src, col, dst) in enumerate(steps, start=1):
        if direction == "down":
            on = f"r{k}.{_q(col)} = r{k - 1}.{_q(db[src].pkey)}"
        else:
            on = f"r{k}.{_q(db[dst].pkey)} = r{k - 1}.{_q(col)}"
        frm.append(f"JOIN {alias[dst]} r{k} ON {on}")
        tables.append(dst)
    times, where = [], []
    for k, name in enumerate(tables):
        tc = db[name].time_col
        if tc is not None:
            times.append(f"r{k}.{_q(tc)}")
            where.append(f"r{k}.{_q(tc)} IS NOT NULL")
    tau = f"greatest({', '.join(times)})" if times else "TIMESTAMP '1677-09-22'"
    last = len(tables) - 1
    pivot_key = db[tables[-1]].pkey
    where_sql = ("WHERE " + " AND ".join(where)) if where else ""
    return (
        f"SELECT r0.{_q(db[entity_table].pkey)} AS e, r{last}.{_q(pivot_key)} AS p, min({tau}) AS tau\n"
        f"FROM {' '.join(frm)}\n{where_sql}\nGROUP BY 1, 2\n"
        f"HAVING min({tau}) <= TIMESTAMP '{t_max}'"
    )


def _direct_pairs_sql(db: Database, alias: dict, entity_table: str, direct: tuple, t_max: pd.Timestamp) -> str:
    """SELECT e1, e2, c for ``entity <-fk1- table -fk2-> entity``, both orientations."""
    table, c1, c2 = direct
    pk = db[entity_table].pkey
    times, where = [], []
    for ref, name in (("f", table), ("x1", entity_table), ("x2", entity_table)):
        tc = db[name].time_col
        if tc is not None:
            times.append(f"{ref}.{_q(tc)}")
            where.append(f"{ref}.{_q(tc)} IS NOT NULL")
    tau = f"greatest({', '.join(times)})" if times else "TIMESTAMP '1677-09-22'"
    where_sql = " AND ".join(where + [f"x1.{_q(pk)} <> x2.{_q(pk)}"])
    one = (
        f"SELECT x1.{_q(pk)} AS e1, x2.{_q(pk)} AS e2, {tau} AS tau FROM {alias[table]} f "
        f"JOIN {alias[entity_table]} x1 ON x1.{_q(pk)} = f.{_q(c1)} "
        f"JOIN {alias[entity_table]} x2 ON x2.{_q(pk)} = f.{_q(c2)} WHERE {where_sql}"
    )
    return (
        f"SELECT e1, e2, min(tau) AS c FROM ({one} UNION ALL SELECT e2, e1, tau FROM ({one})) "
        f"GROUP BY 1, 2 HAVING min(tau) <= TIMESTAMP '{t_max}'"
    )


def _encode_labels(y: np.ndarray, task_type: str):
    """One-hot columns of the kernel: classes (classification) or quantile bins (regression)."""
    if task_type == "regression":
        y = np.asarray(y, dtype=np.float64)
        edges = np.unique(np.quantile(y, np.linspace(0, 1, _N_BINS + 1)[1:-1]))
        codes = np.searchsorted(edges, y, side="right")
        k = len(edges) + 1
    else:
        classes, codes = np.unique(np.asarray(y), return_inverse=True)
        k = len(classes)
    return np.eye(k, dtype=np.float64)[codes], k


def _totals_to_stats(T: np.ndarray, k: int, regression: bool) -> np.ndarray:
    """(h, a, adjusted[, pearson]) from the totals (d, same, u_1..u_k[, ss, mu, m2])."""
    d, same, u = T[0], T[1], T[2:2 + k]
    if d <= 0:
        return np.full(4 if regression else 3, np.nan)
    h = same / d
    a = float(np.sum((u / d) ** 2))
    adj = (h - a) / (1.0 - a) if a < 1.0 else np.nan
    if not regression:
        return np.array([h, a, adj])
    ss, mu, m2 = T[2 + k:5 + k]
    mean = mu / d
    var = m2 / d - mean**2
    r = (ss / d - mean**2) / var if var > 0 else np.nan
    return np.array([h, a, adj, r])


def _delta_se(V: np.ndarray, rho: float, k: int, regression: bool) -> np.ndarray:
    """Standard errors of the statistics under Bernoulli(rho) anchor sampling, by the delta method.

    ``V`` holds one row of sums per sampled anchor. The totals are estimated by ``V.sum(0) / rho``
    (Horvitz-Thompson); ``Var(T) = (1 - rho) / rho**2 * sum_i v_i v_i^T``.
    """
    n_stats = 4 if regression else 3
    if rho >= 1.0 or len(V) == 0:
        return np.zeros(n_stats)
    T = V.sum(axis=0) / rho
    base = _totals_to_stats(T, k, regression)
    grads = np.zeros((n_stats, len(T)))
    for j in range(len(T)):
        step = 1e-6 * max(abs(T[j]), 1.0)
        Tp, Tm = T.copy(), T.copy()
        Tp[j] += step
        Tm[j] -= step
        grads[:, j] = (_totals_to_stats(Tp, k, regression) - _totals_to_stats(Tm, k, regression)) / (2 * step)
    lin = V @ grads.T  # (anchors, stats)
    var = (1.0 - rho) / rho**2 * np.sum(lin**2, axis=0)
    se = np.sqrt(var)
    se[~np.isfinite(base)] = np.nan
    return se



def metapath_homophily(
    db: Database,
    task: Task,
    *,
    labels: pd.DataFrame | None = None,
    paths: list[MetaPath] | None = None,
    max_hops: int = 3,
    max_pairs: int | None = 2_000_000,
    random_state: int = 0,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> pd.DataFrame:
    """Time-exact homophily of the task's training labels on each self-loop meta-path.

    Parameters
    ----------
    db : Database
    task : Task
    labels : DataFrame, optional
        Training label rows (``timestamp``, ``task.entity_col``, ``task.target_col``); by default
        ``task.labels(db, "train")``.
    paths : list of MetaPath, optional
        By default :func:`metapaths` of the entity table with ``max_hops``.
    max_hops : int, default=3
    max_pairs : int or None, default=2_000_000
        Cap on the expected number of (anchor entity, entity, pivot row) join rows per meta-path;
        beyond it anchor entities are Bernoulli-sampled at rate ``max_pairs / size`` (but at least
        50 anchors on average, so that the standard error means something). ``None``: exact.
    random_state : int, default=0
        Seed of the anchor sampling.
    n_jobs : int, optional
        DuckDB threads.
    verbose : int, default=0
        1 logs one line per meta-path (``logging`` at INFO on ``skrel.relatron.embedding``).

    Returns
    -------
    DataFrame
        One row per meta-path with columns ``h``, ``a``, ``adjusted`` (and ``pearson`` for
        regression), their standard errors ``*_se``, ``edges`` (estimated number of undirected
        edges between training rows), ``sample_rate`` and ``hops``; indexed by meta-path name.

    Notes
    -----
    Edges join training rows of *different* entities (the same entity at two cutoffs is label
    persistence, measured by the temporal component). Row ``(e_1, t_1)`` and row ``(e_2, t_2)``
    are neighbours when ``max(tau(e_1, p), tau(e_2, p)) <= min(t_1, t_2)`` for some pivot row
    ``p``, ``tau(e, p)`` being the earliest time at which a path instance from ``e`` to ``p`` is
    entirely visible. With ``c(e_1, e_2)`` the minimum of that over pivots, the condition reads
    ``t_1 >= c and t_2 >= c``, so the sums over row pairs factorise into per-entity suffix sums
    over cutoffs, joined with an ASOF join: exact, without enumerating row pairs.
    """
    if labels is None:
        labels = task.labels(db, "train")
    return _homophily_table(db, task.entity_table, labels[task.entity_col].to_numpy(),
                            pd.to_datetime(labels["timestamp"]).to_numpy(), labels[task.target_col].to_numpy(),
                            task.task_type, paths=paths, max_hops=max_hops, max_pairs=max_pairs,
                            random_state=random_state, n_jobs=n_jobs, verbose=verbose)


def _homophily_table(db: Database, entity_table: str, entity_ids, cutoffs, y, task_type: str, *, paths=None,
                     max_hops: int = 3, max_pairs: int | None = 2_000_000, random_state: int = 0,
                     n_jobs: int | None = None, verbose: int = 0) -> pd.DataFrame:
    """:func:`metapath_homophily` over arrays: training rows ``(entity_ids, cutoffs)`` labelled ``y``."""
    if paths is None:
        paths = metapaths(db, entity_table, max_hops=max_hops)
    regression = task_type == "regression"
    y = np.asarray(y)
    onehot, k = _encode_labels(y, task_type)
    lab = pd.DataFrame({"e": np.asarray(entity_ids), "t": np.asarray(cutoffs, dtype="datetime64[ns]")})
    ocols = [f"o{j}" for j in range(k)]
    for j, c in enumerate(ocols):
        lab[c] = onehot[:, j]
    if regression:
        lab["y1"] = y.astype(np.float64)
        lab["y2"] = y.astype(np.float64) ** 2
    mcols = ["y1", "y2"] if regression else []
    cols = ["n"] + ocols + mcols
    lab["n"] = 1.0
    t_max = pd.Timestamp(lab["t"].max())
    rng = np.random.default_rng(random_state)
    rows = []
    with _connection(db, n_jobs) as (con, alias):
        con.register("skrel_labels", lab)
        sums = ", ".join(f"sum({c}) AS {c}" for c in cols)
        suffix = ", ".join(f"sum({c}) OVER w AS {c}" for c in cols)
        con.execute(
            f"CREATE TEMP TABLE skrel_stats AS SELECT e, t, {suffix} FROM "
            f"(SELECT e, t, {sums} FROM skrel_labels GROUP BY e, t) "
            "WINDOW w AS (PARTITION BY e ORDER BY t DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        ).fetchall()
        con.execute("CREATE TEMP TABLE skrel_anchor_all AS SELECT DISTINCT e FROM skrel_labels ORDER BY e").fetchall()
        anchors_all = con.execute("SELECT e FROM skrel_anchor_all").df()["e"].to_numpy()
        aggs = [
            "sum(s1.n * s2.n) AS d",
            "sum(" + " + ".join(f"s1.{c} * s2.{c}" for c in ocols) + ") AS same",
        ]
        aggs += [f"sum(s1.{c} * s2.n + s2.{c} * s1.n) / 2 AS u_{c}" for c in ocols]
        if regression:
            # Float sums in a fixed order, so that the same seed gives bit-identical results under
            # any number of threads (integer-valued sums above are exact in any order).
            aggs += [
                "sum(s1.y1 * s2.y1 ORDER BY pairs.e2) AS ss",
                "sum(s1.y1 * s2.n + s2.y1 * s1.n ORDER BY pairs.e2) / 2 AS mu",
                "sum(s1.y2 * s2.n + s2.y2 * s1.n ORDER BY pairs.e2) / 2 AS m2",
            ]
        for path in paths:
            t0 = time.perf_counter()
            con.execute("DROP TABLE IF EXISTS skrel_anchor").fetchall()
            if path.direct is None:
                con.execute("DROP TABLE IF EXISTS skrel_reach").fetchall()
                con.execute(
                    f"CREATE TEMP TABLE skrel_reach AS {_half_path_sql(db, alias, entity_table, path.steps, t_max)}"
                ).fetchall()
                size = con.execute(
                    "SELECT coalesce(sum(m * m), 0) FROM (SELECT count(*) AS m FROM skrel_reach GROUP BY p)"
                ).fetchall()[0][0]
            else:
                size = len(db[path.direct[0]].df)
            size = float(size)
            rho = 1.0 if (max_pairs is None or size <= max_pairs) else float(max_pairs) / size
            # At least _MIN_ANCHORS anchors on average, so that the standard error means something.
            rho = min(1.0, max(rho, _MIN_ANCHORS / max(len(anchors_all), 1)))
            draw = rng.random(len(anchors_all))
            if rho < 1.0:
                con.register("skrel_anchor_df", pd.DataFrame({"e": anchors_all[draw < rho]}))
            else:
                con.register("skrel_anchor_df", pd.DataFrame({"e": anchors_all}))
            con.execute("CREATE TEMP TABLE skrel_anchor AS SELECT e FROM skrel_anchor_df").fetchall()
            if path.direct is None:
                pairs = (
                    "SELECT a1.e AS e1, a2.e AS e2, min(greatest(a1.tau, a2.tau)) AS c "
                    "FROM skrel_reach a1 SEMI JOIN skrel_anchor s ON a1.e = s.e "
                    "JOIN skrel_reach a2 ON a1.p = a2.p AND a1.e <> a2.e GROUP BY 1, 2"
                )
            else:
                pairs = (
                    f"SELECT q.* FROM ({_direct_pairs_sql(db, alias, entity_table, path.direct, t_max)}) q "
                    "SEMI JOIN skrel_anchor s ON q.e1 = s.e"
                )
            V = con.execute(
                f"WITH pairs AS ({pairs}) SELECT pairs.e1 AS anchor, {', '.join(aggs)} FROM pairs "
                "ASOF JOIN skrel_stats s1 ON pairs.e1 = s1.e AND s1.t >= pairs.c "
                "ASOF JOIN skrel_stats s2 ON pairs.e2 = s2.e AND s2.t >= pairs.c "
                "GROUP BY pairs.e1 ORDER BY pairs.e1"
            ).df()
            V = V.drop(columns="anchor").to_numpy(dtype=np.float64)
            T = V.sum(axis=0) / rho if len(V) else np.zeros(2 + k + (3 if regression else 0))
            stats = _totals_to_stats(T, k, regression)
            se = _delta_se(V, rho, k, regression)
            row = {"h": stats[0], "a": stats[1], "adjusted": stats[2]}
            if regression:
                row["pearson"] = stats[3]
            row.update({"h_se": se[0], "a_se": se[1], "adjusted_se": se[2]})
            if regression:
                row["pearson_se"] = se[3]
            row.update(
                {"edges": T[0] / 2.0, "sample_rate": rho, "hops": float(len(path.steps) or 1), "name": path.name}
            )
            rows.append(row)
            logger.log(logging.INFO if verbose else logging.DEBUG, "meta-path %s: %.0f edges, rate %.3g, %.2fs",
                       path.name, T[0] / 2, rho, time.perf_counter() - t0)
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["h", "a", "adjusted", "edges", "sample_rate", "hops"])
    return out.set_index("name")



def _homophily_entries(table: pd.DataFrame, regression: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, row in table.iterrows():
        for col in table.columns:
            out[f"homophily[{name}].{col}"] = float(row[col])
    out["homophily.n_metapaths"] = float(len(table))
    stats = ["h", "adjusted"] + (["pearson"] if regression else [])
    for s in stats:
        v = table[s].to_numpy(dtype=np.float64) if len(table) else np.array([])
        w = table["edges"].to_numpy(dtype=np.float64) if len(table) else np.array([])
        ok = np.isfinite(v) & (w > 0)
        if ok.any():
            out[f"homophily.{s}.min"] = float(v[ok].min())
            out[f"homophily.{s}.max"] = float(v[ok].max())
            out[f"homophily.{s}.mean"] = float(v[ok].mean())
            out[f"homophily.{s}.weighted_mean"] = float(np.average(v[ok], weights=w[ok]))
        else:
            for agg in ("min", "max", "mean", "weighted_mean"):
                out[f"homophily.{s}.{agg}"] = np.nan
    return out



def homophily(rows: EmbeddingRows, settings: EmbeddingSettings) -> dict[str, float]:
    """The ``homophily`` component: per meta-path statistics of the training labels and their
    summaries (min, max, mean and edge-weighted mean over meta-paths)."""
    table = _homophily_table(rows.db, rows.train.entity_table, rows.train.entity_ids, rows.train.cutoffs,
                             rows.y_train, rows.task_type, max_hops=settings.max_hops,
                             max_pairs=settings.max_pairs, random_state=settings.random_state,
                             n_jobs=settings.n_jobs, verbose=max(settings.verbose - 1, 0))
    return _homophily_entries(table, rows.regression)
