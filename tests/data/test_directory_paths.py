"""Directory databases stay inside their directory: table names are escaped when written, and a schema
that names a file outside the directory is refused unless the caller allows it."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from skrel.data import Database, SchemaError
from skrel.data.directory import load_directory, save_directory, table_file_name
from skrel.data.files import FileTable


def awkward_db() -> Database:
    parents = pd.DataFrame({"pid": [1, 2]})
    children = pd.DataFrame({"cid": [1, 2, 3], "pid": [1, 2, 2],
                             "at": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"])})
    return Database({"../escape": parents, "a/b": children, "100%": pd.DataFrame({"k": [0]})},
                    primary_keys={"../escape": "pid", "a/b": "cid"}, foreign_keys={"a/b": {"pid": "../escape"}},
                    time_columns={"a/b": "at"})


def files_under(root) -> set:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_awkward_table_names_round_trip_inside_the_directory(tmp_path):
    db = awkward_db()
    out = save_directory(db, tmp_path / "out")
    assert files_under(tmp_path) == {"out/..%2Fescape.parquet", "out/a%2Fb.parquet", "out/100%25.parquet",
                                     "out/schema.toml"}  # nothing beside out/, no subdirectory a/
    assert 'file = "..%2Fescape.parquet"' in (out / "schema.toml").read_text()
    for back in (load_directory(out), Database.from_parquet(out), Database.from_parquet(out, memory_rows=0)):
        assert back.table_names == db.table_names
        for name in db:
            assert (back[name].pkey, back[name].fkeys, back[name].time_col) == (
                db[name].pkey, db[name].fkeys, db[name].time_col)
            pd.testing.assert_frame_equal(back[name].df, db[name].df)
    assert table_file_name("é:x") == "é%3Ax.parquet" and table_file_name("tab\there") == "tab%09here.parquet"


@pytest.fixture
def layout(tmp_path):
    """root/ will hold a schema naming one table; x.parquet and y.csv lie beside root/, outside it."""
    root = tmp_path / "root"
    root.mkdir()
    frame = pd.DataFrame({"id": [1, 2]})
    frame.to_parquet(tmp_path / "x.parquet", index=False)
    frame.to_csv(tmp_path / "y.csv", index=False)
    return root, frame


def schema(root, section: str, file: str | None = None) -> None:
    text = f'[tables."{section}"]\nprimary_key = "id"\n'
    if file is not None:
        text += f'file = "{file}"\n'
    (root / "schema.toml").write_text(text)


@pytest.mark.parametrize(
    "section, file, match",
    [
        ("../x", None, r"table '\.\./x': the file '\.\./x\.parquet' resolves to '.*/x\.parquet' .*outside the directory"),
        ("t", "{outside}/y.csv", r"table 't': the file '/.*/y\.csv' is an absolute path or a URL, outside"),
        ("t", "../y.csv", r"table 't': the file '\.\./y\.csv' resolves to '.*/y\.csv'.*outside the directory"),
        ("t", "sub/../../y.csv", r"table 't': the file 'sub/\.\./\.\./y\.csv' resolves to"),
        ("t", "file:///etc/x.parquet", r"table 't': the file 'file:///etc/x\.parquet' is an absolute path or a URL"),
    ],
)
def test_files_outside_the_directory_are_refused(layout, section, file, match):
    root, frame = layout
    if file is not None:
        file = file.replace("{outside}", str(root.parent))
    schema(root, section, file)
    with pytest.raises(SchemaError, match=r"schema\.toml, " + match):
        load_directory(root)
    if file is None or file.endswith(".parquet"):  # from_parquet reads Parquet files only
        with pytest.raises(SchemaError, match=match):
            Database.from_parquet(root)


def test_allow_outside_reads_them(layout):
    root, frame = layout
    for section, file in (("../x", None), ("t", str(root.parent / "y.csv")), ("t", "../y.csv"),
                          ("t", "../x.parquet")):
        schema(root, section, file)
        db = load_directory(root, allow_outside=True)
        pd.testing.assert_frame_equal(db[section].df, frame)
    schema(root, "t", str(root.parent / "x.parquet"))
    pd.testing.assert_frame_equal(Database.from_parquet(root, allow_outside=True)["t"].df, frame)
    assert isinstance(Database.from_parquet(root, allow_outside=True, memory_rows=0)["t"], FileTable)
    schema(root, "../x")
    assert Database.from_parquet(root, allow_outside=True)["../x"].df["id"].tolist() == [1, 2]


def test_from_parquet_refuses_the_same_paths(layout):
    root, _ = layout
    for section, file, match in (("../x", None, r"table '\.\./x': the file '\.\./x\.parquet' resolves to"),
                                 ("t", "../x.parquet", r"table 't': the file '\.\./x\.parquet' resolves to"),
                                 ("t", str(root.parent / "x.parquet"), r"table 't': .* is an absolute path")):
        schema(root, section, file)
        with pytest.raises(SchemaError, match=match):
            Database.from_parquet(root)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_symbolic_link_out_of_the_directory_is_refused(layout):
    root, frame = layout
    (root / "t.parquet").symlink_to(root.parent / "x.parquet")
    schema(root, "t")
    with pytest.raises(SchemaError, match=r"table 't': the file 't\.parquet' resolves to '.*/x\.parquet' "
                                          r"\(symbolic links followed\), outside"):
        load_directory(root)
    with pytest.raises(SchemaError, match="symbolic links followed"):
        Database.from_parquet(root)
    pd.testing.assert_frame_equal(load_directory(root, allow_outside=True)["t"].df, frame)
    # a link that stays inside the directory is fine
    (root / "data").mkdir()
    frame.to_parquet(root / "data" / "u.parquet", index=False)
    (root / "u.parquet").symlink_to(root / "data" / "u.parquet")
    schema(root, "u")
    pd.testing.assert_frame_equal(load_directory(root)["u"].df, frame)


def test_a_url_directory_keeps_its_files_inside(layout):
    import fsspec

    _, frame = layout
    fs = fsspec.filesystem("memory")
    base = "memory://skrel-test-paths"
    with fs.open(f"{base}/x.parquet", "wb") as fh:
        frame.to_parquet(fh, index=False)
    with fs.open(f"{base}/root/in.parquet", "wb") as fh:
        frame.to_parquet(fh, index=False)
    try:
        spec = {"tables": {"t": {"primary_key": "id", "file": "../x.parquet"}}}
        with pytest.raises(SchemaError, match=r"table 't': the file '\.\./x\.parquet' resolves to "
                                              r"memory://skrel-test-paths/x\.parquet, outside"):
            Database.from_parquet(f"{base}/root", spec)
        assert Database.from_parquet(f"{base}/root", spec, allow_outside=True)["t"].df["id"].tolist() == [1, 2]
        inside = {"tables": {"t": {"primary_key": "id", "file": "sub/../in.parquet"}}}
        assert Database.from_parquet(f"{base}/root", inside)["t"].df["id"].tolist() == [1, 2]
    finally:
        fs.rm(base, recursive=True)
