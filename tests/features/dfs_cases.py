"""Small databases for the DFS tests, built to hit the corner cases of point-in-time semantics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from skrel.data import Database, RelationalDataset, schema_toml


def make_market(seed: int = 0, n_users: int = 12, n_orders: int = 120, n_reviews: int = 90) -> Database:
    """users <- orders[buyer], orders[seller] -> users; orders -> products (no time), orders -> promos
    (dated, sometimes after the order); reviews -> orders (sometimes dated before their order).

    String entity ids, an entity table with a time column (users join over time), missing times,
    missing values, ties for ``mode``, and categorical values that are all missing for some users.
    """
    rng = np.random.default_rng(seed)
    day = pd.Timedelta(days=1)
    t0 = pd.Timestamp("2021-01-01")
    users = pd.DataFrame(
        {
            "user_id": [f"u{i:02d}" for i in range(n_users)],
            "joined": t0 + pd.to_timedelta(rng.integers(0, 120, n_users), "D"),
            "country": rng.choice(["fr", "de", None], n_users),
            "vip": rng.random(n_users) < 0.3,
            "score": np.where(rng.random(n_users) < 0.2, np.nan, rng.normal(size=n_users)),
        }
    )
    products = pd.DataFrame({"pid": np.arange(6), "category": list("aabbcc"), "price": [1.0, 2.5, 2.5, 4.0, 8.0, 16.0]})
    promos = pd.DataFrame(
        {
            "promo_id": np.arange(5),
            "start": t0 + pd.to_timedelta([10, 60, 150, 200, 300], "D"),
            "discount": [0.1, 0.2, 0.15, 0.3, 0.05],
            "kind": ["x", "y", "x", "y", "x"],
        }
    )
    at = t0 + pd.to_timedelta(rng.integers(0, 365, n_orders), "D")
    at = at.where(rng.random(n_orders) > 0.05)  # a few orders without a time are never visible
    channel = rng.choice(["web", "app", "shop"], n_orders).astype(object)
    channel[rng.random(n_orders) < 0.2] = None
    orders = pd.DataFrame(
        {
            "order_id": np.arange(n_orders),
            "buyer": rng.choice(users["user_id"], n_orders),
            "seller": rng.choice(users["user_id"], n_orders),
            "pid": rng.integers(0, 6, n_orders),
            "promo_id": pd.array(np.where(rng.random(n_orders) < 0.4, rng.integers(0, 5, n_orders), -1),
                                 dtype="Int64"),
            "qty": np.where(rng.random(n_orders) < 0.1, np.nan, rng.integers(1, 5, n_orders).astype(float)),
            "at": at,
            "channel": channel,
        }
    )
    orders["promo_id"] = orders["promo_id"].mask(orders["promo_id"] < 0)
    order_of = rng.integers(0, n_orders, n_reviews)
    lag = rng.integers(-5, 30, n_reviews)  # some reviews dated before their order
    base = orders["at"].iloc[order_of].fillna(t0).to_numpy()
    reviews = pd.DataFrame(
        {
            "review_id": np.arange(n_reviews),
            "order_id": order_of,
            "stars": rng.integers(1, 6, n_reviews).astype(float),
            "when": base + lag * np.timedelta64(1, "D"),
            "mood": rng.choice(["good", "bad"], n_reviews),
        }
    )
    return Database(
        {"users": users, "products": products, "promos": promos, "orders": orders, "reviews": reviews},
        primary_keys={"users": "user_id", "products": "pid", "promos": "promo_id", "orders": "order_id",
                      "reviews": "review_id"},
        foreign_keys={"orders": {"buyer": "users", "seller": "users", "pid": "products", "promo_id": "promos"},
                      "reviews": {"order_id": "orders"}},
        time_columns={"users": "joined", "promos": "start", "orders": "at", "reviews": "when"},
    )


def market_rows(db: Database, n_cutoffs: int = 3, seed: int = 0) -> RelationalDataset:
    """Every user at a few cutoffs, some cutoffs exactly at an order's time, a repeated row."""
    rng = np.random.default_rng(seed)
    times = db["orders"].df["at"].dropna().sort_values().to_numpy()
    cutoffs = list(rng.choice(times, n_cutoffs - 1, replace=False)) + [np.datetime64("2021-03-15")]
    users = db["users"].df["user_id"].to_numpy()
    ids = np.concatenate([users for _ in cutoffs] + [users[:2]])
    cuts = np.concatenate([np.full(len(users), c, dtype="datetime64[ns]") for c in cutoffs]
                          + [np.full(2, cutoffs[0], dtype="datetime64[ns]")])
    return RelationalDataset(db, "users", ids, cuts)


def assert_frames_equal(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-9) -> None:
    """Same columns; missing equals missing; floats within ``rtol``; other values equal."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype == object or y.dtype == object:
            bad = [i for i, (u, v) in enumerate(zip(x, y)) if not ((u is None and v is None) or u == v)]
        else:
            x, y = x.astype(float), y.astype(float)
            ok = (np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=rtol, atol=0.0)
            bad = np.flatnonzero(~ok).tolist()
        assert not bad, f"column {col!r} differs at rows {bad[:5]}: {x[bad[:3]]} vs {y[bad[:3]]}"


def write_parquet(db: Database, root: Path, overrides: dict | None = None, options: dict | None = None) -> Path:
    """Each table of ``db`` to ``root/<name>.parquet`` (``overrides[name]``: another frame to write;
    ``options[name]``: pyarrow writer options) and a ``schema.toml`` naming the keys and times."""
    overrides, options = dict(overrides or {}), dict(options or {})
    root.mkdir(parents=True, exist_ok=True)
    for name, t in db.tables.items():
        overrides.get(name, t.df).to_parquet(root / f"{name}.parquet", index=False, **options.get(name, {}))
    (root / "schema.toml").write_text(schema_toml(db))
    return root
