"""One bounded cache for everything skrel derives from a :class:`~skrel.data.Database`.

Families cache what they derive from a database (label tables, cut databases, DFS feature
matrices, graphs, materialised tensor frames, RelGT contexts) so that a grid search does not
rebuild them per candidate. Those structures can be rebuilt, so the cache is a least-recently-used
store bounded in bytes: when an insertion takes it past its bound, the least recently used
entries are dropped until it fits. An entry larger than the whole bound is not stored.

Sizes are estimates (:func:`estimate_nbytes`): numpy arrays count ``nbytes``, pandas objects
``memory_usage(deep=False)`` (object columns count their pointers, not the strings), torch tensors
``numel() * element_size()``; tuples, lists, dicts, sets, dataclasses and objects with a
``__dict__`` are summed recursively to a fixed depth. An object may declare its own size with a
``cache_nbytes`` attribute (an int, or a method returning one).

One store is shared by a database and every database cut from it (``db.upto(t)``), so a single
bound covers all of them; each database sees its own part of the store through its
:attr:`~skrel.data.Database.cache`, a mutable mapping (``in``, ``[]``, ``[]=``, ``get``, ``del``,
``len``, iteration) keyed like a dict.

Guarantees:

- **Eviction never returns wrong data**: a key either finds the value stored under it or is
  missing. The usual pattern ``if key in cache: return cache[key]`` stays safe when another thread
  evicts the entry in between (the value found by ``in`` is kept for the calling thread's next
  lookup of that key), and so does ``cache[key] = value; return cache[key]`` for an entry too
  large to be stored.
- **Thread-safe** for scikit-learn's and joblib's threading backend: every operation holds one
  lock per store. Two threads may both miss and both compute an entry; the later store wins,
  and both values are correct.
- **Never pickled**: a pickled (or copied) database comes back with an empty cache of its own.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Any, Hashable, Iterator

import numpy as np
import pandas as pd

__all__ = ["CacheStore", "DatabaseCache", "estimate_nbytes", "set_cache_bytes", "get_cache_bytes"]

logger = logging.getLogger(__name__)

_GIB = 1 << 30


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        try:
            import psutil

            return int(psutil.virtual_memory().total)
        except Exception:
            return None


def _default_bound() -> int:
    """1 GiB, or an eighth of physical memory when that is smaller (and at least 64 MiB).

    Why: on rel-f1 a task's working set is about 25 MB (labels and the cut database 6 MB, depth-2
    DFS features of the train split 11 MB, the graph 6 MB) and one RelGT context set of the train
    split 36 MB (measured with ``estimate_nbytes``). 1 GiB keeps every structure of a search over
    a database of that size, with about twenty-five context configurations, where a 50-candidate
    search over the context parameters would keep 1.8 GB unbounded. An eighth of memory leaves the rest
    to the models and DuckDB on small machines; for a larger database raise the bound
    (``set_cache_bytes``) rather than recompute.
    """
    total = _physical_memory()
    if total is None:  # pragma: no cover
        return _GIB
    return int(max(64 << 20, min(_GIB, total // 8)))


#: The bound of caches created without an explicit ``cache_bytes`` (see :func:`set_cache_bytes`).
_DEFAULT_CACHE_BYTES = _default_bound()

#: Containers are summed to this depth; deeper objects count as their shallow size.
_MAX_DEPTH = 6
#: At most this many items of a list, tuple, set or dict are measured; the rest are extrapolated.
_MAX_ITEMS = 1000


def set_cache_bytes(nbytes: int | None) -> int:
    """Set the default size bound of the caches of databases created from now on.

    Parameters
    ----------
    nbytes : int or None
        Bound in bytes (0 disables caching); ``None`` restores the built-in default (1 GiB, or an
        eighth of physical memory when that is smaller).

    Returns
    -------
    int
        The previous default, so that it can be restored.

    Notes
    -----
    Databases that exist already keep their bound; change it with ``db.cache.max_bytes = n``.

    Examples
    --------
    >>> from skrel.data import set_cache_bytes
    >>> previous = set_cache_bytes(256 * 2**20)
    >>> _ = set_cache_bytes(previous)
    """
    global _DEFAULT_CACHE_BYTES
    previous = _DEFAULT_CACHE_BYTES
    _DEFAULT_CACHE_BYTES = _default_bound() if nbytes is None else _check_bound(nbytes)
    return previous


def get_cache_bytes() -> int:
    """The default size bound, in bytes, of the caches of databases created from now on."""
    return _DEFAULT_CACHE_BYTES


def _check_bound(nbytes) -> int:
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise ValueError(f"A cache bound is a number of bytes >= 0 (0 disables caching), got {nbytes!r}.")
    return int(nbytes)


def estimate_nbytes(obj: Any, _depth: int = 0, _seen: set | None = None) -> int:
    """Estimated memory held by ``obj``, in bytes (see the module notes).

    Parameters
    ----------
    obj : object
        A cached value.

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> estimate_nbytes((np.zeros(10), np.zeros((2, 5), dtype=np.float32))) >= 120
    True
    """
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, (CacheStore, DatabaseCache)):  # another cache: its entries are counted there
        return 0
    declared = getattr(obj, "cache_nbytes", None) if not isinstance(obj, type) else None
    if declared is not None:
        value = declared() if callable(declared) else declared
        return int(value)
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray, np.generic)):
        return sys.getsizeof(obj)
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, pd.DataFrame):
        return int(obj.memory_usage(index=True, deep=False).sum())
    if isinstance(obj, (pd.Series, pd.Index)):
        return int(obj.memory_usage(deep=False))
    if isinstance(obj, pd.api.extensions.ExtensionArray):
        return int(obj.nbytes)
    module = type(obj).__module__ or ""
    if module.startswith("torch") and hasattr(obj, "element_size") and hasattr(obj, "numel"):
        return int(obj.numel()) * int(obj.element_size())
    if _depth >= _MAX_DEPTH:
        return sys.getsizeof(obj)
    if isinstance(obj, dict):
        return sys.getsizeof(obj) + _sum_items([x for kv in _head(obj.items()) for x in kv], len(obj) * 2,
                                               _depth, seen)
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sys.getsizeof(obj) + _sum_items(list(_head(obj)), len(obj), _depth, seen)
    if dataclasses.is_dataclass(obj):
        names = {f.name for f in dataclasses.fields(obj)}
        values = [getattr(obj, name, None) for name in names]
        extra = [v for k, v in getattr(obj, "__dict__", {}).items() if k not in names]
        return sys.getsizeof(obj) + _sum_items(values + extra, len(values) + len(extra), _depth, seen)
    # the bare object, its attributes summed here: a class's own __sizeof__ may already include
    # them (RelationalDataset's counts its database, for Dask)
    if hasattr(obj, "__dict__"):
        values = list(vars(obj).values())
        return object.__sizeof__(obj) + _sum_items(values, len(values), _depth, seen)
    if hasattr(obj, "__slots__"):
        values = [getattr(obj, s, None) for s in _slots(type(obj))]
        return object.__sizeof__(obj) + _sum_items(values, len(values), _depth, seen)
    return sys.getsizeof(obj)


def _head(iterable):
    for i, x in enumerate(iterable):
        if i == _MAX_ITEMS:
            return
        yield x


def _sum_items(items: list, total: int, depth: int, seen: set) -> int:
    if not items:
        return 0
    measured = sum(estimate_nbytes(x, depth + 1, seen) for x in items)
    if total > len(items):  # extrapolate from the first items
        measured = int(measured * total / len(items))
    return measured


def _slots(cls) -> list[str]:
    out = []
    for klass in cls.__mro__:
        slots = getattr(klass, "__slots__", ())
        out.extend([slots] if isinstance(slots, str) else slots)
    return [s for s in out if s not in ("__dict__", "__weakref__")]


_MISSING = object()


class CacheStore:
    """A thread-safe least-recently-used store bounded in bytes (shared by a database and its cuts).

    Parameters
    ----------
    max_bytes : int, optional
        Size bound in bytes (0 disables caching); the module default
        (:func:`get_cache_bytes`) when omitted.

    Attributes
    ----------
    hits, misses, evictions : int
        Lookups that found an entry, lookups that did not, entries dropped to respect the bound.
    nbytes : int
        Estimated size of the stored entries.
    """

    def __init__(self, max_bytes: int | None = None):
        self._max_bytes = _DEFAULT_CACHE_BYTES if max_bytes is None else _check_bound(max_bytes)
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()
        self._recent = threading.local()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    # ------------------------------------------------------------------ bound
    @property
    def max_bytes(self) -> int:
        """The size bound in bytes; setting it evicts at once down to the new bound."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        with self._lock:
            self._max_bytes = _check_bound(value)
            self._shrink()

    def _shrink(self) -> None:
        while self.nbytes > self._max_bytes and self._data:
            _, (_, size) = self._data.popitem(last=False)
            self.nbytes -= size
            self.evictions += 1

    # ------------------------------------------------------------------ per-thread last entry
    # The value a thread just stored, or just found with ``in``, is kept for that thread's next
    # lookup only: ``if key in cache: return cache[key]`` and ``cache[key] = v; return cache[key]``
    # then hold when the entry is evicted in between (or was too large to store). The next
    # operation of the thread releases it, so at most one entry per thread outlives the bound.
    def _remember(self, key, value) -> None:
        self._recent.item = (key, value)

    def _pop_recent(self, key):
        item = getattr(self._recent, "item", None)
        self._recent.item = None
        if item is not None and item[0] == key:
            return item[1]
        return _MISSING

    # ------------------------------------------------------------------ operations
    def lookup(self, key, count_hit: bool = True, keep: bool = False):
        """The value under ``key`` (marked most recently used), or ``_MISSING``.

        A miss is always counted; a hit only with ``count_hit`` (``key in cache`` followed by
        ``cache[key]`` counts one hit, not two). With ``keep``, a value found is kept for the
        thread's next lookup.
        """
        with self._lock:
            recalled = self._pop_recent(key)
            entry = self._data.get(key, _MISSING)
            if entry is not _MISSING:
                self._data.move_to_end(key)
                value = entry[0]
            else:
                value = recalled
            if value is _MISSING:
                self.misses += 1
                return value
            if count_hit:
                self.hits += 1
            if keep:
                self._remember(key, value)
            return value

    def store(self, key, value) -> None:
        size = estimate_nbytes(value)
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.nbytes -= old[1]
            self._remember(key, value)
            if size > self._max_bytes:
                logger.debug("cache entry %r of %d bytes exceeds the bound of %d bytes: not stored",
                             key, size, self._max_bytes)
                return
            self._data[key] = (value, size)
            self.nbytes += size
            self._shrink()

    def delete(self, key) -> bool:
        with self._lock:
            item = getattr(self._recent, "item", None)
            if item is not None and item[0] == key:
                self._recent.item = None
            old = self._data.pop(key, None)
            if old is None:
                return False
            self.nbytes -= old[1]
            return True

    def keys(self) -> list:
        with self._lock:
            return list(self._data)

    def clear(self) -> None:
        """Drop every entry (the statistics are kept)."""
        with self._lock:
            self._data.clear()
            self.nbytes = 0
            self._recent = threading.local()

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> dict:
        """``hits``, ``misses``, ``evictions``, ``nbytes``, ``max_bytes`` and ``entries``."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                    "nbytes": self.nbytes, "max_bytes": self._max_bytes, "entries": len(self._data)}


class DatabaseCache(MutableMapping):
    """One database's view of its :class:`CacheStore`: a mutable mapping keyed like a dict.

    Obtained as ``db.cache``; keys must be hashable. Entries are derived from the database's
    content, so every operation first checks that the database's tables were not changed in place
    (see :attr:`skrel.data.Database.cache`).

    Statistics (``hits``, ``misses``, ``evictions``, ``nbytes``, ``max_bytes``) are those of the
    store, shared with the databases cut from the same database.
    """

    __slots__ = ("_db",)

    def __init__(self, db):
        self._db = db

    def _ctx(self):
        db = self._db
        db._check_unchanged()
        return db._cache_store, db._cache_ns

    def __getitem__(self, key):
        store, ns = self._ctx()
        value = store.lookup((ns, key))
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key, default=None):
        store, ns = self._ctx()
        value = store.lookup((ns, key))
        return default if value is _MISSING else value

    def __contains__(self, key) -> bool:
        store, ns = self._ctx()
        return store.lookup((ns, key), count_hit=False, keep=True) is not _MISSING

    def __setitem__(self, key, value) -> None:
        store, ns = self._ctx()
        store.store((ns, key), value)

    def __delitem__(self, key) -> None:
        store, ns = self._ctx()
        if not store.delete((ns, key)):
            raise KeyError(key)

    def _own_keys(self) -> list:
        store, ns = self._ctx()
        return [k[1] for k in store.keys() if k[0] == ns]

    def __iter__(self) -> Iterator:
        return iter(self._own_keys())

    def __len__(self) -> int:
        return len(self._own_keys())

    def clear(self) -> None:
        """Drop every entry of the store: this database's, and those of databases cut from the same one."""
        self._db._cache_store.clear()

    # ------------------------------------------------------------------ statistics and bound
    @property
    def hits(self) -> int:
        return self._db._cache_store.hits

    @property
    def misses(self) -> int:
        return self._db._cache_store.misses

    @property
    def evictions(self) -> int:
        return self._db._cache_store.evictions

    @property
    def nbytes(self) -> int:
        return self._db._cache_store.nbytes

    @property
    def max_bytes(self) -> int:
        return self._db._cache_store.max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        self._db._cache_store.max_bytes = value

    def stats(self) -> dict:
        """The store's ``hits``, ``misses``, ``evictions``, ``nbytes``, ``max_bytes`` and ``entries``."""
        return self._db._cache_store.stats()

    def __repr__(self) -> str:
        s = self.stats()
        return (f"DatabaseCache(entries={s['entries']}, nbytes={s['nbytes']}, max_bytes={s['max_bytes']}, "
                f"hits={s['hits']}, misses={s['misses']}, evictions={s['evictions']})")

    def __reduce__(self):
        raise TypeError("A database cache is never pickled; pickle the Database (its cache is dropped).")
