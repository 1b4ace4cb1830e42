"""Task embedding: DuckDB homophily against a pandas brute force, sampling, leakage, seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from skrel.data import Database, RelationalDataset, SchemaError, Task
from skrel.relatron import COMPONENTS, TaskEmbedding, embed_task, metapath_homophily, metapaths, task_embedding

T0 = pd.Timestamp("2021-01-01")
CUTOFFS_TRAIN = [T0 + pd.Timedelta(days=30 * k) for k in range(1, 6)]
CUTOFFS_VAL = [T0 + pd.Timedelta(days=30 * k) for k in range(6, 8)]
LAST_CUTOFF = CUTOFFS_VAL[-1]


def make_db(seed: int = 0, n_users: int = 14, n_orders: int = 70) -> Database:
    """users -> countries; users <- orders -> items; orders <- reviews -> tags; follows(users, users).

    Every path shape of :func:`metapaths` appears: entity -> parent <- entity, through a referenced
    row, two hops down then up, and a table with two foreign keys to the entity table. Times are
    on users (timed entity table), items (timed pivot), orders, reviews and follows; one order has
    a missing time (never visible).
    """
    rng = np.random.default_rng(seed)
    day = lambda n: T0 + pd.to_timedelta(rng.integers(-20, 200, n), "D")  # noqa: E731
    users = pd.DataFrame({"uid": np.arange(n_users) * 10, "country": rng.integers(0, 3, n_users),
                          "age": rng.normal(40, 10, n_users), "joined": day(n_users)})
    countries = pd.DataFrame({"cid": np.arange(3), "name": ["fr", "de", "uk"]})
    items = pd.DataFrame({"iid": np.arange(6), "price": rng.gamma(2.0, 5.0, 6), "listed": day(6)})
    orders = pd.DataFrame({"oid": np.arange(n_orders), "uid": rng.integers(0, n_users, n_orders) * 10,
                           "iid": rng.integers(0, 6, n_orders), "qty": rng.integers(1, 4, n_orders).astype(float),
                           "at": day(n_orders)})
    orders.loc[3, "at"] = pd.NaT
    reviews = pd.DataFrame({"rid": np.arange(40), "oid": rng.integers(0, n_orders, 40),
                            "tag": rng.integers(0, 4, 40), "stars": rng.integers(1, 6, 40).astype(float),
                            "at": day(40)})
    tags = pd.DataFrame({"tag": np.arange(4), "word": list("abcd")})
    follows = pd.DataFrame({"fid": np.arange(25), "src": rng.integers(0, n_users, 25) * 10,
                            "dst": rng.integers(0, n_users, 25) * 10, "at": day(25)})
    return Database(
        {"users": users, "countries": countries, "items": items, "orders": orders, "reviews": reviews,
         "tags": tags, "follows": follows},
        primary_keys={"users": "uid", "countries": "cid", "items": "iid", "orders": "oid", "reviews": "rid",
                      "tags": "tag", "follows": "fid"},
        foreign_keys={"users": {"country": "countries"}, "orders": {"uid": "users", "iid": "items"},
                      "reviews": {"oid": "orders", "tag": "tags"}, "follows": {"src": "users", "dst": "users"}},
        time_columns={"users": "joined", "items": "listed", "orders": "at", "reviews": "at", "follows": "at"},
    )


def make_task(task_type: str = "binary", seed: int = 0, n_users: int = 14) -> Task:
    """Supplied labels: every user at every cutoff, with some rows dropped."""
    rng = np.random.default_rng(seed + 100)

    def labels(cutoffs):
        df = pd.DataFrame(list(itertools.product(cutoffs, np.arange(n_users) * 10)), columns=["timestamp", "uid"])
        df = df[rng.random(len(df)) < 0.8].reset_index(drop=True)
        if task_type == "binary":
            df["y"] = rng.integers(0, 2, len(df))
        elif task_type == "multiclass":
            df["y"] = rng.integers(0, 3, len(df))
        else:
            df["y"] = np.round(rng.normal(0, 1, len(df)), 1)  # ties, as in real targets
        return df

    tables = {"train": labels(CUTOFFS_TRAIN), "val": labels(CUTOFFS_VAL), "test": labels([LAST_CUTOFF])}
    return Task(name=f"toy-{task_type}", entity_table="users", entity_col="uid", target_col="y",
                task_type=task_type, window=pd.Timedelta(days=30), tables=tables)


# --------------------------------------------------------------------------- brute force in pandas


def _timed(db: Database, name: str, df: pd.DataFrame, alias: str) -> pd.DataFrame:
    """Drop rows with a missing time; add the row's time (or -inf) as column ``alias``."""
    tc = db[name].time_col
    if tc is None:
        return df.assign(**{alias: pd.Timestamp.min})
    df = df[df[tc].notna()]
    return df.assign(**{alias: df[tc]})


def brute_instances(db: Database, entity_table: str, path) -> pd.DataFrame:
    """Every instance of the meta-path as (e1, e2, tau): all rows on it, latest time tau."""
    pk = db[entity_table].pkey
    if path.direct is not None:
        table, c1, c2 = path.direct
        f = _timed(db, table, db[table].df, "_tf")
        x = _timed(db, entity_table, db[entity_table].df[[pk] + ([db[entity_table].time_col] or [])], "_tx")
        m = f.merge(x[[pk, "_tx"]].rename(columns={pk: c1, "_tx": "_t1"}), on=c1)
        m = m.merge(x[[pk, "_tx"]].rename(columns={pk: c2, "_tx": "_t2"}), on=c2)
        m["tau"] = m[["_tf", "_t1", "_t2"]].max(axis=1)
        one = pd.DataFrame({"e1": m[c1].to_numpy(), "e2": m[c2].to_numpy(), "tau": m["tau"].to_numpy()})
        both = pd.concat([one, one.rename(columns={"e1": "e2", "e2": "e1"})])
        return both[both.e1 != both.e2]
    cur = _timed(db, entity_table, db[entity_table].df, "_t0").rename(columns=lambda c: f"0.{c}")
    cur = cur.rename(columns={"0._t0": "_t0"})
    table = entity_table
    for k, (direction, src, col, dst) in enumerate(path.steps, start=1):
        nxt = _timed(db, dst, db[dst].df, f"_t{k}").rename(columns=lambda c: f"{k}.{c}")
        nxt = nxt.rename(columns={f"{k}._t{k}": f"_t{k}"})
        if direction == "down":
            cur = cur.merge(nxt, left_on=f"{k - 1}.{db[src].pkey}", right_on=f"{k}.{col}")
        else:
            cur = cur.merge(nxt, left_on=f"{k - 1}.{col}", right_on=f"{k}.{db[dst].pkey}")
        table = dst
    k = len(path.steps)
    half = pd.DataFrame({"e": cur[f"0.{pk}"].to_numpy(), "p": cur[f"{k}.{db[table].pkey}"].to_numpy(),
                         "tau": cur[[f"_t{j}" for j in range(k + 1)]].max(axis=1).to_numpy()})
    m = half.merge(half, on="p", suffixes=("1", "2"))
    m = m[m.e1 != m.e2]
    return pd.DataFrame({"e1": m.e1, "e2": m.e2, "tau": np.maximum(m.tau1.to_numpy(), m.tau2.to_numpy())})


def brute_homophily(db: Database, task: Task, path) -> dict:
    """Enumerate all pairs of training rows; neighbours when an instance is visible at both cutoffs."""
    lab = task.labels(db, "train").reset_index(drop=True)
    inst = brute_instances(db, task.entity_table, path)
    e, t, y = lab["uid"].to_numpy(), lab["timestamp"].to_numpy(), lab["y"].to_numpy()
    n = len(lab)
    taus = {k: g.to_numpy() for k, g in inst.groupby(["e1", "e2"])["tau"]}
    edges = []
    for i in range(n):
        for j in range(i + 1, n):
            if e[i] != e[j] and (taus.get((e[i], e[j]), np.array([], "M8[ns]")) <= min(t[i], t[j])).any():
                edges.append((i, j))
    if not edges:
        return {"edges": 0}
    E = np.array(edges)
    if task.task_type == "regression":
        qs = np.unique(np.quantile(y, [0.1 * k for k in range(1, 10)]))
        cls = np.searchsorted(qs, y, side="right")
    else:
        cls = y
    same = np.mean(cls[E[:, 0]] == cls[E[:, 1]])
    deg = np.bincount(E.ravel(), minlength=n).astype(float)
    a = sum((deg[cls == k].sum() / deg.sum()) ** 2 for k in np.unique(cls))
    out = {"edges": len(E), "h": same, "a": a, "adjusted": (same - a) / (1 - a)}
    if task.task_type == "regression":
        ends = np.concatenate([y[E[:, 0]], y[E[:, 1]]]).astype(float)
        other = np.concatenate([y[E[:, 1]], y[E[:, 0]]]).astype(float)
        out["pearson"] = np.corrcoef(ends, other)[0, 1]
    return out


# --------------------------------------------------------------------------- tests


def test_metapaths_cover_every_shape():
    names = [m.name for m in metapaths(make_db(), "users")]
    assert "users->users.country" in names  # entity -> parent <- entity
    assert "users<-orders.uid->orders.iid" in names  # through a referenced row
    assert "users<-orders.uid<-reviews.oid->reviews.tag" in names  # down twice, then up
    assert "users<-follows.dst=follows.src" in names  # two foreign keys to the entity table
    assert not any("->orders.uid" in n for n in names)  # never straight back
    assert "users<-follows.dst->follows.src" in names  # followed by the same user
    assert [m.name for m in metapaths(make_db(), "users", max_hops=1)] == [
        "users->users.country", "users<-follows.dst=follows.src"]


@pytest.mark.parametrize("task_type", ["binary", "multiclass", "regression"])
def test_duckdb_equals_brute_force(task_type):
    db, task = make_db(), make_task(task_type)
    table = metapath_homophily(db, task, max_pairs=None)
    paths = metapaths(db, "users")
    assert list(table.index) == [m.name for m in paths]
    checked = 0
    for path in paths:
        ref = brute_homophily(db, task, path)
        row = table.loc[path.name]
        assert row["edges"] == ref["edges"], path.name
        if ref["edges"] == 0:
            continue
        checked += 1
        for key in ("h", "a", "adjusted") + (("pearson",) if task_type == "regression" else ()):
            assert row[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-12), (path.name, key)
            assert row[f"{key}_se"] == 0.0
        assert row["sample_rate"] == 1.0
    assert checked >= 4


def test_sampling_estimates_within_standard_errors():
    db, task = make_db(n_users=300, n_orders=3000), make_task("binary", n_users=300)
    exact = metapath_homophily(db, task, max_pairs=None)
    for seed in range(3):
        est = metapath_homophily(db, task, max_pairs=5000, random_state=seed)
        sampled = est[est.sample_rate < 1]
        assert len(sampled) >= 2
        assert (sampled["h_se"] > 0).all()
        z = (sampled["h"] - exact.loc[sampled.index, "h"]).abs() / sampled["h_se"]
        assert (z < 5).all(), z
        rel = (sampled["edges"] - exact.loc[sampled.index, "edges"]).abs() / exact.loc[sampled.index, "edges"]
        assert (rel < 0.8).all()


def _community_db(q: float, seed: int):
    """Entities join teams (a timed membership table); a label equals its team's with probability q."""
    rng = np.random.default_rng(seed)
    n, teams = 120, 6
    team = rng.integers(0, teams, n)
    member = pd.DataFrame({"mid": np.arange(n), "eid": np.arange(n), "team": team,
                           "at": T0 + pd.to_timedelta(rng.integers(0, 20, n), "D")})
    db = Database({"ents": pd.DataFrame({"eid": np.arange(n)}), "teams": pd.DataFrame({"team": np.arange(teams)}),
                   "member": member},
                  primary_keys={"ents": "eid", "teams": "team", "member": "mid"},
                  foreign_keys={"member": {"eid": "ents", "team": "teams"}}, time_columns={"member": "at"})
    team_label = rng.integers(0, 2, teams)
    rows = []
    for t in CUTOFFS_TRAIN[:3]:
        keep = rng.random(n) < q
        y = np.where(keep, team_label[team], rng.integers(0, 2, n))
        rows.append(pd.DataFrame({"timestamp": t, "eid": np.arange(n), "y": y}))
    train = pd.concat(rows, ignore_index=True)
    task = Task(name="community", entity_table="ents", entity_col="eid", target_col="y", task_type="binary",
                window=pd.Timedelta(days=30), tables={"train": train, "val": train.iloc[:0], "test": train.iloc[:0]})
    return db, task


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adjusted_homophily_increases_with_planted_homophily(seed):
    levels = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    adj = []
    for q in levels:
        db, task = _community_db(q, seed)
        adj.append(metapath_homophily(db, task, max_pairs=None)["adjusted"].iloc[0])
    assert np.all(np.diff(adj) > 0), adj
    assert abs(adj[0]) < 0.1 and adj[-1] == pytest.approx(1.0)


def _future_rows(db: Database, seed: int) -> Database:
    """The same database plus rows dated after every cutoff, and rows after every cutoff changed."""
    rng = np.random.default_rng(seed)
    after = LAST_CUTOFF + pd.Timedelta(days=1)
    tables = {name: t.df.copy() for name, t in db.tables.items()}
    o = tables["orders"]
    late = o["at"] > LAST_CUTOFF
    o.loc[late, "qty"] = 99.0  # change rows dated after every cutoff
    o.loc[late, "iid"] = 0
    extra = pd.DataFrame({"oid": np.arange(1000, 1030), "uid": rng.integers(0, 14, 30) * 10,
                          "iid": rng.integers(0, 6, 30), "qty": 5.0,
                          "at": after + pd.to_timedelta(rng.integers(0, 100, 30), "D")})
    tables["orders"] = pd.concat([o, extra], ignore_index=True)
    tables["follows"] = pd.concat([tables["follows"], pd.DataFrame(
        {"fid": [900, 901], "src": [0, 10], "dst": [20, 30], "at": [after, after]})], ignore_index=True)
    tables["users"] = pd.concat([tables["users"], pd.DataFrame(
        {"uid": [990], "country": [1], "age": [1.0], "joined": [after]})], ignore_index=True)
    tables["reviews"] = pd.concat([tables["reviews"], pd.DataFrame(
        {"rid": [500], "oid": [1000], "tag": [2], "stars": [1.0], "at": [after]})], ignore_index=True)
    return Database(
        tables, primary_keys={n: t.pkey for n, t in db.tables.items()},
        foreign_keys={n: dict(t.fkeys) for n, t in db.tables.items() if t.fkeys},
        time_columns={n: t.time_col for n, t in db.tables.items() if t.time_col},
    )


FAST = ("homophily", "feature_affinity", "temporal", "scale")


def test_rows_after_every_cutoff_do_not_change_the_embedding():
    db, task = make_db(), make_task("binary")
    base = task_embedding(db, task, components=FAST)
    for seed in range(2):
        other = task_embedding(_future_rows(db, seed), task, components=FAST)
        assert dict(other) == dict(base)
    # ... while a change at or before a cutoff does change it.
    tables = {n: t.df.copy() for n, t in db.tables.items()}
    tables["orders"].loc[tables["orders"]["at"] <= CUTOFFS_TRAIN[0], "iid"] = 0
    changed = Database(tables, primary_keys={n: t.pkey for n, t in db.tables.items()},
                       foreign_keys={n: dict(t.fkeys) for n, t in db.tables.items() if t.fkeys},
                       time_columns={n: t.time_col for n, t in db.tables.items() if t.time_col})
    assert dict(task_embedding(changed, task, components=("homophily",))) != dict(
        task_embedding(db, task, components=("homophily",)))


@pytest.mark.slow
def test_path_affinity_ignores_rows_after_every_cutoff():
    db, task = make_db(), make_task("binary")
    base = task_embedding(db, task, components=("path_affinity",))
    assert set(base) >= {"path_affinity.rdl1", "path_affinity.rdl2", "path_affinity.rdl3"}
    assert dict(task_embedding(_future_rows(db, 0), task, components=("path_affinity",))) == dict(base)


def test_same_seed_same_embedding_and_flat_floats():
    db, task = make_db(n_users=300, n_orders=3000), make_task("regression", n_users=300)
    a = task_embedding(db, task, components=FAST, max_pairs=5000, random_state=3)
    b = task_embedding(db, task, components=FAST, max_pairs=5000, random_state=3)
    assert isinstance(a, TaskEmbedding)
    assert a.to_series().equals(b.to_series())  # bit-identical
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in dict(a).items())
    assert set(a.seconds) == set(FAST) and all(s >= 0 for s in a.seconds.values())
    assert any(v > 0 for k, v in a.items() if k.endswith(".h_se"))  # sampling was active
    c = task_embedding(db, task, components=("homophily",), max_pairs=5000, random_state=4)
    assert any(a[k] != c[k] for k in c if k.endswith(".h"))
    for key in ("homophily.adjusted.min", "homophily.pearson.weighted_mean", "temporal.autocorr_lag1",
                "temporal.val_entities_seen", "scale.log_train_rows", "feature_affinity.dfs2"):
        assert key in a


def test_temporal_and_scale_values():
    db, task = make_db(), make_task("binary")
    emb = task_embedding(db, task, components=("temporal", "scale"))
    train = task.labels(db, "train")
    assert emb["scale.log_train_rows"] == pytest.approx(np.log1p(len(train)))
    assert emb["scale.log_cutoffs"] == pytest.approx(np.log1p(5))
    assert emb["scale.log_tables"] == pytest.approx(np.log1p(7))
    # entities are labelled only once they exist (their own time <= cutoff): some users first appear at val
    val = task.labels(db, "val")
    val_users = pd.unique(val["uid"])
    assert emb["temporal.val_entities_seen"] == pytest.approx(np.isin(val_users, train["uid"].unique()).mean())
    assert emb["temporal.val_rows_seen"] == pytest.approx(val["uid"].isin(set(train["uid"])).mean())
    # lag-1 pairs by hand: the same user at consecutive training cutoffs.
    idx = {t: k for k, t in enumerate(CUTOFFS_TRAIN)}
    d = {(u, idx[pd.Timestamp(t)]): y for t, u, y in train[["timestamp", "uid", "y"]].itertuples(index=False)}
    pairs = [(y, d[(u, j + 1)]) for (u, j), y in d.items() if (u, j + 1) in d]
    a, b = np.array(pairs, dtype=float).T
    assert emb["temporal.autocorr_lag1_pairs"] == len(pairs)
    assert emb["temporal.autocorr_lag1"] == pytest.approx(np.corrcoef(a, b)[0, 1])


def test_errors_name_the_problem():
    db, task = make_db(), make_task("binary")
    with pytest.raises(ValueError, match="Unknown component"):
        task_embedding(db, task, components=("homophily", "nope"))
    with pytest.raises(SchemaError, match="'nope'"):
        metapaths(db, "nope")
    with pytest.raises(ValueError, match="max_pairs"):
        task_embedding(db, task, max_pairs=0)
    assert set(COMPONENTS) == {"homophily", "path_affinity", "feature_affinity", "temporal", "scale"}


def test_user_data_not_mutated():
    db, task = make_db(), make_task("regression")
    before = {n: t.df.copy() for n, t in db.tables.items()}
    labels = {k: v.copy() for k, v in task.tables.items()}
    task_embedding(db, task, components=FAST, max_pairs=50)
    for n, t in db.tables.items():
        pd.testing.assert_frame_equal(t.df, before[n])
    for k, v in task.tables.items():
        pd.testing.assert_frame_equal(v, labels[k])


def test_feature_learner_and_model_path():
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    db, task = make_db(n_users=60, n_orders=400), make_task("binary", n_users=60)
    learner = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=200))
    emb = task_embedding(db, task, components=("feature_affinity",), feature_learner=learner)
    assert 0.0 <= emb["feature_affinity.dfs1"] <= 1.0 and 0.0 <= emb["feature_affinity.dfs2"] <= 1.0
    with pytest.raises(FileNotFoundError, match="no-such-checkpoint"):
        task_embedding(db, task, components=("feature_affinity",), model_path="/no-such-checkpoint.ckpt")


@pytest.mark.parametrize("task_type", ["multiclass", "regression"])
def test_feature_affinity_scores_every_task_type(task_type):
    db, task = make_db(n_users=60, n_orders=400), make_task(task_type, n_users=60)
    emb = task_embedding(db, task, components=("feature_affinity",))
    for d in (1, 2):
        v = emb[f"feature_affinity.dfs{d}"]
        assert np.isfinite(v) and v <= 1.0
        if task_type == "multiclass":
            assert v >= 0.0  # macro one-vs-rest ROC AUC


# --------------------------------------------------------------------------- the entry point over arrays


def _arrays(db, task, split):
    labels = task.labels(db, split)
    return RelationalDataset(db, task.entity_table, labels["uid"].to_numpy(), labels["timestamp"].to_numpy()), \
        labels["y"].to_numpy()


@pytest.mark.parametrize("task_type", ["binary", "regression"])
def test_embed_task_over_arrays_is_the_task_embedding_whatever_the_row_order(task_type):
    db, task = make_db(), make_task(task_type)
    X, y = _arrays(db, task, "train")
    X_val, y_val = _arrays(db, task, "val")
    expected = task_embedding(db, task, components=FAST)
    emb = embed_task(X, y, X_val, y_val, task_type=task_type, components=FAST)
    assert emb.to_series().equals(expected.to_series())
    shuffle, shuffle_val = np.random.default_rng(0).permutation(len(X)), np.random.default_rng(1).permutation(len(X_val))
    again = embed_task(X[shuffle], y[shuffle], X_val[shuffle_val], y_val[shuffle_val], task_type=task_type,
                       components=FAST)
    assert again.to_series().equals(expected.to_series())
    # without validation rows: the components that need none, the validation statistics NaN
    alone = embed_task(X, y, task_type=task_type, components=("temporal", "scale"))
    assert alone["scale.log_train_rows"] == expected["scale.log_train_rows"]
    assert np.isnan(alone["temporal.val_entities_seen"])


def test_embed_task_errors_name_the_argument():
    db, task = make_db(), make_task("binary")
    X, y = _arrays(db, task, "train")
    X_val, y_val = _arrays(db, task, "val")
    with pytest.raises(ValueError, match=r"\['feature_affinity'\].*X_val and y_val"):
        embed_task(X, y, task_type="binary", components=("scale", "feature_affinity"))
    with pytest.raises(ValueError, match="task_type"):
        embed_task(X, y, X_val, y_val, task_type="auto", components=("scale",))
    with pytest.raises(ValueError, match="y must be 1-D"):
        embed_task(X, y[:-1], task_type="binary", components=("scale",))
    with pytest.raises(ValueError, match="missing label"):
        embed_task(X, np.where(np.arange(len(y)) == 3, np.nan, y), task_type="binary", components=("scale",))
    other = RelationalDataset(db, "countries", [0, 1], [LAST_CUTOFF, LAST_CUTOFF])
    with pytest.raises(ValueError, match="different tables"):
        embed_task(X, y, other, np.array([0, 1]), task_type="binary", components=("scale",))
    with pytest.raises(ValueError, match="Unknown component"):
        embed_task(X, y, task_type="binary", components=("nope",))


def test_components_are_chosen_by_name_from_the_registry():
    from skrel.relatron.embedding._registry import REGISTRY

    assert tuple(REGISTRY) == COMPONENTS
    assert {n for n, c in REGISTRY.items() if c.needs_validation} == {"path_affinity", "feature_affinity"}
    db, task = make_db(), make_task("binary")
    emb = task_embedding(db, task, components=("scale", "temporal"))  # run in the registry's order
    assert list(emb.seconds) == ["temporal", "scale"]
    assert {k.split(".")[0] for k in emb} == {"temporal", "scale"}


def test_feature_affinity_of_a_multiclass_task_with_two_training_classes():
    """A multiclass task whose training rows hold two of its classes: the learners give two
    probability columns and the score is their ROC AUC (the embedding used to raise here)."""
    db, task = make_db(n_users=60, n_orders=400), make_task("multiclass", n_users=60)
    X, y = _arrays(db, task, "train")
    X_val, y_val = _arrays(db, task, "val")
    y, y_val = np.minimum(y, 1), y_val.copy()  # training classes {0, 1}; validation rows keep class 2
    emb = embed_task(X, y, X_val, y_val, task_type="multiclass", components=("feature_affinity",))
    for d in (1, 2):
        assert 0.0 <= emb[f"feature_affinity.dfs{d}"] <= 1.0
