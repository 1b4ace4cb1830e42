"""SQL identifiers."""

from __future__ import annotations

__all__ = ["quote_identifier"]


def quote_identifier(name) -> str:
    """``name`` as a quoted SQL identifier (DuckDB, PostgreSQL, SQLite: the SQL standard's double
    quotes, a double quote inside doubled), so that any table or column name, ``x"; DROP TABLE
    y; --`` included, is read as a name and never as SQL.

    >>> print(quote_identifier("order id"))
    "order id"
    """
    return '"' + str(name).replace('"', '""') + '"'
