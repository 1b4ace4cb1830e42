"""The wide league generator: sizes, degenerate columns, seeding, labels and where the signal lies."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from skrel.datasets import DATASETS, load_dataset, make_wide
from skrel.datasets.wide import WIDE_SIGNAL_COLUMNS

SMALL = dict(scale=0.05)


@pytest.fixture(scope="module")
def small():
    return make_wide(**SMALL)


def _feature_columns(tab):
    keys = {tab.pkey, tab.time_col, *tab.fkeys}
    return [c for c in tab.df.columns if c not in keys]


def test_schema_and_sizes(small):
    db, tasks = small
    assert sorted(db.table_names) == sorted(
        ["players", "teams", "venues", "games", "appearances", "injuries", "player_seasons", "team_seasons"]
    )
    assert db["players"].time_col is None and db["teams"].time_col is None and db["venues"].time_col is None
    assert all(db[t].time_col == "time" for t in ("games", "appearances", "injuries", "player_seasons"))
    assert db["games"].fkeys == {"home_team_id": "teams", "away_team_id": "teams", "venue_id": "venues"}
    assert sum(len(_feature_columns(db[t])) for t in db.table_names) == 160
    # scale multiplies the row counts: 1,000 players, 40 teams and 23,000 games at scale 1.
    assert len(db["players"]) == 50 and len(db["teams"]) == 2 and len(db["games"]) == 1150
    assert len(db["appearances"]) == 22 * 1150 == max(len(db[t]) for t in db.table_names)
    # 11 distinct players of each side's team per game, at the game's time.
    app = db["appearances"].df.merge(db["games"].df, on="game_id", suffixes=("", "_g"))
    assert (app["time"] == app["time_g"]).all()
    team = db["players"].df.set_index("player_id").loc[app["player_id"], "team_id"].to_numpy()
    assert ((team == app["home_team_id"].to_numpy()) | (team == app["away_team_id"].to_numpy())).all()
    assert not app.duplicated(["game_id", "player_id"]).any()
    # Each appearance references its player's season row, dated at the start of that season.
    ps = db["player_seasons"].df.set_index("player_season_id").loc[app["player_season_id"]]
    assert (ps["player_id"].to_numpy() == app["player_id"].to_numpy()).all()
    assert (ps["year"].to_numpy() == app["time"].dt.year.to_numpy()).all()
    assert (ps["time"].to_numpy() <= app["time"].to_numpy()).all()
    assert db["appearances"].fkeys["player_season_id"] == "player_seasons"
    assert set(tasks) == {"player-form", "player-score", "player-injury"}
    assert {t.task_type for t in tasks.values()} == {"binary", "regression"}


def test_n_entities_is_honoured():
    db, _ = make_wide(n_entities=300, scale=0.2)
    assert len(db["players"]) == 60 and len(db["teams"]) == 5  # not 8: rosters of at least 12
    counts = db["players"].df["team_id"].value_counts()
    assert counts.min() >= 12 and len(db["appearances"]) == 22 * 4_600


def test_column_count_knob():
    db, _ = make_wide(scale=0.02, n_columns=50)
    assert sum(len(_feature_columns(db[t])) for t in db.table_names) == 50
    db, _ = make_wide(scale=0.02, n_columns=500)
    assert sum(len(_feature_columns(db[t])) for t in db.table_names) == 500
    widths = [len(_feature_columns(db[t])) for t in ("player_seasons", "team_seasons", "appearances")]
    assert min(widths) > 100
    with pytest.raises(ValueError, match="n_columns"):
        make_wide(n_columns=10)
    with pytest.raises(ValueError, match="scale"):
        make_wide(scale=0)


def test_degenerate_columns(small):
    db, _ = small
    players, app = db["players"].df, db["appearances"].df
    assert players["notes"].isna().all()
    assert players["active"].nunique() == 1 and app["const_zero"].nunique() == 1
    assert np.corrcoef(app["form"], app["form_pct"])[0, 1] > 0.999
    np.testing.assert_allclose(app["seconds"], 60 * app["minutes"], rtol=1e-6)
    assert app["boot_model"].nunique() > 200 and isinstance(app["boot_model"].dtype, pd.CategoricalDtype)
    assert players["agent"].nunique() >= 10
    assert app["m_001"].dtype == np.float32 and app["m_007"].isna().mean() > 0.05


def test_same_seed_same_tables():
    a, ta = make_wide(scale=0.02, random_state=5)
    b, _ = make_wide(scale=0.02, random_state=5)
    c, _ = make_wide(scale=0.02, random_state=6)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    for name in a.table_names:
        pd.testing.assert_frame_equal(a[name].df, b[name].df)


def test_label_counts_match_an_independent_count(small):
    db, tasks = small
    app, inj = db["appearances"].df, db["injuries"].df
    task = tasks["player-form"]
    cut = task.cutoffs(db, "train")
    assert len(cut) >= 100
    labels = task.labels(db, "train")
    # One row per (cutoff, player) with an appearance in (t, t + 28 days]: count with numpy.
    times = app["time"].to_numpy()
    expected = 0
    for t in cut:
        inside = (times > t.to_datetime64()) & (times <= (t + task.window).to_datetime64())
        expected += app.loc[inside, "player_id"].nunique()
    assert len(labels) == expected
    # The binary label is the sign of the regression target.
    score = tasks["player-score"].labels(db, "train")
    pd.testing.assert_series_equal(labels["good_form"], (score["score"] > 0).astype(labels["good_form"].dtype),
                                   check_names=False)
    # Zero-inflated task: every player at every cutoff, mostly zero, sums of days_out otherwise.
    inj_task = tasks["player-injury"]
    y = inj_task.labels(db, "train")
    assert len(y) == len(cut) * len(db["players"])
    assert 0.8 < (y["injury_days"] == 0).mean() < 0.97
    t0 = cut[len(cut) // 2]
    inside = (inj["time"] > t0) & (inj["time"] <= t0 + inj_task.window)
    want = inj[inside].groupby("player_id")["days_out"].sum()
    got = y[y["timestamp"] == t0].set_index("player_id")["injury_days"]
    pd.testing.assert_series_equal(got[got > 0].sort_index(), want.astype(np.float64).sort_index(),
                                   check_names=False, check_index_type=False)
    X, yy = task.split(db, "val")
    assert len(X) == len(yy) > 0 and X.db.max_time <= task.test_timestamp


def _past_means(db, task, columns, days=56):
    """Per (cutoff, player) label row: the mean of each appearance column over the last ``days``."""
    labels = task.labels(db, "train")
    app = db["appearances"].df[["player_id", "time", *columns]]
    out = []
    for t, rows in labels.groupby("timestamp", sort=False):
        win = app[(app["time"] <= t) & (app["time"] > t - pd.Timedelta(days=days))]
        means = win.groupby("player_id")[columns].mean()
        out.append(means.reindex(rows["player_id"]).to_numpy())
    return np.vstack(out), labels


def test_label_follows_the_signal_columns(small):
    lightgbm = pytest.importorskip("lightgbm")
    from sklearn.metrics import roc_auc_score

    db, tasks = small
    task = tasks["player-form"]
    assert WIDE_SIGNAL_COLUMNS["player-form"] == ("appearances.form", "appearances.pace", "players.talent")
    signal, labels = _past_means(db, task, ["form", "pace"])
    noise, _ = _past_means(db, task, ["m_001", "m_004", "minutes"])
    players = db["players"].df.set_index("player_id")
    talent = players.loc[labels["player_id"], "talent"].to_numpy()[:, None]
    y = labels["good_form"].to_numpy()
    half = labels["timestamp"] < labels["timestamp"].quantile(0.7)

    def auc(X):
        model = lightgbm.LGBMClassifier(n_estimators=60, num_leaves=7, verbose=-1, random_state=0, n_jobs=1)
        model.fit(X[half], y[half])
        return roc_auc_score(y[~half], model.predict_proba(X[~half])[:, 1])

    # (Not a static noise column such as height: it names the player, and so reveals his talent.)
    good, bad = auc(np.hstack([signal, talent])), auc(noise)
    assert good > 0.75 and bad < 0.58, (good, bad)
    assert auc(signal) < good  # talent adds to the windowed means


def test_injury_days_follow_past_injuries(small):
    db, tasks = small
    task = tasks["player-injury"]
    assert task.metric == "mae" and task.task_type == "regression"
    y = task.labels(db, "train")
    inj = db["injuries"].df
    past = []
    for t, rows in y.groupby("timestamp", sort=False):
        mean = inj[inj["time"] <= t].groupby("player_id")["days_out"].mean()
        past.append(mean.reindex(rows["player_id"]).to_numpy())
    past = np.concatenate(past)
    target = y["injury_days"].to_numpy()
    ok = (target > 0) & ~np.isnan(past)
    # Non-zero targets are longer for players whose past injuries were longer (hidden fragility).
    assert ok.sum() > 200
    assert np.corrcoef(np.log(past[ok]), np.log(target[ok]))[0, 1] > 0.4


def test_registered():
    assert "wide" in DATASETS
    db, tasks = load_dataset("wide", scale=0.01, n_columns=60)
    assert len(db["players"]) == 24 and "player-injury" in tasks
    with pytest.raises(ValueError, match="takes no path"):
        load_dataset("wide", path="/tmp")


@pytest.mark.slow
def test_default_size_meets_issue_10():
    start = time.perf_counter()
    db, tasks = make_wide()
    seconds = time.perf_counter() - start
    rows = sum(len(db[t]) for t in db.table_names)
    assert len(db.table_names) >= 8 and rows > 500_000 and seconds < 20
    assert sum(len(_feature_columns(db[t])) for t in db.table_names) >= 150
    assert db["players"].time_col is None
    assert 20 <= len(_feature_columns(db["player_seasons"])) <= 45
    assert 20 <= len(_feature_columns(db["team_seasons"])) <= 45
    assert len(tasks["player-form"].cutoffs(db, "train")) >= 100
    assert tasks["player-form"].sizes(db)["train"] > 100_000
