"""A seeded wide and long synthetic relational database, with known signal columns.

``make_wide`` stands in for the real databases skrel meets outside rel-f1: many tables, wide
season-level tables, hundreds of thousands of event rows, a static entity table, degenerate
columns, and a label that depends on a handful of known columns only, so that feature pruning
and memory planning can be judged.

Schema (a sports league; ``->`` is a foreign key)::

    players (static entity table: no time column)      -> teams -> venues (static)
    games        (time)   home_team_id, away_team_id -> teams; venue_id -> venues
    appearances  (time)   player_id -> players, game_id -> games,     (the largest table)
                          player_season_id -> player_seasons
    injuries     (time)   player_id -> players
    player_seasons (time = start of the season)  player_id -> players, team_id -> teams
    team_seasons   (time = start of the season)  team_id -> teams

A season is a calendar year; a season row holds the registration, contract and pre-season
ratings of a player (a team) for the season, so it is dated at the season's start, and each
appearance references its player's season row: ``players <- player_seasons <- appearances`` is
a two-hop chain, where depth-2 deep feature synthesis stacks aggregates of aggregates of the
wide tables (about 6,800 features with ``DFSEstimator``'s defaults, depth 2
and windows of 30, 90 and 365 days; about 730 at depth 1 without windows).

Sizes at ``scale=1``: 1,000 players, 40 teams, 60 venues, 23,000 games, 506,000 appearances
(11 players of each side of each game), about 14,000 injuries, 10,000 player seasons and 400
team seasons: about 554,000 rows. ``scale`` multiplies every row count (the time span stays
ten years, so the number of cutoffs does not change); ``scale=19.76`` puts 10^7 rows in
``appearances``. Small scales keep at least 24 players, 2 teams, 2 venues and 10 games, and
every team at least 12 players (lineups are 11).

Columns. ``n_columns`` (default 160) counts the columns that are neither keys nor times, over
all tables; 42 of them are fixed (below) and the rest are noise columns split between the wide
tables ``player_seasons`` (``s_001``...), ``team_seasons`` (``t_001``...) and ``appearances``
(``m_001``...), 36 / 30 / 34 percent. Numeric columns are float32. Noise columns follow a fixed
pattern by index: every fifth is a count, every seventh has 10% missing values, the second is a
near-duplicate of the first, the third is constant. Degenerate columns on purpose:

- constant: ``players.active``, ``teams.league``, ``appearances.const_zero`` and the third noise
  column of each wide table;
- all missing: ``players.notes`` (float, every value NaN);
- duplicates: ``appearances.form_pct`` (a near-duplicate of ``form``), ``appearances.seconds``
  (exactly ``60 * minutes``), ``players.talent_rating`` (``talent`` rounded),
  ``injuries.games_missed`` (about ``days_out / 3``), the second noise column of each wide table;
- high-cardinality categoricals: ``players.agent`` (one level per 4 players),
  ``appearances.boot_model`` (5,000 levels at scale 1) and ``games.referee``;
- ``games`` references ``teams`` through two foreign keys.

Categorical columns are pandas ``category`` columns of strings.

Signal. Every player has two hidden latent states ``z1`` and ``z2`` that drift week by week
(AR(1), unit variance, weekly autocorrelation 0.95) and a hidden fragility ``f ~ N(0, 1)``.
An appearance in week ``w`` has ``form = z1[w] + e`` and ``pace = z2[w] + e'`` (``e, e' ~
N(0, 1)``); ``players.talent ~ N(0, 1)`` is visible and static. Injuries arrive at a rate
proportional to ``exp(0.7 f)`` and last ``days_out ~ exp(1.5 + 0.6 f + 0.5 e)`` days. No other
column carries information about anything, apart from the copies listed above
(``WIDE_SIGNAL_COLUMNS`` names the signal columns of each task).

Tasks (window 28 days; val 2019-01-01, test 2019-07-01; the data span 2010-01-01 to
2020-01-01, so about 117 training cutoffs):

- ``player-form`` (binary, ROC AUC): over a player's appearances in ``(t, t + 28 days]``,
  ``1`` if ``mean(form + pace) + talent > 0``. Only players with an appearance in the window
  get a row. The past predicts it through recent windowed means of ``appearances.form`` and
  ``appearances.pace`` (``z`` drifts slowly) plus ``players.talent``; every other column is
  noise or a copy of these.
- ``player-score`` (regression, MAE): the same score ``mean(form + pace) + talent`` itself.
- ``player-injury`` (regression, MAE, zero-inflated): the total ``injuries.days_out`` of every
  player over ``(t, t + 28 days]``, 0 without an injury (about 90% of rows). Both the chance and
  the length of an injury follow the hidden fragility, which the player's past injuries reveal.

Every label is computed by ``label_sql`` from future rows of the database; nothing hidden enters
a label and skrel cuts every table at the cutoff for features.

Speed and memory: vectorised numpy throughout, float32 wherever values allow. The default size
takes 1.4 s (2.3 s on a loaded machine) and holds 116 MB of tables; the peak is about 430 MB
above the interpreter's, as ``Database`` copies its input. 10^7 rows in ``appearances``
(``scale=19.76``) took 89 s, plus 38 s for the training labels, and 8.3 GB peak with them, on a
2-core machine shared with other jobs (``benchmarks/scale.py``).
"""

from __future__ import annotations

import logging
import math
from numbers import Integral, Real

import numpy as np
import pandas as pd

from ..data import Database, Task

__all__ = ["make_wide", "WIDE_SIGNAL_COLUMNS"]

logger = logging.getLogger(__name__)

_START = np.datetime64("2010-01-01T00:00:00", "ns")
_SPAN_DAYS = 3652  # 2010-01-01 .. 2020-01-01
_YEARS = 10
_DAY_NS = 86_400 * 10**9
_WEEK_NS = 7 * _DAY_NS
_RHO = 0.95  # weekly autocorrelation of the latent states
_LINEUP = 11  # players per side per game
_WINDOW = pd.Timedelta(days=28)
_VAL = pd.Timestamp("2019-01-01")
_TEST = pd.Timestamp("2019-07-01")
_INJURY_RATE = 0.108  # injuries per player per 28 days (mean), about 10% non-zero labels
_N_FIXED = 42  # fixed (non-noise) feature columns over all tables
_MIN_COLUMNS = _N_FIXED + 3

#: The columns that carry the signal of each task (``table.column``); copies are listed apart.
WIDE_SIGNAL_COLUMNS = {
    "player-form": ("appearances.form", "appearances.pace", "players.talent"),
    "player-score": ("appearances.form", "appearances.pace", "players.talent"),
    "player-injury": ("injuries.days_out",),
}

_FORM_SQL = """
SELECT t.timestamp, a.player_id, {target}
FROM timestamps t
JOIN appearances a ON a."time" > t.timestamp AND a."time" <= t.timestamp + {{window}}
JOIN players p ON p.player_id = a.player_id
GROUP BY t.timestamp, a.player_id
"""

_INJURY_SQL = """
SELECT t.timestamp, p.player_id, COALESCE(SUM(i.days_out), 0) AS injury_days
FROM timestamps t
CROSS JOIN players p
LEFT JOIN injuries i ON i.player_id = p.player_id AND i."time" > t.timestamp AND i."time" <= t.timestamp + {window}
GROUP BY t.timestamp, p.player_id
"""

_SCORE = "AVG(a.form + a.pace + p.talent)"


def _check_int(name, value, low):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return int(value)


def _categorical(codes: np.ndarray, prefix: str, n_levels: int) -> pd.Categorical:
    width = len(str(max(n_levels - 1, 0)))
    levels = np.array([f"{prefix}{i:0{width}d}" for i in range(n_levels)], dtype=object)
    return pd.Categorical.from_codes(codes.astype(np.int32, copy=False), categories=levels)


def _choice_cat(rng, n: int, levels: list[str], p=None) -> pd.Categorical:
    codes = rng.choice(len(levels), size=n, p=p)
    return pd.Categorical.from_codes(codes.astype(np.int32), categories=np.array(levels, dtype=object))


def _noise_block(rng, n: int, k: int, prefix: str) -> dict[str, np.ndarray]:
    """``k`` float32 noise columns ``prefix001``...: counts, gaps, a near-duplicate, a constant."""
    out: dict[str, np.ndarray] = {}
    for j in range(k):
        name = f"{prefix}{j + 1:03d}"
        if j == 1:
            col = out[f"{prefix}001"] * np.float32(2.0) + rng.normal(0.0, 0.01, n).astype(np.float32)
        elif j == 2:
            col = np.ones(n, dtype=np.float32)
        elif j % 5 == 4:
            col = rng.poisson(1.0 + j % 4, n).astype(np.float32)
        else:
            col = rng.standard_normal(n, dtype=np.float32)
            col *= np.float32(1.0 + j % 3)
            col += np.float32(j % 11)
        if j % 7 == 6:
            col[rng.random(n) < 0.1] = np.nan
        out[name] = col
    return out


def _ar1(rng, n_weeks: int, n: int) -> np.ndarray:
    """An AR(1) process over weeks with unit variance, shape ``(n_weeks, n)``, float32."""
    z = rng.standard_normal((n_weeks, n), dtype=np.float32)
    s = np.float32(math.sqrt(1.0 - _RHO**2))
    for k in range(1, n_weeks):
        z[k] *= s
        z[k] += np.float32(_RHO) * z[k - 1]
    return z


def _lineups(rng, side_team: np.ndarray, n_teams: int, roster: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """For every game side, ``_LINEUP`` distinct players of its team; shape ``(n_sides * _LINEUP,)``.

    Player ``i`` plays for team ``i % n_teams``, so slot ``k`` of team ``t``'s roster is player
    ``t + k * n_teams``; slots past a team's roster size get an infinite key and are never drawn.
    """
    r_max = int(roster.max())
    slots = np.arange(r_max, dtype=np.int64)
    out = np.empty((len(side_team), _LINEUP), dtype=np.int64)
    for start in range(0, len(side_team), chunk):
        team = side_team[start : start + chunk]
        keys = rng.random((len(team), r_max), dtype=np.float32)
        keys[slots[None, :] >= roster[team][:, None]] = np.inf
        pick = np.argpartition(keys, _LINEUP - 1, axis=1)[:, :_LINEUP]
        pick.sort(axis=1)
        out[start : start + chunk] = team[:, None] + pick * n_teams
    return out.ravel()


def make_wide(
    n_entities: int = 1000,
    n_columns: int = 160,
    random_state: int = 0,
    scale: float = 1.0,
) -> tuple[Database, dict[str, Task]]:
    """Generate the wide, long synthetic league database and its three player tasks.

    Parameters
    ----------
    n_entities : int, default=1000
        Players (rows of the entity table ``players``) at ``scale=1``.
    n_columns : int, default=160
        Columns that are neither keys nor times, over all tables (at least 45). Columns beyond
        the 42 fixed ones are noise columns of the wide tables ``player_seasons``,
        ``team_seasons`` and ``appearances``.
    random_state : int, default=0
        Seed; the same seed (and sizes) gives identical tables.
    scale : float, default=1.0
        Multiplies every row count (players, teams, venues, games and so every event table);
        the time span and so the cutoffs stay the same.

    Returns
    -------
    db : Database
        Eight tables; see the module docstring for the schema and the signal.
    tasks : dict of str to Task
        ``"player-form"`` (binary), ``"player-score"`` (regression) and ``"player-injury"``
        (zero-inflated regression, MAE): entity table ``players``, window 28 days, val
        2019-01-01, test 2019-07-01.

    Examples
    --------
    >>> db, tasks = make_wide(scale=0.01)
    >>> sorted(db.table_names)  # doctest: +NORMALIZE_WHITESPACE
    ['appearances', 'games', 'injuries', 'player_seasons', 'players', 'team_seasons', 'teams',
     'venues']
    >>> db["players"].time_col is None
    True
    >>> sorted(tasks)
    ['player-form', 'player-injury', 'player-score']
    """
    n_entities = _check_int("n_entities", n_entities, 1)
    n_columns = _check_int("n_columns", n_columns, _MIN_COLUMNS)
    _check_int("random_state", random_state, 0)
    if not isinstance(scale, Real) or isinstance(scale, bool) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive float, got {scale!r}.")
    scale = float(scale)
    rng = np.random.default_rng(random_state)

    n_players = max(24, round(n_entities * scale))
    n_teams = max(2, min(round(40 * scale), n_players // 12))  # rosters of at least 12 for lineups of 11
    n_venues = max(2, round(60 * scale))
    n_games = max(10, round(23_000 * scale))
    n_weeks = _SPAN_DAYS // 7 + 1
    span_ns = _SPAN_DAYS * _DAY_NS

    n_noise = n_columns - _N_FIXED
    n_ps = max(1, round(0.36 * n_noise))
    n_ts = max(1, round(0.30 * n_noise))
    n_app = n_noise - n_ps - n_ts

    # ------------------------------------------------------------------ static tables
    venues = pd.DataFrame(
        {
            "venue_id": np.arange(n_venues, dtype=np.int64),
            "capacity": rng.gamma(4.0, 8000.0, n_venues).astype(np.float32),
            "altitude": rng.exponential(300.0, n_venues).astype(np.float32),
            "surface": _choice_cat(rng, n_venues, ["grass", "hybrid", "turf"]),
            "roof": _choice_cat(rng, n_venues, ["open", "closed"]),
        }
    )
    team_venue = rng.integers(0, n_venues, n_teams)
    teams = pd.DataFrame(
        {
            "team_id": np.arange(n_teams, dtype=np.int64),
            "venue_id": team_venue,
            "budget": rng.lognormal(4.0, 0.5, n_teams).astype(np.float32),
            "founded": rng.integers(1880, 2000, n_teams).astype(np.float32),
            "city": _categorical(rng.integers(0, 30, n_teams), "city_", 30),
            "conference": _choice_cat(rng, n_teams, ["east", "west"]),
            "colour": _choice_cat(rng, n_teams, ["red", "blue", "green", "white", "black"]),
            "league": pd.Categorical.from_codes(np.zeros(n_teams, np.int32), categories=["premier"]),
        }
    )
    talent = rng.standard_normal(n_players, dtype=np.float32)
    height = rng.normal(182.0, 7.0, n_players).astype(np.float32)
    n_agents = max(2, n_players // 4)
    players = pd.DataFrame(
        {
            "player_id": np.arange(n_players, dtype=np.int64),
            "team_id": np.arange(n_players, dtype=np.int64) % n_teams,
            "talent": talent,
            "talent_rating": np.round(50.0 + 10.0 * talent).astype(np.float32),
            "height": height,
            "weight": (0.9 * height - 85.0 + rng.normal(0.0, 6.0, n_players)).astype(np.float32),
            "birth_year": rng.integers(1975, 2000, n_players).astype(np.float32),
            "hand": _choice_cat(rng, n_players, ["right", "left"], p=[0.8, 0.2]),
            "position": _choice_cat(rng, n_players, ["goalkeeper", "defender", "midfielder", "forward", "utility"]),
            "nationality": _categorical(rng.integers(0, 40, n_players), "nation_", 40),
            "agent": _categorical(rng.integers(0, n_agents, n_players), "agent_", n_agents),
            "active": np.ones(n_players, dtype=np.float32),
            "notes": np.full(n_players, np.nan, dtype=np.float32),
        }
    )
    roster = np.bincount(players["team_id"].to_numpy(), minlength=n_teams)

    # ------------------------------------------------------------------ games and appearances
    game_offs = np.sort(rng.integers(0, span_ns, n_games))
    home = rng.integers(0, n_teams, n_games)
    away = (home + 1 + rng.integers(0, n_teams - 1, n_games)) % n_teams
    n_referees = max(20, round(400 * scale))
    games = pd.DataFrame(
        {
            "game_id": np.arange(n_games, dtype=np.int64),
            "home_team_id": home,
            "away_team_id": away,
            "venue_id": team_venue[home],
            "time": _START + game_offs.astype("timedelta64[ns]"),
            "attendance": rng.gamma(3.0, 9000.0, n_games).astype(np.float32),
            "temperature": rng.normal(15.0, 8.0, n_games).astype(np.float32),
            "weather": _choice_cat(rng, n_games, ["sun", "cloud", "rain", "wind", "snow"]),
            "home_score": rng.poisson(1.5, n_games).astype(np.float32),
            "away_score": rng.poisson(1.1, n_games).astype(np.float32),
            "duration": rng.normal(95.0, 3.0, n_games).astype(np.float32),
            "referee": _categorical(rng.integers(0, n_referees, n_games), "ref_", n_referees),
        }
    )

    side_team = np.stack([home, away], axis=1).ravel()  # game-major: (g0 home, g0 away, g1 home, ...)
    app_player = _lineups(rng, side_team, n_teams, roster)
    n_rows = len(app_player)
    app_game = np.repeat(np.arange(n_games, dtype=np.int64), 2 * _LINEUP)
    app_offs = game_offs[app_game]
    week = (app_offs // _WEEK_NS).astype(np.int64)
    flat = week * n_players + app_player
    del week
    z = _ar1(rng, n_weeks, n_players)
    form = z.ravel()[flat]
    form += rng.standard_normal(n_rows, dtype=np.float32)
    z = _ar1(rng, n_weeks, n_players)
    pace = z.ravel()[flat]
    pace += rng.standard_normal(n_rows, dtype=np.float32)
    del z, flat
    minutes = np.clip(rng.normal(70.0, 20.0, n_rows), 0.0, 90.0).astype(np.float32)
    n_boots = max(50, round(5000 * scale))
    year_start = np.array(
        [np.datetime64(f"{2010 + y}-01-01T00:00:00", "ns") for y in range(_YEARS)], dtype="datetime64[ns]"
    )
    app_time = _START + app_offs.astype("timedelta64[ns]")
    app_year = np.searchsorted(year_start, app_time, side="right") - 1
    app = {
        "appearance_id": np.arange(n_rows, dtype=np.int64),
        "player_id": app_player,
        "game_id": app_game,
        "player_season_id": app_year * n_players + app_player,
        "time": app_time,
        "form": form,
        "pace": pace,
        "form_pct": (50.0 + 10.0 * form + rng.normal(0.0, 0.05, n_rows)).astype(np.float32),
        "minutes": minutes,
        "seconds": minutes * np.float32(60.0),
        "role": _choice_cat(rng, n_rows, ["starter", "sub", "captain", "bench"], p=[0.6, 0.25, 0.05, 0.1]),
        "boot_model": _categorical(rng.integers(0, n_boots, n_rows), "boot_", n_boots),
        "const_zero": np.zeros(n_rows, dtype=np.float32),
    }
    del app_offs, app_time, app_year
    app |= _noise_block(rng, n_rows, n_app, "m_")
    appearances = pd.DataFrame(app, copy=False)
    del app, form, pace, minutes

    # ------------------------------------------------------------------ injuries
    frailty = rng.standard_normal(n_players)
    rate = _INJURY_RATE * np.exp(0.7 * frailty - 0.245) * (_SPAN_DAYS / _WINDOW.days)
    counts = rng.poisson(rate)
    inj_player = np.repeat(np.arange(n_players, dtype=np.int64), counts)
    n_inj = len(inj_player)
    inj_offs = rng.integers(0, span_ns, n_inj)
    order = np.argsort(inj_offs, kind="stable")
    inj_player, inj_offs = inj_player[order], inj_offs[order]
    days_out = np.maximum(1.0, np.round(np.exp(1.5 + 0.6 * frailty[inj_player] + 0.5 * rng.standard_normal(n_inj))))
    injuries = pd.DataFrame(
        {
            "injury_id": np.arange(n_inj, dtype=np.int64),
            "player_id": inj_player,
            "time": _START + inj_offs.astype("timedelta64[ns]"),
            "days_out": days_out.astype(np.float32),
            "games_missed": np.round(days_out / 3.0 + rng.uniform(-0.5, 0.5, n_inj)).clip(0).astype(np.float32),
            "severity": pd.Categorical.from_codes(
                np.digitize(days_out, [7.0, 21.0]).astype(np.int32), categories=["minor", "moderate", "major"]
            ),
            "body_part": _choice_cat(rng, n_inj, ["ankle", "knee", "hamstring", "groin", "calf", "back", "head",
                                                  "shoulder"]),
        }
    )

    # ------------------------------------------------------------------ season tables
    # One row per player and season (a calendar year), dated at the season's start: the
    # registration, contract and pre-season ratings of the player for that season.
    ps_year, ps_player = np.divmod(np.arange(_YEARS * n_players, dtype=np.int64), n_players)
    n_ps_rows = len(ps_year)
    player_seasons = pd.DataFrame(
        {
            "player_season_id": np.arange(n_ps_rows, dtype=np.int64),
            "player_id": ps_player,
            "team_id": ps_player % n_teams,
            "time": year_start[ps_year],
            "year": (2010 + ps_year).astype(np.float32),
        }
        | _noise_block(rng, n_ps_rows, n_ps, "s_"),
        copy=False,
    )
    ts_year, ts_team = np.divmod(np.arange(_YEARS * n_teams), n_teams)
    team_seasons = pd.DataFrame(
        {
            "team_season_id": np.arange(_YEARS * n_teams, dtype=np.int64),
            "team_id": ts_team.astype(np.int64),
            "time": year_start[ts_year],
            "year": (2010 + ts_year).astype(np.float32),
        }
        | _noise_block(rng, _YEARS * n_teams, n_ts, "t_"),
        copy=False,
    )

    tables = {
        "players": players,
        "teams": teams,
        "venues": venues,
        "games": games,
        "appearances": appearances,
        "injuries": injuries,
        "player_seasons": player_seasons,
        "team_seasons": team_seasons,
    }
    db = Database(
        tables,
        primary_keys={
            "players": "player_id",
            "teams": "team_id",
            "venues": "venue_id",
            "games": "game_id",
            "appearances": "appearance_id",
            "injuries": "injury_id",
            "player_seasons": "player_season_id",
            "team_seasons": "team_season_id",
        },
        foreign_keys={
            "players": {"team_id": "teams"},
            "teams": {"venue_id": "venues"},
            "games": {"home_team_id": "teams", "away_team_id": "teams", "venue_id": "venues"},
            "appearances": {"player_id": "players", "game_id": "games", "player_season_id": "player_seasons"},
            "injuries": {"player_id": "players"},
            "player_seasons": {"player_id": "players", "team_id": "teams"},
            "team_seasons": {"team_id": "teams"},
        },
        time_columns={t: "time" for t in ("games", "appearances", "injuries", "player_seasons", "team_seasons")},
    )
    del tables, appearances
    logger.debug("make_wide: %s", db)

    common = dict(
        entity_table="players",
        entity_col="player_id",
        window=_WINDOW,
        val_timestamp=_VAL,
        test_timestamp=_TEST,
    )
    tasks = {
        "player-form": Task(
            name="player-form",
            target_col="good_form",
            task_type="binary",
            label_sql=_FORM_SQL.format(target=f"CAST({_SCORE} > 0 AS INTEGER) AS good_form"),
            description="1 if mean(form + pace) + talent over the player's appearances in the next 28 days is "
            "positive.",
            **common,
        ),
        "player-score": Task(
            name="player-score",
            target_col="score",
            task_type="regression",
            label_sql=_FORM_SQL.format(target=f"{_SCORE} AS score"),
            description="mean(form + pace) + talent over the player's appearances in the next 28 days.",
            **common,
        ),
        "player-injury": Task(
            name="player-injury",
            target_col="injury_days",
            task_type="regression",
            metric="mae",
            label_sql=_INJURY_SQL,
            description="Days out injured from injuries starting in the next 28 days (about 90% zeros).",
            **common,
        ),
    }
    return db, tasks
