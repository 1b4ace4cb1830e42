"""The synthetic generator: seeding, sizes, groups, the homophily knob and point-in-time labels."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from skrel.datasets import make_synthetic

SMALL = dict(n_entities=300, n_rows=6000)


def test_same_seed_same_data_different_seed_different_data():
    a, ta = make_synthetic(**SMALL, random_state=3)
    b, tb = make_synthetic(**SMALL, random_state=3)
    c, _ = make_synthetic(**SMALL, random_state=4)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    pd.testing.assert_frame_equal(ta["synthetic"].labels(a, "val"), tb["synthetic"].labels(b, "val"))


@pytest.mark.parametrize("depth,n_tables", [(1, 4), (2, 5), (3, 8)])
def test_sizes_honoured(depth, n_tables):
    db, tasks = make_synthetic(n_entities=200, n_rows=4000, depth=depth, n_tables=n_tables)
    assert len(db.table_names) == n_tables
    assert len(db["entities"]) == 200
    assert len(db["groups"]) == 10 and db["entities"].fkeys == {"group_id": "groups"}
    chain = ["events", "sub_events", "subsub_events"][:depth]
    assert [t for t in db.table_names if t.endswith("events")] == chain
    assert max(len(db[t]) for t in db.table_names) == len(db[chain[-1]]) == 4000
    assert "value" in db[chain[-1]].df.columns and db[chain[-1]].fkeys["type_id"] == "event_types"
    dims = sorted(t for t in db.table_names if t.startswith("dim_"))
    assert dims == [f"dim_{j}" for j in range(1, n_tables - depth - 2)]
    # Each level references the one above it; the chain ends at entities.
    assert db["events"].fkeys["entity_id"] == "entities"
    for k in range(1, depth):
        assert db[chain[k]].fkeys[db[chain[k - 1]].pkey] == chain[k - 1]
        child, parent = db[chain[k]].df, db[chain[k - 1]].df.set_index(db[chain[k - 1]].pkey)
        assert (child["time"].to_numpy() >= parent.loc[child[db[chain[k - 1]].pkey], "time"].to_numpy()).all()
    assert all(n > 0 for n in tasks["synthetic"].sizes(db).values())


def test_groups_are_balanced_static_and_seeded():
    db, _ = make_synthetic(n_entities=205, n_rows=2000, random_state=1)
    groups, entities = db["groups"], db["entities"].df
    assert groups.time_col is None and groups.pkey == "group_id"
    assert list(groups.df.columns) == ["group_id", "budget", "region"]
    # 205 entities in 205 // 20 = 10 groups of 20 or 21 (a balanced random partition).
    sizes = entities["group_id"].value_counts()
    assert len(groups.df) == 10 and sorted(sizes.index) == list(range(10))
    assert sizes.min() == 20 and sizes.max() == 21
    assert not (entities["group_id"].to_numpy() == np.arange(205) % 10).all()
    # One entity still gets one group.
    assert len(make_synthetic(n_entities=1, n_rows=20)[0]["groups"]) == 1


def _latent_corr(db, task, same_group):
    """Correlation of training labels of entity pairs at the same cutoff, in the same group or not."""
    lab = task.labels(db, "train").merge(db["entities"].df[["entity_id", "group_id"]], on="entity_id")
    pairs = lab.merge(lab, on="timestamp", suffixes=("_1", "_2"))
    pairs = pairs[pairs["entity_id_1"] < pairs["entity_id_2"]]
    pairs = pairs[(pairs["group_id_1"] == pairs["group_id_2"]) == same_group]
    return np.corrcoef(pairs["label_1"], pairs["label_2"])[0, 1]


def test_homophily_correlates_the_labels_of_one_group():
    corr = {}
    for h in (0.0, 0.5, 1.0):
        db, tasks = make_synthetic(n_entities=400, n_rows=16000, homophily=h, task_type="regression", random_state=0)
        corr[h] = (_latent_corr(db, tasks["synthetic"], True), _latent_corr(db, tasks["synthetic"], False))
    # Same cutoff, same group: label correlation rises with the knob (latent correlation h, diluted
    # by the leaf noise); across groups it stays at zero at every level.
    assert abs(corr[0.0][0]) < 0.05
    assert 0.3 < corr[0.5][0] < 0.6 < 0.8 < corr[1.0][0]
    assert all(abs(c[1]) < 0.02 for c in corr.values())


def _past_features(db, task, split="train", days=60):
    leaf = db["sub_events"].df.merge(db["events"].df[["event_id", "entity_id"]], on="event_id")
    leaf = leaf.merge(db["event_types"].df[["type_id", "polarity"]], on="type_id")
    out = []
    for t, g in task.labels(db, split).groupby("timestamp"):
        past = leaf[(leaf["time"] <= t) & (leaf["time"] > t - pd.Timedelta(days=days))]
        mean_value = past.groupby("entity_id")["value"].mean()
        mean_signed = (past["value"] * past["polarity"]).groupby(past["entity_id"]).mean()
        out.append(g.assign(mean_value=g["entity_id"].map(mean_value), mean_signed=g["entity_id"].map(mean_signed)))
    return pd.concat(out).dropna()


def test_homophily_moves_signal_from_linear_aggregates_to_interactions():
    corr = {}
    for h in (1.0, 0.5, 0.0):
        db, tasks = make_synthetic(n_entities=1000, n_rows=20000, homophily=h, random_state=0)
        d = _past_features(db, tasks["synthetic"])
        corr[h] = (np.corrcoef(d["label"], d["mean_value"])[0, 1], np.corrcoef(d["label"], d["mean_signed"])[0, 1])
    assert corr[1.0][0] > 0.3  # the mean of value over the recent past predicts the label
    assert abs(corr[0.0][0]) < 0.06  # ... and is ~useless at homophily 0
    assert corr[0.0][1] > 0.3  # where the per-polarity interaction carries the signal
    assert corr[0.0][0] < corr[0.5][0] < corr[1.0][0]  # and the knob interpolates
    assert corr[1.0][1] < corr[0.5][1] < corr[0.0][1]


def test_leaf_rows_come_in_balanced_pairs():
    db, _ = make_synthetic(**SMALL, homophily=0.0)
    leaf = db["sub_events"].df.merge(db["event_types"].df[["type_id", "polarity"]], on="type_id")
    groups = leaf.groupby(["event_id", "time"])["polarity"]
    # Every (parent, time) group holds as many positive as negative rows: any time window sees
    # a mean polarity of exactly 0, so aggregates of value alone cannot tell z from -z.
    assert (groups.sum() == 0).all() and (groups.size() % 2 == 0).all()
    assert leaf["polarity"].sum() == 0


def test_labels_are_point_in_time():
    db, tasks = make_synthetic(**SMALL, task_type="regression", homophily=0.3)
    task = tasks["synthetic"]
    t = task.cutoffs(db, "val")[1]
    cut_labels = task.make_labels(db, [t])
    # Rows after the window change nothing; rows inside it define the label.
    leaf = db["sub_events"].df.merge(db["events"].df[["event_id", "entity_id"]], on="event_id")
    leaf = leaf.merge(db["event_types"].df, on="type_id")
    w = leaf[(leaf["time"] > t) & (leaf["time"] <= t + task.window)]
    want = (w["value"] * (0.3 + 0.7 * w["polarity"])).groupby(w["entity_id"]).mean().sort_index()
    got = cut_labels.set_index("entity_id")["label"].sort_index()
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy())
    assert (got.index == want.index).all()


@pytest.mark.parametrize("task_type,values", [("binary", {0, 1}), ("multiclass", {0, 1, 2})])
def test_task_types(task_type, values):
    db, tasks = make_synthetic(**SMALL, task_type=task_type)
    task = tasks["synthetic"]
    assert task.task_type == task_type
    assert set(task.labels(db, "train")["label"].unique()) == values


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(homophily=1.5), "homophily"),
        (dict(homophily="high"), "homophily"),
        (dict(depth=3, n_tables=5), "n_tables"),
        (dict(depth=2, n_tables=4), "groups"),
        (dict(n_rows=0), "n_rows"),
        (dict(n_rows=1001), "even"),
        (dict(n_entities=2.0), "n_entities"),
        (dict(task_type="ranking"), "task_type"),
        (dict(random_state=-1), "random_state"),
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic(**kwargs)


@pytest.mark.slow
def test_scales_to_a_million_rows():
    start = time.perf_counter()
    db, _ = make_synthetic(n_entities=100_000, n_rows=1_000_000)
    assert len(db["sub_events"]) == 1_000_000
    assert time.perf_counter() - start < 15
