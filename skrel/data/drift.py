"""Schema drift: the database a model predicts on, checked against the schema it was trained on.

A saved model's card (:mod:`skrel.persist`) holds the training schema: per table its columns with
their dtypes and coarse kinds (:func:`skrel.data.column_kind`), keys and time column, the values of
its low-cardinality string columns, and the range of training cutoffs. :func:`check_drift` compares
a database with it before predicting. Each difference is handled one way:

- **errors** (:class:`~skrel.data.SchemaError`, naming the table and column): a table or column of
  the training schema is missing; a column's kind changed (numbers became text, say; ``int64`` to
  ``float64`` or ``object`` strings to ``category`` are not changes of kind, and a column with every
  value missing matches any kind); a table's primary key or time column changed; a foreign key of
  the training schema is gone or references another table.
- **handled, with a** :class:`DriftWarning`: a foreign key that is new since training (on a column
  that was a plain column then) is left out, so the model sees the relationships it was trained on;
  string values unseen in training are encoded as missing, as every family does at fit time (the
  tabular families' :class:`~skrel.estimators._tabular.FrameEncoder`, the graph families'
  ``materialize``); a prediction time before the first training cutoff, or past the last cutoff
  seen at fit by more than the length of the training cutoff range, is predicted but warned about.
- **handled silently**: tables and columns the training schema does not have are left out (logged at
  INFO), tables are put in their training order.
"""

from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import pandas as pd

from .database import Database, SchemaError, Table, column_kind

__all__ = ["DriftWarning", "check_drift", "describe_schema", "describe_categories", "check_time",
           "MAX_CATEGORIES"]

logger = logging.getLogger(__name__)

#: String columns with at most this many distinct values at training have them recorded in the card
#: (and unseen values reported); columns with more (names, free text) are not checked.
MAX_CATEGORIES = 1000

# Kinds a column may change between without changing how a family reads it.
_SAME_KIND = {"categorical": "text"}


class DriftWarning(UserWarning):
    """The database differs from the training schema in a way the model handles (a new foreign key,
    unseen category values), or the prediction time lies outside the training cutoffs."""


def _is_file(t) -> bool:
    return not isinstance(t, Table) and hasattr(t, "schema_frame")


def _frame(t) -> pd.DataFrame:
    """The table's rows, or for a table that stays in its file its schema (no rows)."""
    return t.schema_frame if _is_file(t) else t.df


def describe_schema(db: Database) -> dict:
    """The schema of ``db`` as the card stores it: per table its columns' dtypes and kinds, keys,
    time column and row count (JSON-serialisable).

    A table that stays in its file (:class:`~skrel.data.files.FileTable`) is described from the
    file's schema: its string columns have kind ``"empty"`` (not checked).
    """
    out = {}
    for name, t in db.tables.items():
        frame = _frame(t)
        out[name] = {
            "columns": {str(c): str(frame[c].dtype) for c in frame.columns},
            "kinds": {str(c): column_kind(frame[c]) for c in frame.columns},
            "primary_key": t.pkey,
            "foreign_keys": dict(t.fkeys),
            "time_column": t.time_col,
            "rows": int(len(t)),
        }
    return out


def _string_columns(schema: dict, name: str) -> list[str]:
    """The text and categorical columns of a table that are not keys (ids: new ones are normal)."""
    t = schema[name]
    keys = {t["primary_key"], t["time_column"], *t["foreign_keys"]}
    return [c for c, k in t["kinds"].items() if k in ("text", "categorical") and c not in keys]


def describe_categories(db: Database, schema: dict | None = None) -> dict:
    """``{table: {column: sorted values or None}}`` for the string columns that are not keys:
    their distinct values as strings, or None when there are more than :data:`MAX_CATEGORIES`."""
    schema = describe_schema(db) if schema is None else schema
    out: dict = {}
    for name in schema:
        t = db[name]
        if _is_file(t):
            continue
        cols = {}
        for c in _string_columns(schema, name):
            values = pd.unique(t.df[c].dropna().astype(str))
            cols[c] = None if len(values) > MAX_CATEGORIES else sorted(values.tolist())
        if cols:
            out[name] = cols
    return out


def _compatible(fit_kind: str, now_kind: str) -> bool:
    if "empty" in (fit_kind, now_kind):
        return True
    return _SAME_KIND.get(fit_kind, fit_kind) == _SAME_KIND.get(now_kind, now_kind)


def _check_tables(schema: dict, db: Database) -> dict[str, dict]:
    """Raise for what the model cannot do without; return the new foreign keys per table."""
    missing = [n for n in schema if n not in db]
    if missing:
        raise SchemaError(
            f"Table(s) {missing} of the training schema are missing from the database (its tables are "
            f"{sorted(db.table_names)}). Predict on a database with every table the model was trained on."
        )
    new_fkeys: dict[str, dict] = {}
    for name, fit in schema.items():
        t = db[name]
        if t.pkey != fit["primary_key"] or t.time_col != fit["time_column"]:
            raise SchemaError(
                f"Table {name!r} has primary key {t.pkey!r} and time column {t.time_col!r}, but "
                f"{fit['primary_key']!r} and {fit['time_column']!r} in the training schema."
            )
        frame = _frame(t)
        gone = [c for c in fit["columns"] if c not in frame.columns]
        if gone:
            raise SchemaError(
                f"Column(s) {[f'{name}.{c}' for c in gone]} of the training schema are missing from the database "
                f"(table {name!r} has {[str(c) for c in frame.columns]})."
            )
        for c, fit_kind in fit["kinds"].items():
            now_kind = column_kind(frame[c])
            if not _compatible(fit_kind, now_kind):
                raise SchemaError(
                    f"Column {name}.{c} was {fit_kind} ({fit['columns'][c]}) in training but is {now_kind} "
                    f"({frame[c].dtype}) now. Give it its training type (e.g. with pandas.to_numeric or "
                    "pandas.to_datetime) before predicting."
                )
        for c, ref in fit["foreign_keys"].items():
            if t.fkeys.get(c) != ref:
                now = t.fkeys.get(c)
                raise SchemaError(
                    f"Foreign key {name}.{c} -> {ref} of the training schema is "
                    + ("missing" if now is None else f"now a foreign key to {now!r}")
                    + " in the database. The model reads its relationships: restore it."
                )
        new = {c: ref for c, ref in t.fkeys.items() if c not in fit["foreign_keys"] and c in fit["columns"]}
        if new:
            new_fkeys[name] = new
    return new_fkeys


def _conform(schema: dict, db: Database, new_fkeys: dict) -> Database:
    """``db`` restricted to the training schema: its tables in their order, their columns, their keys."""
    same = (list(db.table_names) == list(schema) and not new_fkeys and all(
        [str(c) for c in _frame(db[n]).columns] == list(schema[n]["columns"]) and dict(db[n].fkeys) ==
        schema[n]["foreign_keys"] for n in schema))
    if same:
        return db
    extra_tables = [n for n in db.table_names if n not in schema]
    extra_cols = {n: [c for c in _frame(db[n]).columns if c not in schema[n]["columns"]] for n in schema}
    extra_cols = {n: cols for n, cols in extra_cols.items() if cols}
    if extra_tables or extra_cols:
        logger.info("left out of prediction (not in the training schema): tables %s, columns %s",
                    extra_tables, extra_cols)
    tables = {}
    for name, fit in schema.items():
        t = db[name]
        if _is_file(t):  # its rows stay in the file: only its keys can change
            t = copy.copy(t)
            t.fkeys = dict(fit["foreign_keys"])
            tables[name] = t
            continue
        tables[name] = Table(t.df[list(fit["columns"])], t.pkey, dict(fit["foreign_keys"]), t.time_col)
    return Database(tables, dangling=db.dangling)


def _check_categories(card: dict, db: Database) -> None:
    """One :class:`DriftWarning` listing the string values unseen in training, per column."""
    found = []
    for name, cols in (card.get("categories") or {}).items():
        t = db[name]
        if _is_file(t):
            continue
        for c, known in cols.items():
            if known is None or c not in t.df.columns:
                continue
            values = pd.unique(t.df[c].dropna().astype(str))
            unseen = values[~np.isin(values, np.asarray(known, dtype=object))]
            if len(unseen):
                found.append(f"{name}.{c}: {len(unseen)} value(s) (first: {sorted(unseen.tolist())[:5]})")
    if found:
        warnings.warn(
            "Values unseen in training, encoded as missing (as the model does for values it did not see "
            "at fit): " + "; ".join(found) + ".", DriftWarning, stacklevel=4)


def check_time(card: dict, at: pd.Timestamp) -> None:
    """Warn when ``at`` is before the first training cutoff, or past the last cutoff seen at fit by
    more than the length of the training cutoff range (the model would extrapolate that far)."""
    cutoffs = card.get("train_cutoffs")
    if not cutoffs:
        return
    first, last = pd.Timestamp(cutoffs[0]), pd.Timestamp(cutoffs[1])
    seen_last = max([last] + [pd.Timestamp(v) for v in (card.get("val_cutoffs") or [])])
    span = seen_last - first
    if span <= pd.Timedelta(0):
        window = (card.get("task") or {}).get("window")
        span = pd.Timedelta(window) if window else None
    where = f"training cutoffs {first} .. {last}" + (f", validation up to {seen_last}" if seen_last > last else "")
    if at < first:
        warnings.warn(f"Predicting at {at}, before the training data ({where}): the model never saw a database "
                      "this early.", DriftWarning, stacklevel=4)
    elif span is not None and at > seen_last + span:
        warnings.warn(f"Predicting at {at}, far past the training data ({where}; more than the {span} they span "
                      "past their end): the patterns learned may no longer hold. Refit on recent data.",
                      DriftWarning, stacklevel=4)


def check_drift(card: dict, db: Database, at) -> Database:
    """Check ``db`` against the training schema of ``card`` for a prediction at ``at``.

    Parameters
    ----------
    card : dict
        A model card (:func:`skrel.persist.model_card`), with ``schema``, ``categories`` and
        ``train_cutoffs``.
    db : Database
        The database to predict on.
    at : Timestamp
        The prediction time (naive UTC).

    Returns
    -------
    Database
        ``db`` itself when its schema is the training one; otherwise ``db`` restricted to the
        training tables, columns and foreign keys (a new Database; ``db`` is not modified).

    Raises
    ------
    SchemaError
        A training table or column is missing, a column's kind or a table's keys changed (see the
        module notes).

    Warns
    -----
    DriftWarning
        A new foreign key (left out), unseen string values among the rows visible at ``at``
        (encoded as missing), ``at`` outside the training cutoffs.
    """
    schema = card["schema"]
    new_fkeys = _check_tables(schema, db)
    if new_fkeys:
        listed = [f"{n}.{c} -> {ref}" for n, fks in new_fkeys.items() for c, ref in fks.items()]
        warnings.warn(
            f"Foreign key(s) {listed} are new since training; the model was trained without them and ignores "
            "them (refit to use them).", DriftWarning, stacklevel=3)
    conformed = _conform(schema, db, new_fkeys)
    at = pd.Timestamp(at)
    check_time(card, at)
    _check_categories(card, conformed.upto(at))
    return conformed
