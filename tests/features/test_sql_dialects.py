"""The SQL dialects: every spelling an engine needs, in one class per engine."""

from __future__ import annotations

import pytest

from skrel.features._definitions import AGG_PRIMITIVES, Primitive
from skrel.features._sql import DIALECTS, DUCKDB, SPARK, Dialect, DuckDBDialect, get_dialect, register_dialect


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_dialect_spells_every_primitive(name):
    dialect = get_dialect(name)
    for p in AGG_PRIMITIVES.values():
        sql = dialect.aggregate(p).format(x="v", order="o")
        assert sql and "{" not in sql.replace("{'n'", "").replace("{{", "")


def test_unknown_primitive_and_dialect_are_clear_errors():
    odd = Primitive("median", "numeric", "numeric", float("nan"), False, (), "Median")
    with pytest.raises(NotImplementedError, match="duckdb SQL dialect has no aggregate for primitive 'median'"):
        DUCKDB.aggregate(odd)
    with pytest.raises(ValueError, match="Unknown SQL dialect 'oracle'"):
        get_dialect("oracle")
    with pytest.raises(TypeError):
        register_dialect(Dialect())


def test_spellings_differ_where_the_engines_do():
    assert DUCKDB.quote('a"b') == '"a""b"' and SPARK.quote("a`b") == "`a``b`"
    assert DUCKDB.int_div("x", 1000) == "(x) // 1000" and SPARK.int_div("x", 1000) == "(x) div 1000"
    assert SPARK.literal(0.0) == "CAST(0.0 AS DOUBLE)" and DUCKDB.literal(float("nan")) == "NULL"
    assert DUCKDB.star_except("d", ["a", "b", "c"], ["b"]) == "d.* EXCLUDE (b)"
    assert SPARK.star_except("d", ["a", "b", "c"], ["b"]) == "d.a, d.c"


def test_a_new_dialect_is_one_class(shop_binary):
    """A subclass that respells a construct compiles a query the DuckDB engine runs to the same values."""
    import pandas as pd

    from skrel.features import _duckdb
    from skrel.features.dfs import DFSTransformer

    class PortableDuckDB(DuckDBDialect):
        name = "duckdb-portable"
        aggregates = {**DuckDBDialect.aggregates, "mean": "avg(CAST({x} AS DOUBLE))"}

        def int_div(self, a, b):
            return f"CAST(trunc(({a}) / {b}) AS BIGINT)"

    db, task = shop_binary
    X, _ = task.split(db, "val")
    reference = DFSTransformer(max_depth=2, windows=[30]).fit(X).transform(X)
    original = _duckdb.DUCKDB
    try:
        _duckdb.DUCKDB = register_dialect(PortableDuckDB())
        respelled = DFSTransformer(max_depth=2, windows=[30]).fit(X).transform(X)
    finally:
        _duckdb.DUCKDB = original
        DIALECTS.pop("duckdb-portable", None)
    pd.testing.assert_frame_equal(respelled, reference, check_exact=False, rtol=1e-12)
