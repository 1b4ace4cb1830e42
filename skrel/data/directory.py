"""Read a directory of Parquet or CSV files, described by a ``schema.toml``, into a :class:`~skrel.data.Database`.

The schema file names every table to read, with its keys and time column::

    # schema.toml
    dangling = "raise"                 # optional: "raise" (default) or "null", as Database's

    [tables.users]
    primary_key = "user_id"

    [tables.orders]
    primary_key = "order_id"
    time_column = "at"                 # rows become visible at this time
    foreign_keys = { user_id = "users", item_id = "items" }

    [tables.items]
    primary_key = "item_id"
    file = "catalogue.csv"             # optional: <table>.parquet or <table>.csv by default
    parse_dates = ["released"]         # optional: CSV columns to read as dates

Every key of a table is optional: a table without ``primary_key`` has none (a link or event
table), one without ``time_column`` is visible at every time. A table's file is ``file`` (relative
to the directory) or, by default, the one of ``<table>.parquet``, ``<table>.pq`` and
``<table>.csv`` that exists. Files the schema does not name are not read. Time columns are parsed
by :class:`~skrel.data.Database` (CSV text included); other CSV date columns are read as dates only
when listed in ``parse_dates``.

Every table's file must lie inside the directory, symbolic links resolved: an absolute ``file``,
one that climbs out (``"../x.csv"``), a table name that does (``[tables."../x"]``) or a link to a
file elsewhere is refused with a :class:`~skrel.data.SchemaError` naming the table and the path,
unless the caller passes ``allow_outside=True`` (a schema file may come from someone else).
:func:`save_directory` writes each table to a file named after it, with the characters that are
unsafe in a file name (``/ \\ : * ? " < > | %`` and control characters) percent-encoded (table
``"a/b"`` goes to ``a%2Fb.parquet``), and records that ``file`` in the schema, so reading back
gives the same table names.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from pathlib import Path

import pandas as pd

from ..utils import is_url
from .database import Database, SchemaError, Table

__all__ = ["load_directory", "save_directory", "schema_toml", "table_file_name", "open_database", "display_source",
           "SCHEMA_FILE"]

logger = logging.getLogger(__name__)

SCHEMA_FILE = "schema.toml"
_TABLE_KEYS = {"primary_key", "time_column", "foreign_keys", "file", "parse_dates"}
_SUFFIXES = (".parquet", ".pq", ".csv")
# Characters save_directory percent-encodes in file names: path separators, those Windows forbids, and % itself.
_UNSAFE_IN_FILE_NAMES = frozenset('/\\:*?"<>|%')


def _line_of(text: str, header: str, key: str | None = None) -> int | None:
    """Line of ``[header]`` (or of ``key = ...`` inside that section) in ``text``."""
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        if re.match(rf"^\s*\[\s*{re.escape(header)}\s*\]\s*(#.*)?$", line):
            start = i
            break
    if start is None:
        return None
    if key is None:
        return start + 1
    for j in range(start + 1, len(lines)):
        if re.match(r"^\s*\[", lines[j]):
            break
        if re.match(rf"^\s*{re.escape(key)}\s*=", lines[j]):
            return j + 1
    return start + 1


def load_directory(path, *, schema_file: str = SCHEMA_FILE, allow_outside: bool = False) -> Database:
    """Read the tables a directory's ``schema.toml`` describes.

    Parameters
    ----------
    path : str or path-like
        Directory holding ``schema_file`` and the tables' Parquet or CSV files.
    schema_file : str, default="schema.toml"
        Name of the schema file inside ``path`` (see the module notes for its format).
    allow_outside : bool, default=False
        Read table files that lie outside ``path`` (an absolute ``file``, one with ``..``, a
        symbolic link to another directory). By default they are refused: only trust a schema
        file that names them.

    Returns
    -------
    Database

    Raises
    ------
    FileNotFoundError
        ``path`` is not a directory, it has no schema file, or a table's file is missing.
    SchemaError
        The schema file is not valid TOML, has an unknown or invalid key (the message names the
        table, the key, the file and its line), a table's file lies outside ``path`` (without
        ``allow_outside``), or the data fail :class:`Database` validation.

    Examples
    --------
    >>> db = load_directory("shop/")  # doctest: +SKIP
    >>> db["orders"].time_col  # doctest: +SKIP
    'at'
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{str(root)!r} is not a directory; give a directory holding {schema_file}.")
    schema_path = root / schema_file
    if not schema_path.is_file():
        raise FileNotFoundError(
            f"{str(root)!r} has no {schema_file}: write one naming each table's primary_key, time_column "
            "and foreign_keys (see skrel.data.directory)."
        )
    text = schema_path.read_text(encoding="utf-8")
    source = str(schema_path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"{source} is not valid TOML: {exc}.") from None

    unknown = sorted(set(raw) - {"tables", "dangling"})
    if unknown:
        raise SchemaError(f"{source}: unknown top-level key(s) {unknown}; the file holds [tables.NAME] sections "
                          "and optionally dangling.")
    dangling = raw.get("dangling", "raise")
    if dangling not in ("raise", "null"):
        line = re.search(r"^\s*dangling\s*=", text, flags=re.MULTILINE)
        at = f" line {text.count(chr(10), 0, line.start()) + 1}" if line else ""
        raise SchemaError(f"{source}{at}: dangling must be \"raise\" or \"null\", got {dangling!r}.")
    tables = raw.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise SchemaError(f"{source} describes no table: add a [tables.NAME] section per table.")

    built: dict[str, Table] = {}
    for name, spec in tables.items():
        header = f"tables.{name}"

        def where(key=None, _header=header):
            line = _line_of(text, _header, key)
            return f"{source}" + (f" line {line}" if line else "") + f", table {name!r}"

        if not isinstance(spec, dict):
            raise SchemaError(f"{where()}: expected a [tables.{name}] section, got {spec!r}.")
        bad = sorted(set(spec) - _TABLE_KEYS)
        if bad:
            raise SchemaError(f"{where(bad[0])}: unknown key(s) {bad}; a table section holds {sorted(_TABLE_KEYS)}.")
        for key in ("primary_key", "time_column", "file"):
            if key in spec and (not isinstance(spec[key], str) or not spec[key]):
                raise SchemaError(f"{where(key)}: {key} must be a non-empty string, got {spec[key]!r}.")
        fkeys = spec.get("foreign_keys", {})
        if not isinstance(fkeys, dict) or not all(isinstance(v, str) for v in fkeys.values()):
            raise SchemaError(
                f"{where('foreign_keys')}: foreign_keys must be a table {{column = \"referenced_table\"}}, got {fkeys!r}."
            )
        for col, ref in fkeys.items():
            if ref not in tables:
                raise SchemaError(
                    f"{where('foreign_keys')}: foreign key {name}.{col} references {ref!r}, which the schema "
                    f"does not describe; tables are {sorted(tables)}."
                )
        parse_dates = spec.get("parse_dates", [])
        if not isinstance(parse_dates, list) or not all(isinstance(c, str) for c in parse_dates):
            raise SchemaError(f"{where('parse_dates')}: parse_dates must be a list of column names, got {parse_dates!r}.")

        file = _table_file(root, name, spec.get("file"), where, allow_outside)
        df = _read(file, parse_dates, where)
        for key, cols in (("primary_key", [spec.get("primary_key")]), ("time_column", [spec.get("time_column")]),
                          ("foreign_keys", list(fkeys)), ("parse_dates", [])):
            absent = [c for c in cols if c is not None and c not in df.columns]
            if absent:
                raise SchemaError(
                    f"{where(key)}: {key} names column(s) {absent} that {file.name} lacks; "
                    f"its columns are {list(df.columns)}."
                )
        built[name] = Table(df, spec.get("primary_key"), dict(fkeys), spec.get("time_column"))
        logger.info("read table %s from %s: %d rows", name, file, len(df))
    return Database(built, dangling=dangling)


def _toml(text) -> str:
    # a TOML basic string: JSON's escapes are TOML's
    return json.dumps(str(text), ensure_ascii=False)


def schema_toml(db: Database, files=None) -> str:
    """The ``schema.toml`` text describing ``db``'s tables (keys, time columns), for
    :func:`load_directory` and :meth:`Database.from_parquet`.

    Parameters
    ----------
    db : Database
    files : dict of str to str, optional
        Each table's file, relative to the directory (written as ``file``); none by default,
        when the files are ``<table>.parquet`` (see :func:`table_file_name`).

    Returns
    -------
    str
    """
    files = dict(files or {})
    lines = []
    for name, t in db.tables.items():
        lines.append(f"[tables.{_toml(name)}]")
        if name in files:
            lines.append(f"file = {_toml(files[name])}")
        if t.pkey:
            lines.append(f"primary_key = {_toml(t.pkey)}")
        if t.time_col:
            lines.append(f"time_column = {_toml(t.time_col)}")
        if t.fkeys:
            lines.append("foreign_keys = { " + ", ".join(f"{_toml(c)} = {_toml(r)}" for c, r in t.fkeys.items()) + " }")
    return "\n".join(lines) + "\n"


def table_file_name(name: str, suffix: str = ".parquet") -> str:
    """The file name :func:`save_directory` gives table ``name``: the name, with the characters unsafe
    in a file name (path separators, ``: * ? " < > |``, ``%`` itself and control characters)
    percent-encoded as their UTF-8 bytes, plus ``suffix``.

    Examples
    --------
    >>> table_file_name("../escape"), table_file_name("orders.v2")
    ('..%2Fescape.parquet', 'orders.v2.parquet')
    """
    out = []
    for ch in name:
        if ch in _UNSAFE_IN_FILE_NAMES or ord(ch) < 32 or ord(ch) == 127:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out) + suffix


def save_directory(db: Database, path, *, schema_file: str = SCHEMA_FILE) -> Path:
    """Write ``db`` as a directory :func:`load_directory` and :meth:`Database.from_parquet` read:
    one Parquet file per table, named by :func:`table_file_name` (``<table>.parquet``, unsafe
    characters percent-encoded, so every file lies inside ``path``), and a ``schema.toml`` that
    records each table's ``file``.

    Parameters
    ----------
    db : Database
        Tables that stay in files are read into memory to be written.
    path : str or path-like
        The directory (created if missing; files of the same names are replaced).
    schema_file : str, default="schema.toml"

    Returns
    -------
    pathlib.Path
        The directory.
    """
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    files = {name: table_file_name(name) for name in db.tables}
    for name, t in db.tables.items():
        t.df.to_parquet(root / files[name], index=False)
    (root / schema_file).write_text(schema_toml(db, files))
    return root


def open_database(source, *, sql_schema: str | None = None) -> Database:
    """A :class:`Database` from a SQLAlchemy URL, a directory with a ``schema.toml``, or a SQLite file.

    Parameters
    ----------
    source : str or path-like
        ``"dialect://..."`` (for example ``sqlite:///shop.db`` or
        ``postgresql://user:password@host/db``): read with :func:`skrel.data.from_sql`, keys
        from the database's constraints and time columns inferred. A directory: read with
        :func:`load_directory`. An existing file ending in ``.db``, ``.sqlite`` or ``.sqlite3``:
        read as a SQLite database.
    sql_schema : str, optional
        Database schema to read from a URL (a PostgreSQL schema); the default schema otherwise.

    Returns
    -------
    Database
    """
    from .sql import from_sql

    text = str(source)
    if "://" in text:
        return from_sql(text, schema=sql_schema)
    path = Path(text)
    if sql_schema is not None:
        raise ValueError(f"sql_schema={sql_schema!r} applies to a database URL, not to {text!r}.")
    if path.is_dir():
        return load_directory(path)
    if path.is_file() and path.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return from_sql(f"sqlite:///{path.resolve()}")
    raise FileNotFoundError(
        f"{text!r} is neither a database URL (dialect://...), a directory with a {SCHEMA_FILE}, nor a SQLite "
        "file (.db, .sqlite, .sqlite3)."
    )


def display_source(source) -> str:
    """``source`` as it may be shown or logged: a URL's password is masked."""
    text = str(source)
    if "://" not in text:
        return text
    try:
        from sqlalchemy.engine import make_url

        return make_url(text).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by from_sql; never echo it with a password
        return text.split("://", 1)[0] + "://..."


def inside_directory(root, file: str, allow_outside: bool, where: str) -> str:
    """``file`` (from a schema file) joined to the directory ``root``, refused when it lies outside it.

    ``root`` is a local directory or an fsspec URL. Outside means: an absolute path or a URL, or a
    relative path that leaves ``root`` once ``..`` and (for a local directory) symbolic links are
    resolved. ``allow_outside`` takes such paths as they are (a relative one joined to ``root``).
    Raises :class:`SchemaError` naming ``where`` (the schema file and the table) and the path.
    """
    import posixpath


    root = str(root)
    hint = ("Put the file inside the directory and name it relative to it, or pass allow_outside=True if you "
            "trust this schema file.")
    if is_url(file) or Path(file).is_absolute() or posixpath.isabs(file):
        if allow_outside:
            return file
        raise SchemaError(f"{where}: the file {file!r} is an absolute path or a URL, outside the directory "
                          f"{root!r}. {hint}")
    if is_url(root):
        scheme, rest = root.split("://", 1)
        base = posixpath.normpath("/" + rest)
        target = posixpath.normpath(posixpath.join(base, file))
        # the URL of the normalised path ("file:///tmp/x" keeps its third slash, "s3://bucket/x" has none)
        joined = f"{scheme}://{target if rest.startswith('/') else target[1:]}"
        if not allow_outside and not target.startswith(base.rstrip("/") + "/"):
            raise SchemaError(f"{where}: the file {file!r} resolves to {joined}, outside the directory {root!r}. "
                              f"{hint}")
        return joined
    joined = Path(root) / file
    if not allow_outside:
        base, target = Path(root).resolve(), joined.resolve()
        if not target.is_relative_to(base):
            raise SchemaError(f"{where}: the file {file!r} resolves to {str(target)!r} (symbolic links followed), "
                              f"outside the directory {str(base)!r}. {hint}")
    return str(joined)


def _table_file(root: Path, name: str, file: str | None, where, allow_outside: bool = False) -> Path:
    if file is not None:
        path = Path(inside_directory(root, file, allow_outside, where("file")))
        if not path.is_file():
            raise FileNotFoundError(f"{where('file')}: file {str(path)!r} does not exist.")
        if path.suffix.lower() not in _SUFFIXES:
            raise SchemaError(f"{where('file')}: {path.name} is neither Parquet (.parquet, .pq) nor CSV (.csv).")
        return path
    candidates = [Path(inside_directory(root, f"{name}{suffix}", allow_outside, where())) for suffix in _SUFFIXES]
    found = [path for path in candidates if path.is_file()]
    if not found:
        raise FileNotFoundError(
            f"{where()}: no file {name}.parquet, {name}.pq or {name}.csv in {str(root)!r}; add one or set file = \"...\"."
        )
    if len(found) > 1:
        raise SchemaError(f"{where()}: several files {[p.name for p in found]}; choose one with file = \"...\".")
    return found[0]


def _read(file: Path, parse_dates: list[str], where) -> pd.DataFrame:
    try:
        if file.suffix.lower() == ".csv":
            df = pd.read_csv(file)
        else:
            df = pd.read_parquet(file)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise SchemaError(f"{where('file')}: cannot read {file}: {exc}") from None
    for col in parse_dates:
        if col not in df.columns:
            raise SchemaError(f"{where('parse_dates')}: parse_dates names column {col!r} that {file.name} lacks; "
                              f"its columns are {list(df.columns)}.")
        try:
            df[col] = pd.to_datetime(df[col], format="mixed")
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"{where('parse_dates')}: column {col!r} of {file.name} does not parse as dates: {exc}") from None
    return df
