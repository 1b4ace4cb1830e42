"""Predict at one time for every entity (or the ones named), and write the predictions out.

:func:`predict_frame` answers the question a trained model is for: *for every driver (customer,
plane) as of this time, what is the prediction?* Every skrel estimator and
:class:`~skrel.relatron.RelatronSelector` has it as a method (:class:`PredictFrameMixin`).

Point-in-time rule: the prediction at ``at`` uses the database cut at ``at``
(:meth:`~skrel.data.Database.upto`: rows whose time is ``<= at``, and the tables without a time
column), so rows dated after ``at`` change nothing; the entities scored by default are the entity
table's rows visible at ``at``; every row's cutoff is ``at``. A row ``(entity, at)`` gets exactly
the prediction :meth:`predict` gives it in a task's test split when ``at`` is the task's test
timestamp (that split's rows at that cutoff are over the database cut there too).

Cost: one pass over the entities in chunks of ``chunk_rows``; each family computes only what its
``predict`` needs (DFS: the kept features only, one SQL query per chunk; the graph families: one
sampled subgraph per entity, the graph and tensor frames built once per database and cached).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn.utils.validation import check_is_fitted

from .data import Database, RelationalDataset, SchemaError
from .data.directory import display_source
from .data.drift import check_drift
from .data.files import FileTable
from .utils import check_directory

__all__ = ["predict_frame", "PredictFrameMixin", "write_predictions", "read_entities", "prediction_time",
           "check_output", "SQL_PREFIX"]

logger = logging.getLogger(__name__)

#: ``out`` that starts with this names a SQL table: ``"sql:predictions"``.
SQL_PREFIX = "sql:"


def prediction_time(at) -> pd.Timestamp:
    """``at`` as a naive UTC Timestamp (aware times converted, as the database stores them)."""
    if at is None:
        raise ValueError("at is required: the time to predict at (e.g. '2024-06-01'); there is no default.")
    try:
        t = pd.Timestamp(at)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"at={at!r} is not a timestamp ({exc}).") from None
    if t is pd.NaT:
        raise ValueError("at is NaT; give the time to predict at.")
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t


def _entity_table(estimator, card) -> str:
    """The entity table the model predicts for: from the card, the task, or the fitted attributes."""
    if card is not None:
        return card["task"]["entity_table"]
    task = getattr(estimator, "task_", None)
    if task is not None:
        return task.entity_table
    for owner in (estimator, getattr(estimator, "transformer_", None), getattr(estimator, "best_estimator_", None)):
        name = getattr(owner, "entity_table_", None)
        if name is not None:
            return name
    best = getattr(estimator, "best_estimator_", None)
    if best is not None:
        return _entity_table(best, None)
    raise ValueError(f"Cannot tell the entity table of this {type(estimator).__name__}; load it with "
                     "skrel.persist.load_model (its card names it) or fit it with fit(db, task).")


def _keys(table) -> pd.Series:
    """A table's primary-key column (read alone from the file of a table that stays in its file)."""

    return table.column(table.pkey) if isinstance(table, FileTable) else table.df[table.pkey]


def _check_entities(entities, visible: pd.Index, db: Database, table: str, at) -> np.ndarray:
    ids = np.asarray(entities.to_numpy() if isinstance(entities, (pd.Series, pd.Index)) else entities)
    if ids.ndim != 1:
        raise ValueError(f"entities must be 1-D (entity ids of {table!r}), got shape {ids.shape}.")
    if len(ids) == 0:
        raise ValueError("entities is empty; give entity ids, or None for every entity visible at `at`.")
    pos = visible.get_indexer(ids)
    if (pos >= 0).all():
        return ids
    pkey = db[table].pkey
    missing = ids[pos < 0]
    known = pd.Index(_keys(db[table]))
    later = missing[known.get_indexer(missing) >= 0]
    absent = missing[known.get_indexer(missing) < 0]
    parts = []
    if len(absent):
        parts.append(f"{len(absent)} are not in {table}.{pkey} (first: {pd.unique(absent)[:5].tolist()})")
    if len(later):
        parts.append(f"{len(later)} are dated after {at} or have no time (first: {pd.unique(later)[:5].tolist()})")
    raise ValueError(f"{len(missing)} of the {len(ids)} entities are not visible at {at}: " + "; ".join(parts)
                     + ". Predict only for entities visible at `at`.")


def predict_frame(estimator, db: Database, at, entities=None, *, card: dict | None = None,
                  chunk_rows: int = 10_000, verbose: int = 0) -> pd.DataFrame:
    """Predictions at time ``at`` for every entity visible then, or for ``entities``.

    Parameters
    ----------
    estimator : fitted skrel estimator or RelatronSelector
    db : Database
        The database to predict on; only its rows visible at ``at`` are used.
    at : str, datetime or Timestamp
        The prediction time (required; aware times are converted to UTC). Every row's cutoff.
    entities : array-like, optional
        Primary-key values of the entity table, each visible at ``at``; default: every row of the
        entity table visible at ``at`` (all of them when it has no time column), in table order.
    card : dict, optional
        A model card to check ``db`` against (:func:`skrel.data.drift.check_drift`: missing tables or
        columns, changed kinds, new foreign keys, unseen values, ``at`` outside the training
        cutoffs); default: the estimator's ``model_card_`` when it was loaded with
        :func:`skrel.persist.load_model`, else no check beyond the family's own.
    chunk_rows : int, default=10000
        Entities predicted at a time (memory bound, and progress steps).
    verbose : int, default=0
        Show a progress bar over the chunks (the families log their own steps at INFO).

    Returns
    -------
    pandas.DataFrame
        One row per entity: the entity table's primary-key column, ``cutoff`` (``at``),
        ``prediction`` (the predicted class, or value for a regressor) and, for a classifier, the
        probability of each class as ``proba_<class>``.

    Examples
    --------
    >>> est = DFSEstimator().fit(db, tasks["plane-cancel"])  # doctest: +SKIP
    >>> est.predict_frame(db, at="2013-11-01").head()  # doctest: +SKIP
      tailnum     cutoff  prediction  proba_0  proba_1
    """
    from tqdm.auto import tqdm

    check_is_fitted(estimator, "task_type_")
    if not isinstance(db, Database):
        raise TypeError(f"db must be a skrel Database, got {type(db).__name__}.")
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}.")
    at = prediction_time(at)
    card = getattr(estimator, "model_card_", None) if card is None else card
    table = _entity_table(estimator, card)
    if card is not None:

        db = check_drift(card, db, at)
    if table not in db:
        raise SchemaError(f"The model predicts for table {table!r}, which the database lacks; tables are "
                          f"{sorted(db.table_names)}.")
    pkey = db[table].pkey
    classifier = hasattr(estimator, "predict_proba")
    classes = list(estimator.classes_) if classifier else []
    names = ["cutoff", "prediction", *[f"proba_{c}" for c in classes]]
    if pkey in names:
        raise ValueError(f"The entity key {table}.{pkey} has the name of an output column {names}; rename it.")
    cut = db.upto(at)
    visible = pd.Index(_keys(cut[table]))
    if entities is None:
        ids = visible.to_numpy()
        if len(ids) == 0:
            raise ValueError(f"No row of {table!r} is visible at {at} (every row is dated later, or has no time).")
    else:
        ids = _check_entities(entities, visible, db, table, at)
    n_chunks = -(-len(ids) // chunk_rows)
    logger.info("predicting %d entities of %r at %s in %d chunk(s)", len(ids), table, at, n_chunks)
    parts = []
    for start in tqdm(range(0, len(ids), chunk_rows), total=n_chunks, desc="predict", unit="chunk",
                      disable=not verbose):
        chunk = ids[start:start + chunk_rows]
        X = RelationalDataset(cut, table, chunk, np.full(len(chunk), at.to_datetime64()))
        parts.append(estimator.predict_proba(X) if classifier else estimator.predict(X))
    out = pd.DataFrame({pkey: ids, "cutoff": np.full(len(ids), at.to_datetime64(), dtype="datetime64[ns]")})
    if classifier:
        proba = np.concatenate(parts, axis=0)
        out["prediction"] = estimator.classes_[np.argmax(proba, axis=1)]  # as predict() does
        for j, c in enumerate(classes):
            out[f"proba_{c}"] = proba[:, j]
    else:
        out["prediction"] = np.concatenate(parts).astype(np.float64)
    return out


class PredictFrameMixin:
    """Gives an estimator :meth:`predict_frame` (see :func:`skrel.predict.predict_frame`)."""

    def predict_frame(self, db, at, entities=None, *, card=None, chunk_rows=10_000, verbose=0):
        """Predictions at time ``at`` for every entity visible then, or for ``entities``.

        Parameters
        ----------
        db : Database
            Only its rows visible at ``at`` are used.
        at : str, datetime or Timestamp
            The prediction time, every row's cutoff (required).
        entities : array-like, optional
            Primary-key values of the entity table (default: every entity visible at ``at``).
        card : dict, optional
            Model card to check ``db`` against (default: ``model_card_`` of a loaded model).
        chunk_rows : int, default=10000
        verbose : int, default=0

        Returns
        -------
        pandas.DataFrame
            The entity key, ``cutoff``, ``prediction`` and (classifiers) ``proba_<class>`` columns.
            See :func:`skrel.predict.predict_frame`.
        """
        return predict_frame(self, db, at, entities, card=card, chunk_rows=chunk_rows, verbose=verbose)


# ---------------------------------------------------------------------- files and tables
def read_entities(path, column: str, like: pd.Series) -> np.ndarray:
    """Entity ids from a CSV or Parquet file: the column named ``column``, or the file's only column.

    Parameters
    ----------
    path : str or path-like
    column : str
        The entity table's primary key.
    like : pandas.Series
        The primary-key column: CSV values are converted to its type (so ``"007"`` stays a string
        key and ``7`` an integer one).

    Returns
    -------
    ndarray
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No entities file {str(path)!r}.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    elif suffix in (".parquet", ".pq"):
        df = pd.read_parquet(path)
    else:
        raise ValueError(f"Entities file {str(path)!r} must be CSV (.csv) or Parquet (.parquet, .pq).")
    if column in df.columns:
        values = df[column]
    elif df.shape[1] == 1:
        values = df.iloc[:, 0]
    else:
        raise ValueError(f"Entities file {str(path)!r} has columns {list(df.columns)}; name one {column!r} (the "
                         "entity key), or give a file with a single column.")
    if values.isna().any():
        rows = np.flatnonzero(values.isna().to_numpy())[:5].tolist()
        raise ValueError(f"Entities file {str(path)!r}: column {values.name!r} has missing values (rows {rows}).")
    if suffix == ".csv" and pd.api.types.is_numeric_dtype(like.dtype):
        try:
            values = pd.to_numeric(values).astype(like.dtype.numpy_dtype if hasattr(like.dtype, "numpy_dtype")
                                                  else like.dtype)
        except (ValueError, TypeError):
            bad = values[pd.to_numeric(values, errors="coerce").isna()].head(5).tolist()
            raise ValueError(f"Entities file {str(path)!r}: the key {column!r} is numeric, but the file has "
                             f"{bad}.") from None
    return values.to_numpy()


def check_output(out: str, *, url: str | None = None, replace: bool = False) -> None:
    """Check an ``out`` destination before any work: a ``.parquet`` / ``.pq`` / ``.csv`` file in an
    existing directory (and not there yet, unless ``replace``), or ``sql:TABLE`` with a database URL.

    Raises ValueError, FileNotFoundError (a missing directory) or FileExistsError.
    """

    text = str(out)
    if text.startswith(SQL_PREFIX):
        table = text[len(SQL_PREFIX):]
        if not table:
            raise ValueError(f"{text!r} names no table: write sql:TABLE.")
        if url is None:
            raise ValueError(f"{text!r} writes into a SQL database: give it as a SQLAlchemy URL (--db URL or a SQLite "
                             "file), or write a .parquet or .csv file.")
        return
    path = Path(text)
    if path.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise ValueError(f"Cannot tell the format of {text!r}: give a .parquet, .pq or .csv file, or sql:TABLE.")
    check_directory(path)
    if path.exists() and not replace:
        raise FileExistsError(f"{text!r} already exists; it is left as it is. Choose another file, or replace it "
                              "(--replace, replace=True).")


def write_predictions(frame: pd.DataFrame, out, *, url: str | None = None, sql_schema: str | None = None,
                      replace: bool = False) -> str:
    """Write predictions to a Parquet or CSV file, or into a SQL database table.

    Parameters
    ----------
    frame : pandas.DataFrame
        What :func:`predict_frame` returned.
    out : str or path-like
        ``"sql:TABLE"``: the table ``TABLE`` of the database at ``url`` (written through
        SQLAlchemy); a path ending in ``.parquet`` / ``.pq`` or ``.csv``: that file (its directory
        must exist).
    url : str, optional
        SQLAlchemy URL of the database for ``sql:TABLE``.
    sql_schema : str, optional
        The database schema of the table (PostgreSQL); the default schema otherwise.
    replace : bool, default=False
        Replace an existing table or file; without it, an existing one is an error and is left as
        it is.

    Returns
    -------
    str
        Where the predictions went (a URL's password masked).
    """
    check_output(out, url=url, replace=replace)
    text = str(out)
    if text.startswith(SQL_PREFIX):
        import sqlalchemy as sa


        table = text[len(SQL_PREFIX):]
        where = f"{sql_schema}.{table}" if sql_schema else table
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                if sa.inspect(conn).has_table(table, schema=sql_schema) and not replace:
                    raise FileExistsError(f"Table {where!r} already exists in {display_source(url)}; it is left as it "
                                          "is. Choose another table, or replace it (--replace, replace=True).")
                frame.to_sql(table, conn, schema=sql_schema, if_exists="replace" if replace else "fail", index=False,
                             chunksize=10_000)
        finally:
            engine.dispose()
        return f"{display_source(url)} table {where}"
    path = Path(text)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)
