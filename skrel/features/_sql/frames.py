"""The rows a compiled query reads (distinct (entity, cutoff) pairs) and the assembly of its
results into one feature frame; the same for every engine."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from .._definitions import Schema

__all__ = ["frame_rows", "run_queries"]

logger = logging.getLogger("skrel.features.sql")


def frame_rows(db, schema: Schema, entity_table: str, entity_ids, cutoffs):
    """The distinct (entity, cutoff) pairs of the rows, as the compiled query reads them.

    Returns ``(frame, codes)``: ``frame`` has ``__r`` (0, 1, ...), ``__key`` (typed as the
    entity's primary key) and ``__cut`` (int64 nanoseconds); row ``i`` is pair ``codes[i]``.
    """
    ids = pd.Series(np.asarray(entity_ids))
    cuts = pd.Series(np.asarray(cutoffs, dtype="datetime64[ns]").view("int64"))
    pairs = pd.DataFrame({"k": ids, "c": cuts})
    codes, uniq = pd.factorize(pd.MultiIndex.from_frame(pairs))
    keys = uniq.get_level_values(0).to_numpy()
    etab = db[entity_table]
    frame_of = etab.schema_frame if hasattr(etab, "schema_frame") else etab.df
    pk_dtype = frame_of[schema.pkeys[entity_table]].dtype
    if pk_dtype.kind in "iu":
        keys = keys.astype(pk_dtype)
    frame = pd.DataFrame({"__r": np.arange(len(uniq), dtype=np.int64),
                          "__key": keys,
                          "__cut": uniq.get_level_values(1).to_numpy().astype(np.int64)})
    return frame, codes


def run_queries(execute, compiled, queries, features, frame: pd.DataFrame, codes, block_rows=None, dtype="float64",
                progress=None, engine: str = "DuckDB") -> pd.DataFrame:
    """Run the compiled queries over blocks of ``frame`` and assemble the feature frame.

    ``execute(sql, part)`` runs one query over the rows ``part`` of the frame and returns a
    mapping of its output columns (``__r``, ``o0``, ...) to arrays; ``compiled`` is a list of
    ``(sql, decode)`` from :func:`~.compiler.compile_features`, one per query of ``queries``.
    """
    n = len(frame)
    block = n if not block_rows else max(1, int(block_rows))
    position = {f: j for j, f in enumerate(features)}
    numeric = [f.logical != "categorical" for f in features]
    num_index = np.cumsum(numeric) - 1
    values = np.empty((n, int(sum(numeric))), dtype=dtype)
    objects: dict[int, np.ndarray] = {}
    for qi, ((sql, decode), qfeats) in enumerate(zip(compiled, queries)):
        tq = time.perf_counter()
        for lo in range(0, n, block):
            part = frame.iloc[lo:lo + block]
            res = execute(sql, part)
            if len(res["__r"]) != len(part):  # pragma: no cover - a bug, not a user error
                raise RuntimeError(f"{engine} returned {len(res['__r'])} rows for {len(part)} rows.")
            rows = np.asarray(res["__r"]).astype(np.int64) - lo
            for i, f in enumerate(qfeats):
                j = position[f]
                v = res[f"o{i}"]
                if i in decode:
                    v = _decode(v, decode[i])
                if numeric[j]:
                    values[lo + rows, num_index[j]] = _floats(v)
                else:
                    col = objects.setdefault(j, np.full(n, None, dtype=object))
                    col[lo + rows] = _strings_or_none(v)
            if progress is not None:
                progress(len(qfeats) * len(part) / n)
        logger.info("%s query %d/%d: %d features x %d rows in %.1fs", engine, qi + 1, len(compiled), len(qfeats), n,
                    time.perf_counter() - tq)
    out = pd.DataFrame(values[codes], columns=[f.name for f, k in zip(features, numeric) if k], copy=False)
    del values
    if objects:
        for j, col in sorted(objects.items(), key=lambda kv: kv[0]):
            out.insert(j, features[j].name, col[codes], allow_duplicates=True)
    return out


def _floats(v) -> np.ndarray:
    if isinstance(v, np.ma.MaskedArray):
        return v.astype(np.float64).filled(np.nan)
    return np.asarray(v, dtype=np.float64)


def _strings_or_none(v) -> np.ndarray:
    if isinstance(v, np.ma.MaskedArray):
        out = v.data.astype(object)
        out[np.ma.getmaskarray(v)] = None
        return out
    out = np.asarray(v, dtype=object)
    return np.where(pd.isna(out), None, out)


def _decode(v, cats: np.ndarray) -> np.ndarray:
    """Category codes (possibly NULL) back to strings (None when missing)."""
    codes = _floats(v)
    missing = np.isnan(codes)
    if not len(cats):
        return np.full(len(codes), None, dtype=object)
    values = cats[np.where(missing, 0, codes).astype(np.int64)]
    return np.where(missing, None, values)
