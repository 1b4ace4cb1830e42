"""Entity tasks: a question about entities at points in time, and its train/val/test splits.

Labels are either supplied as tables, or computed by one DuckDB SQL query with RelBench's rules:

- train cutoffs step back every ``window`` from ``val_timestamp - window`` down to the earliest
  time in the database cut at ``test_timestamp``;
- val cutoffs step forward every ``window`` from ``val_timestamp``, at most
  ``num_eval_timestamps`` of them, and not past ``test_timestamp - window``;
- test cutoffs step forward every ``window`` from ``test_timestamp``, at most
  ``num_eval_timestamps``, and not past the full database's last time minus ``window``;
- the label at cutoff ``t`` looks at the window ``(t, t + window]``;
- train and val labels are computed on the database cut at ``test_timestamp``, test labels on
  the full database;
- every split's ``X`` is over the database cut at ``test_timestamp`` (RelBench's protocol), except
  ``"test_asof"``, the same rows as ``"test"`` over the full database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .database import Database, SchemaError
from .dataset import RelationalDataset

__all__ = ["Task", "TASK_TYPES", "SPLITS"]

TASK_TYPES = ("binary", "multiclass", "regression")
SPLITS = ("train", "val", "test", "test_asof")
_DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "mae"}


@dataclass(frozen=True)
class Task:
    """An entity task over a :class:`~skrel.data.Database`.

    Parameters
    ----------
    name : str
        Task name, e.g. ``"driver-dnf"``.
    entity_table : str
        Table whose rows are the entities.
    entity_col : str
        Column of the label table that holds entity ids (primary-key values of ``entity_table``).
    target_col : str
        Label column.
    task_type : {"binary", "multiclass", "regression"}
    window : pandas.Timedelta
        Label window length: the label at ``t`` looks at ``(t, t + window]``.
    metric : str, optional
        ``"roc_auc"`` (binary), ``"accuracy"`` (multiclass) or ``"mae"`` (regression) by default.
    label_sql : str, optional
        A DuckDB query returning columns ``timestamp``, ``entity_col`` and ``target_col``. It may
        reference every table of the database by name, the table ``timestamps`` (one column
        ``timestamp``, the cutoffs) and ``{window}``, replaced by an interval literal.
    val_timestamp, test_timestamp : pandas.Timestamp, optional
        Split boundaries for computed labels.
    tables : dict of str to DataFrame, optional
        Supplied label tables ``{"train": df, "val": df, "test": df}``, each with columns
        ``timestamp``, ``entity_col`` and ``target_col``. Exclusive with ``label_sql``.
    num_eval_timestamps : int, default=40
        At most this many val and test cutoffs.
    description : str, optional
    """

    name: str
    entity_table: str
    entity_col: str
    target_col: str
    task_type: str
    window: pd.Timedelta
    metric: str | None = None
    label_sql: str | None = None
    val_timestamp: pd.Timestamp | None = None
    test_timestamp: pd.Timestamp | None = None
    tables: dict | None = field(default=None, compare=False, hash=False)
    num_eval_timestamps: int = 40
    description: str = ""

    def __post_init__(self):
        if self.task_type not in TASK_TYPES:
            raise ValueError(f"Task {self.name!r}: task_type must be one of {TASK_TYPES}, got {self.task_type!r}.")
        object.__setattr__(self, "window", pd.Timedelta(self.window))
        if self.window <= pd.Timedelta(0):
            raise ValueError(f"Task {self.name!r}: window must be positive, got {self.window}.")
        if self.metric is None:
            object.__setattr__(self, "metric", _DEFAULT_METRIC[self.task_type])
        for attr in ("val_timestamp", "test_timestamp"):
            v = getattr(self, attr)
            if v is not None:
                object.__setattr__(self, attr, pd.Timestamp(v))
        if (self.label_sql is None) == (self.tables is None):
            raise ValueError(f"Task {self.name!r}: give exactly one of label_sql and tables.")
        if self.label_sql is not None and (self.val_timestamp is None or self.test_timestamp is None):
            raise ValueError(f"Task {self.name!r}: computed labels need val_timestamp and test_timestamp.")
        if self.tables is not None:
            missing = {"train", "val", "test"} - set(self.tables)
            if missing:
                raise ValueError(f"Task {self.name!r}: supplied tables lack split(s) {sorted(missing)}.")

    # ------------------------------------------------------------------ cutoffs and labels
    @property
    def is_classification(self) -> bool:
        return self.task_type != "regression"

    def _cut(self, db: Database) -> Database:
        return db.upto(self.test_timestamp) if self.test_timestamp is not None else db

    def cutoffs(self, db: Database, split: str) -> pd.DatetimeIndex:
        """The cutoff times of ``split`` under RelBench's rules (computed labels only)."""
        if self.label_sql is None:
            raise ValueError(f"Task {self.name!r} has supplied label tables; its cutoffs are in them.")
        D, n = self.window, self.num_eval_timestamps
        if split == "train":
            start, end = self.val_timestamp - D, self._cut(db).min_time
            stamps = pd.date_range(start=start, end=end, freq=-D)
            if len(stamps) < 3:
                raise SchemaError(
                    f"Task {self.name!r}: only {len(stamps)} training cutoffs between {end} and {start}; "
                    "use a shorter window or an earlier val_timestamp."
                )
            return stamps
        if split == "val":
            if self.val_timestamp + D > self._cut(db).max_time:
                raise SchemaError(f"Task {self.name!r}: the database ends before the first validation window closes.")
            end = min(self.val_timestamp + D * (n - 1), self.test_timestamp - D)
            return pd.date_range(start=self.val_timestamp, end=end, freq=D)
        if split in ("test", "test_asof"):
            end = min(self.test_timestamp + D * (n - 1), db.max_time - D)
            return pd.date_range(start=self.test_timestamp, end=end, freq=D)
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")

    def make_labels(self, db: Database, cutoffs) -> pd.DataFrame:
        """Run ``label_sql`` on ``db`` for the given cutoffs, in DuckDB."""
        import duckdb

        con = duckdb.connect()
        try:
            for name, t in db.tables.items():
                con.register(name, t.df)
            con.register("timestamps", pd.DataFrame({"timestamp": pd.DatetimeIndex(cutoffs).astype("datetime64[ns]")}))
            seconds = int(self.window.total_seconds())
            sql = self.label_sql.replace("{window}", f"INTERVAL '{seconds} seconds'")
            out = con.execute(sql).df()
        finally:
            con.close()
        missing = {"timestamp", self.entity_col, self.target_col} - set(out.columns)
        if missing:
            raise SchemaError(f"Task {self.name!r}: label_sql returned no column(s) {sorted(missing)}.")
        return out

    def labels(self, db: Database, split: str) -> pd.DataFrame:
        """The label table of ``split``: ``timestamp``, ``entity_col``, ``target_col``, in a stable order."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        base = "test" if split == "test_asof" else split
        key = ("labels", self.name, self.entity_table, self.entity_col, self.target_col, self.label_sql, base,
               self.val_timestamp, self.test_timestamp, self.window, self.num_eval_timestamps)
        if self.tables is None and key in db.cache:
            return db.cache[key]
        if self.tables is not None:
            df = self.tables[base]
            missing = {"timestamp", self.entity_col, self.target_col} - set(df.columns)
            if missing:
                raise SchemaError(f"Task {self.name!r}: supplied {base!r} table lacks column(s) {sorted(missing)}.")
            df = df[["timestamp", self.entity_col, self.target_col]].copy()
            df["timestamp"] = pd.to_datetime(df["timestamp"])
        else:
            label_db = db if base == "test" else self._cut(db)
            df = self.make_labels(label_db, self.cutoffs(db, base))
            df = df[["timestamp", self.entity_col, self.target_col]]
        pk = db[self.entity_table].pkey
        known = df[self.entity_col].isin(db[self.entity_table].df[pk])
        df = df[known & df[self.target_col].notna()]
        df = df.sort_values(["timestamp", self.entity_col], kind="stable").reset_index(drop=True)
        if self.tables is None:
            db.cache[key] = df
        return df

    def split(self, db: Database, split: str) -> tuple[RelationalDataset, np.ndarray]:
        """``(X, y)`` of ``split``; ``X`` is over the database cut at ``test_timestamp`` except for
        ``"test_asof"``, which is over the full database."""
        df = self.labels(db, split)
        X_db = db if split == "test_asof" else self._cut(db)
        X = RelationalDataset(X_db, self.entity_table, df[self.entity_col].to_numpy(), df["timestamp"].to_numpy())
        y = df[self.target_col].to_numpy()
        if self.task_type == "regression":
            y = y.astype(np.float64)
        elif self.task_type == "binary":
            y = y.astype(np.int64)
        return X, y

    def sizes(self, db: Database) -> dict[str, int]:
        """Rows per split, as ``{"train": n, "val": n, "test": n}``."""
        return {s: int(len(self.labels(db, s))) for s in ("train", "val", "test")}
