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

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..utils import is_zero_one, quote_identifier
from .database import Database, SchemaError, _first
from .dataset import RelationalDataset

__all__ = ["Task", "TASK_TYPES", "SPLITS", "LabelWarning", "LabelQueryError"]

logger = logging.getLogger(__name__)


class LabelWarning(UserWarning):
    """Label rows were dropped, or split timestamps leave label windows without data."""


class LabelQueryError(SchemaError):
    """A task's ``label_sql`` is not one read-only query: it is not valid SQL, holds several
    statements or one that is not a ``SELECT``, or reaches outside the database's tables."""


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
        ``timestamp``, the cutoffs) and ``{window}``, replaced by an interval literal. It must be
        exactly one ``SELECT`` statement (``WITH ... SELECT`` included), and it can read nothing
        but those tables; see the notes.
    val_timestamp, test_timestamp : pandas.Timestamp, optional
        Split boundaries for computed labels. Timezone-aware timestamps are converted to UTC and
        made naive, as the database's time columns are (and as task files do).
    tables : dict of str to DataFrame, optional
        Supplied label tables ``{"train": df, "val": df, "test": df}``, each with columns
        ``timestamp``, ``entity_col`` and ``target_col``. Exclusive with ``label_sql``.
    num_eval_timestamps : int, default=40
        At most this many val and test cutoffs.
    description : str, optional

    Notes
    -----
    ``label_sql`` sees every table of the database by name and as ``db.<name>``, and the cutoffs as
    ``timestamps``. A database table named ``timestamps`` is only reachable as ``db.timestamps``.

    ``label_sql`` is read-only and sees nothing else, since a task file may come from anyone: it
    must be exactly one ``SELECT`` statement (DuckDB's parser decides: ``COPY``, ``ATTACH``,
    ``SET``, ``PRAGMA``, ``INSTALL``, ``LOAD``, ``CREATE`` or a second statement raise
    :class:`LabelQueryError` when the task is built), and it runs on a DuckDB connection that
    opens no file or URL and loads no extension (``read_csv('/etc/passwd')`` raises
    :class:`LabelQueryError` when labels are computed). Tables in Parquet files are read through
    pyarrow, not by path.

    Label rows are cleaned the same way for computed and supplied labels:

    - rows with a missing target or timestamp, and rows whose entity is not a key of
      ``entity_table``, are dropped and counted in a :class:`LabelWarning`;
    - **an entity is labelled at a cutoff only when it is visible there**: when ``entity_table`` has
      a time column, rows whose entity time is after the cutoff, or missing, are dropped (an entity
      with a missing time is never visible, as in the graph layer); so are, when
      ``test_timestamp`` is set, entities dated after it, which X's database (cut at
      ``test_timestamp``) does not hold. These drops are logged at DEBUG (a warning only when no
      row is left); see ``docs/point-in-time.md``;
    - duplicate rows (same timestamp, entity and target) are kept once and counted in the
      warning; the same (timestamp, entity) with different targets raises :class:`SchemaError`
      (there is no principled choice between them);
    - binary targets keep their values: any two distinct values (0/1 numbers and booleans
      become ``int64`` in :meth:`split`; 0.2/0.7 or ``"yes"``/``"no"`` are returned as they are);
      more than two raise :class:`SchemaError`. Regression targets must be numeric.

    Split timestamps before the data raise :class:`SchemaError`; validation cutoffs at or after
    the data's last time, and an empty test split (``test_timestamp + window`` after the data),
    warn (:class:`LabelWarning`): their labels would describe windows without data.
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
                v = pd.Timestamp(v)
                if v.tzinfo is not None:  # the database stores naive UTC, as task files give
                    v = v.tz_convert("UTC").tz_localize(None)
                object.__setattr__(self, attr, v)
        if (self.label_sql is None) == (self.tables is None):
            raise ValueError(f"Task {self.name!r}: give exactly one of label_sql and tables.")
        if self.label_sql is not None:
            self._label_query()  # one SELECT statement, or LabelQueryError now rather than at fit
        if self.label_sql is not None and (self.val_timestamp is None or self.test_timestamp is None):
            raise ValueError(f"Task {self.name!r}: computed labels need val_timestamp and test_timestamp.")
        val, test = self.val_timestamp, self.test_timestamp
        if val is not None and test is not None and val >= test:
            raise ValueError(
                f"Task {self.name!r}: val_timestamp {val} must be before test_timestamp {test}."
            )
        if self.tables is not None:
            missing = {"train", "val", "test"} - set(self.tables)
            if missing:
                raise ValueError(f"Task {self.name!r}: supplied tables lack split(s) {sorted(missing)}.")

    # ------------------------------------------------------------------ cutoffs and labels
    def _cut(self, db: Database) -> Database:
        return db.upto(self.test_timestamp) if self.test_timestamp is not None else db

    def _data_range(self, db: Database) -> str:
        return f"{db.min_time}..{db.max_time}"

    def _check_timestamps(self, db: Database) -> None:
        """Errors for split timestamps before the data, for computed labels."""
        if pd.isna(db.min_time):
            raise SchemaError(
                f"Task {self.name!r}: computed labels need a database with times, but no time column holds a "
                "value. Give the tables their time columns, or supply label tables."
            )
        cut = self._cut(db)
        if pd.isna(cut.min_time):
            raise SchemaError(
                f"Task {self.name!r}: test_timestamp {self.test_timestamp} is before the data (times range over "
                f"{self._data_range(db)}), so the database cut at it holds no dated row. Choose a test_timestamp "
                "inside the data."
            )
        if self.val_timestamp - self.window < cut.min_time:
            raise SchemaError(
                f"Task {self.name!r}: val_timestamp {self.val_timestamp} leaves no training cutoff: the first "
                f"one, val_timestamp - window = {self.val_timestamp - self.window}, is before the data (times "
                f"range over {self._data_range(cut)} up to test_timestamp). Choose a later val_timestamp or a "
                "shorter window."
            )

    def cutoffs(self, db: Database, split: str) -> pd.DatetimeIndex:
        """The cutoff times of ``split`` under RelBench's rules (computed labels only).

        Raises :class:`SchemaError` when a split timestamp lies before the data, and warns
        (:class:`LabelWarning`) when validation label windows lie wholly after the data, or the
        test split is empty because ``test_timestamp + window`` is after the data.
        """
        if self.label_sql is None:
            raise ValueError(f"Task {self.name!r} has supplied label tables; its cutoffs are in them.")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        self._check_timestamps(db)
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
            cut = self._cut(db)
            if self.val_timestamp + D > cut.max_time:
                raise SchemaError(
                    f"Task {self.name!r}: the database ends ({cut.max_time}, up to test_timestamp) before the first "
                    f"validation window closes (val_timestamp + window = {self.val_timestamp + D}). Choose an "
                    "earlier val_timestamp or a shorter window."
                )
            end = min(self.val_timestamp + D * (n - 1), self.test_timestamp - D)
            stamps = pd.date_range(start=self.val_timestamp, end=end, freq=D)
            late = stamps[stamps >= cut.max_time]  # (t, t + window] holds no row of the cut database
            if len(late):
                warnings.warn(
                    f"Task {self.name!r}: {len(late)} of {len(stamps)} validation cutoffs (first: {late[0]}) are at "
                    f"or after the data's last time {cut.max_time} (data range {self._data_range(db)}, "
                    f"test_timestamp {self.test_timestamp}): their label windows hold no data. Choose a "
                    "test_timestamp inside the data.",
                    LabelWarning,
                    stacklevel=3,
                )
            return stamps
        end = min(self.test_timestamp + D * (n - 1), db.max_time - D)
        stamps = pd.date_range(start=self.test_timestamp, end=end, freq=D)
        if len(stamps) == 0:
            warnings.warn(
                f"Task {self.name!r}: the test split is empty: test_timestamp {self.test_timestamp} plus the "
                f"window {D} ends after the data's last time {db.max_time} (data range {self._data_range(db)}). "
                "Choose a test_timestamp at least one window before the end of the data.",
                LabelWarning,
                stacklevel=3,
            )
        return stamps

    def _label_query(self) -> str:
        """``label_sql`` with ``{window}`` replaced, checked to be exactly one ``SELECT`` statement.

        DuckDB's own parser splits and classifies the statements (no regular expression could
        follow its grammar). Raises :class:`LabelQueryError`.
        """
        import duckdb

        if not isinstance(self.label_sql, str):
            raise LabelQueryError(f"Task {self.name!r}: label_sql must be a string, got "
                                  f"{type(self.label_sql).__name__}.")
        seconds = int(self.window.total_seconds())
        sql = self.label_sql.replace("{window}", f"INTERVAL '{seconds} seconds'")
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise LabelQueryError(f"Task {self.name!r}: label_sql is not valid DuckDB SQL: "
                                  f"{' '.join(str(exc).split())}") from None
        if len(statements) != 1:
            shown = [" ".join(s.query.split())[:80] for s in statements]
            raise LabelQueryError(
                f"Task {self.name!r}: label_sql must be exactly one SELECT statement, found {len(statements)}"
                f"{': ' + repr(shown) if shown else ''}. Keep only the query that returns the labels."
            )
        statement = statements[0]
        if statement.type != duckdb.StatementType.SELECT:
            kind = statement.type.name
            kind = ("an " if kind[0] in "AEIOU" else "a ") + kind
            raise LabelQueryError(
                f"Task {self.name!r}: label_sql must be one SELECT statement (WITH ... SELECT included), not {kind} "
                f"statement: {' '.join(statement.query.split())[:200]!r}. A label query "
                "only reads the database's tables."
            )
        return sql

    def make_labels(self, db: Database, cutoffs) -> pd.DataFrame:
        """Run ``label_sql`` on ``db`` for the given cutoffs, in DuckDB.

        The cutoffs are the table ``timestamps``. Every table of ``db`` is visible under its own
        name and as ``db.<name>``; a table of ``db`` named ``timestamps`` (in any case) is only
        visible as ``db.timestamps``. The query runs on a connection that reads these tables and
        nothing else (:func:`skrel.data.files.read_only_connection`): a query that reaches for a
        file, a URL or an extension raises :class:`LabelQueryError`.
        """
        import duckdb

        from .files import read_only_connection, register_read_only

        sql = self._label_query()
        con = read_only_connection()
        try:
            con.execute("CREATE SCHEMA db")
            for i, (name, t) in enumerate(db.tables.items()):
                hidden = f"__skrel_table_{i}"
                register_read_only(con, hidden, t)  # a file table is read where it lies, by pyarrow
                quoted = quote_identifier(name)
                con.execute(f"CREATE VIEW db.{quoted} AS SELECT * FROM {hidden}")
                if name.lower() != "timestamps":
                    con.execute(f"CREATE TEMP VIEW {quoted} AS SELECT * FROM {hidden}")
            con.register("timestamps", pd.DataFrame({"timestamp": pd.DatetimeIndex(cutoffs).astype("datetime64[ns]")}))
            try:
                out = con.execute(sql).df()
            except duckdb.PermissionException as exc:
                raise LabelQueryError(
                    f"Task {self.name!r}: label_sql may read only the database's tables {db.table_names} and "
                    f"timestamps, not files, URLs or extensions: {' '.join(str(exc).split())}"
                ) from None
        finally:
            con.close()
        missing = {"timestamp", self.entity_col, self.target_col} - set(out.columns)
        if missing:
            raise SchemaError(f"Task {self.name!r}: label_sql returned no column(s) {sorted(missing)}.")
        return out

    def labels(self, db: Database, split: str) -> pd.DataFrame:
        """The label table of ``split``: ``timestamp``, ``entity_col``, ``target_col``, in a stable order.

        Rows are cleaned by the rules in the class notes: rows with a missing target or
        timestamp, rows of unknown entities and exact duplicates are dropped and counted in a
        :class:`LabelWarning`; rows of entities not yet visible at their cutoff are dropped
        (logged at DEBUG); conflicting duplicates and binary targets with more than two values
        raise :class:`SchemaError`.
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        base = "test" if split == "test_asof" else split
        key = ("labels", self.name, self.entity_table, self.entity_col, self.target_col, self.task_type,
               self.label_sql, base, self.val_timestamp, self.test_timestamp, self.window, self.num_eval_timestamps)
        if self.tables is None:
            cached = db.cache.get(key)
            if cached is not None:
                return cached
        if self.entity_table not in db:
            raise SchemaError(f"Task {self.name!r}: entity table {self.entity_table!r} is not in the database; "
                              f"tables are {db.table_names}.")
        if self.tables is not None:
            df = self.tables[base]
            missing = {"timestamp", self.entity_col, self.target_col} - set(df.columns)
            if missing:
                raise SchemaError(f"Task {self.name!r}: supplied {base!r} table lacks column(s) {sorted(missing)}.")
            df = df[["timestamp", self.entity_col, self.target_col]].copy()
            stamps = pd.to_datetime(df["timestamp"])
            if isinstance(stamps.dtype, pd.DatetimeTZDtype):  # the database stores naive UTC
                stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
            df["timestamp"] = stamps.astype("datetime64[ns]")
        else:
            label_db = db if base == "test" else self._cut(db)
            df = self.make_labels(label_db, self.cutoffs(db, base))
            df = df[["timestamp", self.entity_col, self.target_col]]
        df = self._clean(db, df, base)
        if self.tables is None:
            db.cache[key] = df
        return df

    def labels_at(self, db: Database, timestamps) -> pd.DataFrame:
        """Labels computed by ``label_sql`` on ``db`` at any ``timestamps``, cleaned like :meth:`labels`.

        Returns ``timestamp``, ``entity_col``, ``target_col``, sorted by timestamp and entity. Not
        cached (callers cache what they derive). Supplied label tables have no query: ValueError.
        """
        if self.label_sql is None:
            raise ValueError(f"Task {self.name!r} has supplied label tables and no label query; labels_at needs "
                             "label_sql.")
        if self.entity_table not in db:
            raise SchemaError(f"Task {self.name!r}: entity table {self.entity_table!r} is not in the database; "
                              f"tables are {db.table_names}.")
        stamps = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(timestamps))).sort_values()
        df = self.make_labels(db, stamps)[["timestamp", self.entity_col, self.target_col]]
        return self._clean(db, df, "label history")

    def _clean(self, db: Database, df: pd.DataFrame, split: str) -> pd.DataFrame:
        ent, target = self.entity_col, self.target_col
        where = f"Task {self.name!r}, split {split!r}"
        # sorted first, so that messages and kept rows do not depend on the label query's row order
        df = df.sort_values(["timestamp", ent], kind="stable", na_position="last").reset_index(drop=True)
        notes = []

        # Missing targets and timestamps.
        null_target = df[target].isna().to_numpy()
        null_time = df["timestamp"].isna().to_numpy()
        if null_target.any():
            notes.append(f"{int(null_target.sum())} row(s) with a missing {target!r} (first entities: "
                         f"{_first(pd.unique(df.loc[null_target, ent]))})")
        if null_time.any():
            notes.append(f"{int(null_time.sum())} row(s) with a missing timestamp")
        df = df[~(null_target | null_time)]

        # Entities: unknown ones are dropped with a warning, those not yet visible quietly.
        etab = db[self.entity_table]
        pk = etab.df[etab.pkey]
        known = df[ent].isin(pk).to_numpy()
        if not known.all():
            notes.append(f"{int((~known).sum())} row(s) whose {ent!r} is not a key of {self.entity_table!r} (first: "
                         f"{_first(pd.unique(df.loc[~known, ent]))})")
            df = df[known]
        if etab.time_col is not None and len(df):
            born = pd.Series(etab.df[etab.time_col].to_numpy(), index=pk.to_numpy())
            entity_time = born.reindex(df[ent].to_numpy()).to_numpy()
            limit = df["timestamp"].to_numpy()
            if self.test_timestamp is not None:  # the rows must also be in X's database, cut at test_timestamp
                limit = np.minimum(limit, np.datetime64(self.test_timestamp, "ns"))
            visible = ~np.isnat(entity_time) & (entity_time <= limit)
            if not visible.all():
                message = (f"{where}: dropped {int((~visible).sum())} of {len(df)} row(s) whose entity is not visible "
                           f"at the row's cutoff ({self.entity_table}.{etab.time_col} after the cutoff"
                           f"{' or the test timestamp' if self.test_timestamp is not None else ''}, or missing)")
                if visible.any():
                    logger.debug(message)
                else:
                    warnings.warn(message + ": no row is left.", LabelWarning, stacklevel=3)
                df = df[visible]

        # Duplicates: identical rows are kept once; conflicting ones are an error.
        dup_keys = df.duplicated(["timestamp", ent], keep=False).to_numpy()
        if dup_keys.any():
            exact = df.duplicated(["timestamp", ent, target], keep="first").to_numpy()
            conflicting = df[dup_keys].groupby(["timestamp", ent], sort=True)[target].nunique()
            conflicting = conflicting[conflicting > 1]
            if len(conflicting):
                first_ts, first_ent = conflicting.index[0]
                values = _first(df.loc[(df["timestamp"] == first_ts) & (df[ent] == first_ent), target])
                raise SchemaError(
                    f"{where}: {len(conflicting)} (timestamp, {ent}) pair(s) have several different targets (first: "
                    f"{ent}={_first([first_ent])[0]!r} at {first_ts} with {target} values {values}). Make the "
                    "label query return one row per entity and cutoff."
                )
            notes.append(f"{int(exact.sum())} duplicate row(s) (same timestamp, {ent} and {target}), kept once")
            df = df[~exact]

        if notes:
            warnings.warn(f"{where}: dropped " + "; ".join(notes) + ".", LabelWarning, stacklevel=3)

        if self.task_type == "binary":
            values = pd.unique(df[target])
            if len(values) > 2:
                raise SchemaError(
                    f"{where}: a binary task needs at most two distinct {target!r} values, found {len(values)} "
                    f"(first: {_first(sorted(values, key=repr))}). Use task_type='multiclass' or "
                    "'regression', or map the target to two values in the label query."
                )
        elif self.task_type == "regression":
            col = df[target]
            if not (pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype)):
                raise SchemaError(
                    f"{where}: a regression target must be numeric, but {target!r} is {col.dtype} (first values: "
                    f"{_first(col)}). Convert it in the label query."
                )
        return df.sort_values(["timestamp", ent], kind="stable").reset_index(drop=True)

    def split(self, db: Database, split: str) -> tuple[RelationalDataset, np.ndarray]:
        """``(X, y)`` of ``split``; ``X`` is over the database cut at ``test_timestamp`` except for
        ``"test_asof"``, which is over the full database."""
        df = self.labels(db, split)
        X_db = db if split == "test_asof" else self._cut(db)
        X = RelationalDataset(X_db, self.entity_table, df[self.entity_col].to_numpy(), df["timestamp"].to_numpy())
        y = df[self.target_col].to_numpy()
        if self.task_type == "regression":
            y = y.astype(np.float64)
        elif self.task_type == "binary" and is_zero_one(y):
            y = y.astype(np.int64)
        return X, y

    def sizes(self, db: Database) -> dict[str, int]:
        """Rows per split, as ``{"train": n, "val": n, "test": n}``."""
        return {s: int(len(self.labels(db, s))) for s in ("train", "val", "test")}
