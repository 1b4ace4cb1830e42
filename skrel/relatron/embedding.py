"""Relatron's task embedding: what kind of relational task this is, in seconds.

``task_embedding(db, task)`` returns a flat, named vector of floats (a :class:`TaskEmbedding`) with
five components (definitions as formulas in ``docs/selection.md``):

- ``homophily``: RDB task homophily, time-exact, on self-loop meta-paths from the entity table back
  to itself. Two *training* rows ``(entity, cutoff)`` are neighbours on a meta-path when a path
  instance joins their entities using only rows visible at *both* cutoffs (time ``<=`` the earlier
  cutoff; rows of tables without a time column are always visible). Computed in DuckDB.
- ``path_affinity``: how well a linear model on the seed embeddings of an untrained RDL network
  (1, 2 and 3 layers) fitted on training rows scores validation rows.
- ``feature_affinity``: how well a small fixed-budget tabular learner on depth-1 and depth-2 DFS
  features fitted on training rows scores validation rows.
- ``temporal``: lag-1, 2, 3 autocorrelation of each entity's labels over training cutoffs, and the
  share of validation entities already seen at training cutoffs.
- ``scale``: ``log1p`` of training rows, entities, cutoffs, tables and columns.

Leakage guarantee: everything is computed on the database cut at the last training or validation
cutoff, and on the task's training and validation labels; rows dated after every cutoff never
enter, and test labels are never read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd

from ..data import Database, RelationalDataset, SchemaError, Task

__all__ = [
    "TaskEmbedding",
    "MetaPath",
    "COMPONENTS",
    "metapaths",
    "metapath_homophily",
    "task_embedding",
]

logger = logging.getLogger(__name__)

COMPONENTS = ("homophily", "path_affinity", "feature_affinity", "temporal", "scale")

# Regression targets: the kernel K(y, y') = 1[q(y) = q(y')] over this many quantile bins.
_N_BINS = 10
# Anchor sampling keeps at least this many anchor entities on average.
_MIN_ANCHORS = 50
# Affinity defaults: row subsamples and the untrained network.
_RDL_LAYERS = (1, 2, 3)
_RDL_CHANNELS = 16
_RDL_FANOUT = 4  # RelBench's halving schedule: [4, 2, 1] neighbours per edge type at 3 layers


class TaskEmbedding(dict):
    """A flat mapping of entry name -> float, with the seconds each component took.

    ``dict(result)`` gives the named floats; ``result.seconds`` maps each computed component to
    its wall-clock seconds.

    Attributes
    ----------
    seconds : dict of str to float
        Wall-clock seconds per component, in the order they ran.
    cpu_seconds : dict of str to float
        CPU seconds of this process per component (all its threads): on a shared machine, a
        measure of the work that does not count time spent waiting for a core.
    task_type : str
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    """

    def __init__(self, values=(), seconds=None, task_type: str = "", cpu_seconds=None):
        super().__init__(values)
        self.seconds: dict[str, float] = dict(seconds or {})
        self.cpu_seconds: dict[str, float] = dict(cpu_seconds or {})
        self.task_type = task_type

    def to_series(self) -> pd.Series:
        """The entries as a float pandas Series, in insertion order."""
        return pd.Series(dict(self), dtype=np.float64)

    def __repr__(self) -> str:
        return f"TaskEmbedding({len(self)} entries, seconds={ {k: round(v, 2) for k, v in self.seconds.items()} })"


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


def _q(identifier: str) -> str:
    return '"' + str(identifier).replace('"', '""') + '"'


class _Sql:
    """A DuckDB connection with the database's tables registered under safe aliases."""

    def __init__(self, db: Database, n_jobs=None):
        import duckdb

        self.con = duckdb.connect()
        if n_jobs is not None:
            self.con.execute(f"SET threads TO {int(n_jobs)}").fetchall()
        self.alias: dict[str, str] = {}
        self.db = db
        for i, (name, t) in enumerate(db.tables.items()):
            alias = f"skrel_t{i}"
            self.con.register(alias, t.df)
            self.alias[name] = alias

    def close(self) -> None:
        self.con.close()


def _half_path_sql(sql: _Sql, entity_table: str, steps: tuple, t_max: pd.Timestamp) -> str:
    """SELECT e, p, tau: each entity, each pivot row it reaches, the earliest time a path is visible.

    A path instance is visible at cutoff ``t`` when every row on it is dated ``<= t`` (rows of
    untimed tables always are; rows with a missing time never are); ``tau`` is the latest time on
    the instance, minimised over the instances joining ``e`` to ``p``.
    """
    db = sql.db
    frm = [f"{sql.alias[entity_table]} r0"]
    tables = [entity_table]
    for k, (direction, src, col, dst) in enumerate(steps, start=1):
        if direction == "down":
            on = f"r{k}.{_q(col)} = r{k - 1}.{_q(db[src].pkey)}"
        else:
            on = f"r{k}.{_q(db[dst].pkey)} = r{k - 1}.{_q(col)}"
        frm.append(f"JOIN {sql.alias[dst]} r{k} ON {on}")
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


def _direct_pairs_sql(sql: _Sql, entity_table: str, direct: tuple, t_max: pd.Timestamp) -> str:
    """SELECT e1, e2, c for ``entity <-fk1- table -fk2-> entity``, both orientations."""
    db = sql.db
    table, c1, c2 = direct
    pk = db[entity_table].pkey
    times, where = [], []
    for alias, name in (("f", table), ("x1", entity_table), ("x2", entity_table)):
        tc = db[name].time_col
        if tc is not None:
            times.append(f"{alias}.{_q(tc)}")
            where.append(f"{alias}.{_q(tc)} IS NOT NULL")
    tau = f"greatest({', '.join(times)})" if times else "TIMESTAMP '1677-09-22'"
    where_sql = " AND ".join(where + [f"x1.{_q(pk)} <> x2.{_q(pk)}"])
    one = (
        f"SELECT x1.{_q(pk)} AS e1, x2.{_q(pk)} AS e2, {tau} AS tau FROM {sql.alias[table]} f "
        f"JOIN {sql.alias[entity_table]} x1 ON x1.{_q(pk)} = f.{_q(c1)} "
        f"JOIN {sql.alias[entity_table]} x2 ON x2.{_q(pk)} = f.{_q(c2)} WHERE {where_sql}"
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
    if paths is None:
        paths = metapaths(db, task.entity_table, max_hops=max_hops)
    regression = task.task_type == "regression"
    y = labels[task.target_col].to_numpy()
    onehot, k = _encode_labels(y, task.task_type)
    lab = pd.DataFrame({"e": labels[task.entity_col].to_numpy(), "t": pd.to_datetime(labels["timestamp"]).to_numpy()})
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
    sql = _Sql(db, n_jobs)
    rows = []
    try:
        con = sql.con
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
                    f"CREATE TEMP TABLE skrel_reach AS {_half_path_sql(sql, task.entity_table, path.steps, t_max)}"
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
                    f"SELECT q.* FROM ({_direct_pairs_sql(sql, task.entity_table, path.direct, t_max)}) q "
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
    finally:
        sql.close()
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["h", "a", "adjusted", "edges", "sample_rate", "hops"])
    return out.set_index("name")


# ---------------------------------------------------------------------------------------------------
# Affinities, temporal statistics, scale


def _score(task_type: str, y_train: np.ndarray, y_val: np.ndarray, pred: np.ndarray) -> float:
    """Validation score, greater is better.

    Binary: ROC AUC of the positive-class score. Multiclass: macro one-vs-rest ROC AUC of the class
    probabilities (``pred`` has one column per class of ``np.unique(y_train)``). Regression: the MAE
    skill ``1 - MAE(pred) / MAE(median of y_train)`` (0 for the constant median, 1 for a perfect fit).
    """
    from sklearn.metrics import roc_auc_score

    if task_type == "regression":
        base = float(np.mean(np.abs(y_val - np.median(y_train))))
        mae = float(np.mean(np.abs(y_val - pred)))
        return 1.0 - mae / base if base > 0 else np.nan
    if len(np.unique(y_val)) < 2:
        return np.nan
    if task_type == "binary":
        return float(roc_auc_score(y_val, pred))
    classes = np.unique(y_train)
    keep = np.isin(y_val, classes)
    if len(np.unique(y_val[keep])) < 2:
        return np.nan
    P = pred[keep]
    P = P / P.sum(axis=1, keepdims=True)
    return float(roc_auc_score(y_val[keep], P, multi_class="ovr", average="macro", labels=classes))


def _linear_score(task_type: str, Z_tr, y_tr, Z_va, y_va, random_state: int) -> float:
    """Standardise, then closed-form ridge (regression) or L2 logistic regression; score on val."""
    mean, std = Z_tr.mean(axis=0), Z_tr.std(axis=0)
    std[std == 0] = 1.0
    A, B = (Z_tr - mean) / std, (Z_va - mean) / std
    if task_type == "regression":
        A1, B1 = np.hstack([A, np.ones((len(A), 1))]), np.hstack([B, np.ones((len(B), 1))])
        reg = np.eye(A1.shape[1])
        reg[-1, -1] = 0.0  # no penalty on the intercept
        w = np.linalg.solve(A1.T @ A1 + reg, A1.T @ y_tr)
        shift = np.median(y_tr - A1 @ w)  # the MAE-optimal intercept, for the MAE-based score
        return _score(task_type, y_tr, y_va, B1 @ w + shift)
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y_tr)) < 2:
        return np.nan
    clf = LogisticRegression(C=1.0, max_iter=500, random_state=random_state).fit(A, y_tr)
    P = clf.predict_proba(B)
    return _score(task_type, y_tr, y_va, P[:, 1] if task_type == "binary" else P)


def _path_affinity(X_tr, y_tr, X_va, y_va, task_type, random_state, n_jobs) -> dict[str, float]:
    import torch

    from ..estimators.rdl import seed_embeddings

    both = RelationalDataset(
        X_tr.db, X_tr.entity_table,
        np.concatenate([X_tr.entity_ids, X_va.entity_ids]), np.concatenate([X_tr.cutoffs, X_va.cutoffs]),
    )
    out = {}
    if task_type != "regression" and len(np.unique(y_tr)) < 2:  # no linear model to fit (nor a classifier's head)
        out.update({f"path_affinity.rdl{layers}": np.nan for layers in _RDL_LAYERS})
        out["path_affinity.max"] = np.nan
        return out
    y_both = np.concatenate([y_tr, y_va])
    # Tiny networks: one torch thread unless told (two threads made this 8x slower on rel-f1,
    # 13.2 s against 1.7 s: the scatter adds of small tensors pay for the threads' coordination).
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if n_jobs is None else int(n_jobs))
        for layers in _RDL_LAYERS:
            Z = seed_embeddings(both, y_both, task_type=task_type, channels=_RDL_CHANNELS, num_layers=layers, fanouts=_RDL_FANOUT,
                                encoder_layers=1, batch_size=2048, random_state=random_state)
            out[f"path_affinity.rdl{layers}"] = _linear_score(
                task_type, Z[: len(X_tr)], y_tr, Z[len(X_tr):], y_va, random_state
            )
    finally:
        torch.set_num_threads(threads)
    vals = [v for v in out.values() if np.isfinite(v)]
    out["path_affinity.max"] = float(max(vals)) if vals else np.nan
    return out


def _tabular(F_tr: pd.DataFrame, F_va: pd.DataFrame, numeric_only: bool):
    F_tr, F_va = F_tr.copy(), F_va.copy()
    for c in F_tr.columns:
        if F_tr[c].dtype == object or isinstance(F_tr[c].dtype, pd.CategoricalDtype):
            if numeric_only:
                F_tr, F_va = F_tr.drop(columns=c), F_va.drop(columns=c)
                continue
            cats = pd.Index(pd.unique(F_tr[c].dropna().astype(str)))
            F_tr[c] = pd.Categorical(F_tr[c].astype("string"), categories=cats)
            F_va[c] = pd.Categorical(F_va[c].astype("string"), categories=cats)
    if numeric_only:  # learners without native categorical support; some reject all-missing columns
        empty = [c for c in F_tr.columns if F_tr[c].isna().all()]
        F_tr, F_va = F_tr.drop(columns=empty), F_va.drop(columns=empty)
    names = [f"f{j}" for j in range(F_tr.shape[1])]  # DFS names hold characters LightGBM rejects
    F_tr.columns, F_va.columns = names, names
    return F_tr, F_va


def _feature_affinity(X_tr, y_tr, X_va, y_va, task_type, feature_learner, model_path, random_state, n_jobs):
    from sklearn.base import clone

    from ..features.dfs import DFSTransformer

    out = {}
    for depth in (1, 2):
        dfs = DFSTransformer(max_depth=depth, windows=(), n_jobs=n_jobs)
        F_tr = dfs.fit_transform(X_tr)
        F_va = dfs.transform(X_va)
        if feature_learner is not None:
            learner = clone(feature_learner)
            numeric_only = True
        elif model_path is not None:
            learner = _tabpfn(task_type, model_path, random_state)
            numeric_only = True
        else:
            import lightgbm as lgb

            params = dict(n_estimators=50, num_leaves=15, learning_rate=0.1, min_child_samples=10,
                          random_state=random_state, n_jobs=n_jobs or 1, verbose=-1)
            if task_type == "regression":
                learner = lgb.LGBMRegressor(objective="l1", **params)  # the score is MAE-based
            else:
                learner = lgb.LGBMClassifier(**params)
            numeric_only = False
        A, B = _tabular(F_tr, F_va, numeric_only)
        if task_type != "regression" and len(np.unique(y_tr)) < 2:
            out[f"feature_affinity.dfs{depth}"] = np.nan
            continue
        learner.fit(A, y_tr)
        if task_type == "regression":
            pred = learner.predict(B)
        else:
            P = learner.predict_proba(B)
            pred = P[:, 1] if task_type == "binary" else P
        out[f"feature_affinity.dfs{depth}"] = _score(task_type, y_tr, y_va, pred)
        out[f"feature_affinity.dfs{depth}_features"] = float(A.shape[1])
    return out


def _tabpfn(task_type: str, model_path, random_state: int):
    """A TabPFN learner from a local checkpoint (never downloaded)."""
    import os

    if not os.path.exists(model_path):
        raise FileNotFoundError(f"model_path {str(model_path)!r} does not exist; give a local TabPFN checkpoint.")
    try:
        from tabpfn import TabPFNClassifier, TabPFNRegressor
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("model_path= needs the optional package tabpfn (pip install tabpfn).") from exc
    cls = TabPFNRegressor if task_type == "regression" else TabPFNClassifier
    return cls(model_path=model_path, device="cpu", random_state=random_state)


def _autocorr(a: np.ndarray, b: np.ndarray, task_type: str) -> float:
    """Pooled lag correlation: Pearson (binary, regression); Cohen's kappa (multiclass)."""
    if len(a) < 3:
        return np.nan
    if task_type == "multiclass":
        agree = float(np.mean(a == b))
        classes = np.union1d(a, b)
        chance = float(sum(np.mean(a == k) * np.mean(b == k) for k in classes))
        return (agree - chance) / (1.0 - chance) if chance < 1 else np.nan
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return np.nan
    return float(np.corrcoef(a, b)[0, 1])


def _temporal(train: pd.DataFrame, val: pd.DataFrame, task: Task) -> dict[str, float]:
    e, y = task.entity_col, task.target_col
    cut = np.sort(pd.unique(train["timestamp"]))
    df = pd.DataFrame({"e": train[e].to_numpy(), "j": np.searchsorted(cut, train["timestamp"].to_numpy()),
                       "y": train[y].to_numpy()})
    df = df.drop_duplicates(["e", "j"])
    out = {}
    for lag in (1, 2, 3):
        nxt = df.assign(j=df["j"] - lag)
        m = df.merge(nxt, on=["e", "j"], suffixes=("", "_next"))
        out[f"temporal.autocorr_lag{lag}"] = _autocorr(m["y"].to_numpy(), m["y_next"].to_numpy(), task.task_type)
        out[f"temporal.autocorr_lag{lag}_pairs"] = float(len(m))
    seen = set(pd.unique(train[e]))
    val_e = pd.unique(val[e])
    out["temporal.val_entities_seen"] = float(np.mean([v in seen for v in val_e])) if len(val_e) else np.nan
    out["temporal.val_rows_seen"] = float(val[e].isin(seen).mean()) if len(val) else np.nan
    return out


def _scale(train: pd.DataFrame, db: Database, task: Task) -> dict[str, float]:
    return {
        "scale.log_train_rows": float(np.log1p(len(train))),
        "scale.log_entities": float(np.log1p(train[task.entity_col].nunique())),
        "scale.log_cutoffs": float(np.log1p(train["timestamp"].nunique())),
        "scale.log_tables": float(np.log1p(len(db.tables))),
        "scale.log_columns": float(np.log1p(sum(t.df.shape[1] for t in db.tables.values()))),
    }


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


def _subsample(labels: pd.DataFrame, n: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``n`` rows in a seeded random order (so any prefix is a uniform subsample too)."""
    idx = rng.permutation(len(labels))
    return labels.iloc[idx if n is None else idx[:n]].reset_index(drop=True)


def task_embedding(
    db: Database,
    task: Task,
    *,
    max_pairs: int | None = 2_000_000,
    max_hops: int = 3,
    max_train_rows: int | None = 1000,
    max_val_rows: int | None = 500,
    path_rows: tuple[int, int] = (500, 250),
    random_state: int = 0,
    components=COMPONENTS,
    feature_learner=None,
    model_path=None,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> TaskEmbedding:
    """Relatron's task embedding: homophily, affinities, temporal statistics and scale of a task.

    Parameters
    ----------
    db : Database
    task : Task
        An entity task with train and val splits; its test labels are never read.
    max_pairs : int or None, default=2_000_000
        Per meta-path cap on the expected size of the pair join; beyond it anchor entities are
        Bernoulli-sampled and the ``*_se`` entries give the estimator's standard errors.
        ``None``: exact always.
    max_hops : int, default=3
        Most foreign-key hops from the entity table to a meta-path's pivot table.
    max_train_rows, max_val_rows : int or None, default=1000 and 500
        Seeded row subsamples for the feature affinity (``None``: all rows).
    path_rows : (int, int), default=(500, 250)
        The path affinity uses the first this many training and validation rows of those
        subsamples (a forward pass of the network is the costliest step).
    random_state : int, default=0
        Seed of every sample and of the untrained network; the same seed gives the same embedding.
    components : sequence of str, default=COMPONENTS
        Among ``"homophily"``, ``"path_affinity"``, ``"feature_affinity"``, ``"temporal"`` and
        ``"scale"``.
    feature_learner : scikit-learn estimator, optional
        Learner of the feature affinity, cloned and fitted on the numeric DFS features that are not
        entirely missing (default: LightGBM with 50 trees of at most 15 leaves, L1 objective for
        regression, categorical features included).
    model_path : str or path-like, optional
        A local TabPFN checkpoint; the feature affinity then uses TabPFN (never downloaded).
    n_jobs : int, optional
        Threads for DuckDB, torch and LightGBM (None: DuckDB's default, one torch thread for the
        untrained networks, which are faster on one, and one LightGBM thread).
    verbose : int, default=0
        1 logs one line per component, 2 also one per meta-path (``logging`` at INFO on
        ``skrel.relatron.embedding``; DEBUG otherwise).

    Returns
    -------
    TaskEmbedding
        A dict of entry name -> float; ``.seconds`` gives seconds per component.

    Notes
    -----
    Everything is computed on ``db`` cut at the last training or validation cutoff, so rows dated
    after every cutoff do not change the embedding (labels come from the task, as given).

    Examples
    --------
    >>> from skrel.datasets import make_synthetic
    >>> db, tasks = make_synthetic(n_entities=50, n_rows=1000)
    >>> emb = task_embedding(db, tasks["synthetic"], components=("homophily", "scale"))
    >>> round(emb["scale.log_tables"], 3)
    1.792
    >>> sorted(emb.seconds)
    ['homophily', 'scale']
    """
    if not isinstance(db, Database):
        raise TypeError(f"db must be a skrel Database, got {type(db).__name__}.")
    if not isinstance(task, Task):
        raise TypeError(f"task must be a skrel Task, got {type(task).__name__}.")
    if isinstance(components, str):
        components = (components,)
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"Unknown component(s) {unknown}; choose among {list(COMPONENTS)}.")
    if task.entity_table not in db:
        raise SchemaError(f"Task {task.name!r}: entity table {task.entity_table!r} is not in the database; "
                          f"tables are {db.table_names}.")
    if max_pairs is not None and (not isinstance(max_pairs, Integral) or max_pairs < 1):
        raise ValueError(f"max_pairs must be a positive int or None, got {max_pairs!r}.")
    level = logging.INFO if verbose else logging.DEBUG
    train = task.labels(db, "train")
    val = task.labels(db, "val")
    if len(train) == 0:
        raise SchemaError(f"Task {task.name!r} has no training rows.")
    last = pd.Timestamp(max(train["timestamp"].max(), val["timestamp"].max() if len(val) else train["timestamp"].max()))
    cut = db.upto(last)
    entries: dict[str, float] = {}
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    rng = np.random.default_rng(random_state)
    tr_s = _subsample(train, max_train_rows, rng)
    va_s = _subsample(val, max_val_rows, rng)

    def split(df):
        X = RelationalDataset(cut, task.entity_table, df[task.entity_col].to_numpy(), df["timestamp"].to_numpy())
        y = df[task.target_col].to_numpy()
        return X, (y.astype(np.float64) if task.task_type == "regression" else y)

    for comp in COMPONENTS:
        if comp not in components:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        if comp == "homophily":
            table = metapath_homophily(cut, task, labels=train, max_hops=max_hops, max_pairs=max_pairs,
                                       random_state=random_state, n_jobs=n_jobs, verbose=max(verbose - 1, 0))
            entries.update(_homophily_entries(table, task.task_type == "regression"))
        elif comp in ("path_affinity", "feature_affinity"):
            if len(va_s) == 0:
                raise SchemaError(f"Task {task.name!r} has no validation rows; the affinities need them.")
            (X_tr, y_tr), (X_va, y_va) = split(tr_s), split(va_s)
            if comp == "path_affinity":
                n_tr, n_va = path_rows
                X_tr, y_tr, X_va, y_va = X_tr[:n_tr], y_tr[:n_tr], X_va[:n_va], y_va[:n_va]
                entries.update(_path_affinity(X_tr, y_tr, X_va, y_va, task.task_type, random_state, n_jobs))
            else:
                entries.update(_feature_affinity(X_tr, y_tr, X_va, y_va, task.task_type, feature_learner,
                                                 model_path, random_state, n_jobs))
        elif comp == "temporal":
            entries.update(_temporal(train, val, task))
        else:
            entries.update(_scale(train, cut, task))
        seconds[comp] = time.perf_counter() - t0
        cpu[comp] = time.process_time() - c0
        logger.log(level, "task %s: %s in %.2fs", task.name, comp, seconds[comp])
    return TaskEmbedding({k: float(v) for k, v in entries.items()}, seconds, task.task_type, cpu)
