"""The SQL compiler of deep feature synthesis, one plan for every engine.

- :mod:`.compiler`: feature definitions -> one query (:func:`compile_features`), written through a
  dialect; :func:`query_groups` (the units a query is made of).
- :mod:`.dialect`: :class:`Dialect`, every spelling that differs between engines (aggregates keyed
  by primitive, quoting, literals, how a table is read); :func:`register_dialect`.
- :mod:`.duckdb`, :mod:`.spark`: the two dialects (:data:`DUCKDB`, :data:`SPARK`).
- :mod:`.frames`: the (entity, cutoff) rows a query reads and the assembly of its results.

The engines (:mod:`skrel.features._duckdb`, :mod:`skrel.features._spark`) own connections and
sessions only. Adding an engine is one :class:`Dialect` subclass (plus its tests) and an engine
function that runs the compiled SQL.
"""

from .compiler import EngineQueries, compile_features, plan_engine_queries, query_groups
from .dialect import DIALECTS, Dialect, get_dialect, register_dialect
from .duckdb import DUCKDB, DuckDBDialect, quote_identifier
from .frames import frame_rows, run_queries
from .spark import SPARK, SparkDialect

__all__ = ["compile_features", "query_groups", "plan_engine_queries", "EngineQueries", "Dialect", "DIALECTS", "get_dialect", "register_dialect", "DUCKDB",
           "DuckDBDialect", "SPARK", "SparkDialect", "quote_identifier", "frame_rows", "run_queries"]
