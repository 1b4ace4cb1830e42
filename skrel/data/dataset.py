"""``RelationalDataset``: scikit-learn's ``X`` for relational tasks.

Rows are (entity id, cutoff time) pairs over one :class:`~skrel.data.Database`. Indexing returns a
dataset over the *same* database object (no copy of the tables), so scikit-learn's splitters,
``GridSearchCV`` and ``cross_val_score`` pass it through unchanged (see ``_safe_indexing``: an
object with ``shape`` is indexed as ``X[indices, ...]``).
"""

from __future__ import annotations

import hashlib
import sys
from numbers import Integral

import numpy as np
import pandas as pd

from .database import Database, SchemaError

__all__ = ["RelationalDataset", "horizon_cutoffs", "HORIZONS"]

HORIZONS = ("cutoff", "data")


class RelationalDataset:
    """Rows of (entity id, cutoff) over a database: the ``X`` of every skrel estimator.

    Parameters
    ----------
    db : Database
        The database the rows are evaluated against. Each row sees the rows of ``db``
        visible at its cutoff (time ``<= cutoff``).
    entity_table : str
        Table whose primary key the entity ids reference.
    entity_ids : array-like of shape (n,)
        Primary-key values of ``entity_table``.
    cutoffs : array-like of shape (n,)
        Cutoff time of each row (anything ``pandas.to_datetime`` accepts).

    Examples
    --------
    >>> X = task.split(db, "train")[0]  # doctest: +SKIP
    >>> X[:10].shape  # doctest: +SKIP
    (10,)
    """

    def __init__(self, db: Database, entity_table: str, entity_ids, cutoffs):
        if not isinstance(db, Database):
            raise TypeError(f"db must be a skrel Database, got {type(db).__name__}.")
        if entity_table not in db:
            raise SchemaError(f"Entity table {entity_table!r} is not in the database; tables are {db.table_names}.")
        if db[entity_table].pkey is None:
            raise SchemaError(f"Entity table {entity_table!r} has no primary key.")
        ids = np.asarray(entity_ids)
        times = pd.to_datetime(np.asarray(cutoffs)).to_numpy(dtype="datetime64[ns]")
        if ids.ndim != 1 or times.ndim != 1 or len(ids) != len(times):
            raise ValueError(
                f"entity_ids and cutoffs must be 1-D of the same length, got shapes {ids.shape} and {times.shape}."
            )
        if np.isnat(times).any():
            raise ValueError(f"cutoffs has {int(np.isnat(times).sum())} missing value(s); every row needs a cutoff.")
        self.db = db
        self.entity_table = entity_table
        self.entity_ids = ids
        self.cutoffs = times

    @classmethod
    def _view(cls, src: "RelationalDataset", ids: np.ndarray, times: np.ndarray) -> "RelationalDataset":
        obj = cls.__new__(cls)
        obj.db = src.db
        obj.entity_table = src.entity_table
        obj.entity_ids = ids
        obj.cutoffs = times
        return obj

    # ------------------------------------------------------------------ array protocol
    @property
    def shape(self) -> tuple[int]:
        return (len(self.entity_ids),)

    @property
    def ndim(self) -> int:
        return 1

    def __len__(self) -> int:
        return len(self.entity_ids)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rest = key[1:]
            if any(r is not Ellipsis and r != slice(None) for r in rest):
                raise IndexError("RelationalDataset is 1-D: index it as X[rows] or X[rows, ...].")
            key = key[0]
        if isinstance(key, Integral):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"index {key} is out of bounds for a dataset of {n} rows.")
            return self.entity_ids[key], pd.Timestamp(self.cutoffs[key])
        if isinstance(key, slice):
            return self._view(self, self.entity_ids[key], self.cutoffs[key])
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean index of shape {idx.shape} does not match {len(self)} rows.")
        elif idx.size and idx.dtype.kind not in "iu":
            raise IndexError(f"index arrays must hold integers or booleans, got dtype {idx.dtype}.")
        elif not idx.size:
            idx = idx.astype(np.intp)
        return self._view(self, self.entity_ids[idx], self.cutoffs[idx])

    def __sizeof__(self) -> int:
        # The rows and the database they refer to (pickled with them): see ``Database.__sizeof__``.
        return object.__sizeof__(self) + self.entity_ids.nbytes + self.cutoffs.nbytes + sys.getsizeof(self.db)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ------------------------------------------------------------------ views
    @property
    def entity_col(self) -> str:
        return self.db[self.entity_table].pkey

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with the entity key column and ``cutoff``."""
        return pd.DataFrame({self.entity_col: self.entity_ids, "cutoff": self.cutoffs})

    @property
    def key(self) -> str:
        """A hash of the database fingerprint and the rows, for caches."""
        h = hashlib.blake2b(digest_size=16)
        h.update(self.db.fingerprint.encode())
        h.update(self.entity_table.encode())
        h.update(pd.util.hash_array(np.asarray(self.entity_ids, dtype=object)).tobytes())
        h.update(self.cutoffs.view("int64").tobytes())
        return h.hexdigest()

    def with_database(self, db: Database) -> "RelationalDataset":
        """The same rows over another database (for example the full one, for as-of evaluation)."""
        return RelationalDataset(db, self.entity_table, self.entity_ids, self.cutoffs)

    def __repr__(self) -> str:
        if len(self):
            span = f", cutoffs {pd.Timestamp(self.cutoffs.min()).date()}..{pd.Timestamp(self.cutoffs.max()).date()}"
        else:
            span = ""
        return f"RelationalDataset(n={len(self)}, entity_table={self.entity_table!r}{span}, db={self.db!r})"


def horizon_cutoffs(X: RelationalDataset, horizon: str = "cutoff", tables=None) -> np.ndarray:
    """The times at which each row of ``X`` is described, as ``datetime64[ns]``.

    ``"cutoff"``: the rows' cutoffs. ``"data"``: the earlier of each cutoff and the last time in
    ``X.db`` (over ``tables``, all tables by default). Every row of the database is dated at or
    before that last time, so both see exactly the rows visible at the cutoff; they differ only
    in where ages and look-back windows are counted from when a cutoff lies past the end of the
    data (RelBench's protocol: test rows over the database cut at the test timestamp).
    """
    if horizon not in HORIZONS:
        raise ValueError(f"horizon must be one of {list(HORIZONS)}, got {horizon!r}.")
    end = X.db.last_time(tables) if horizon == "data" else pd.NaT
    return X.cutoffs if pd.isna(end) else np.minimum(X.cutoffs, np.datetime64(end, "ns"))
