"""Tables that stay in their Parquet files: validation by SQL on the files, DFS (DuckDB) reading
them where they lie with the values of the in-memory database, lazy cuts, small pickles."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features"))
from conftest import shop_in_memory_files  # noqa: E402
from dfs_cases import assert_frames_equal, make_market, market_rows, write_parquet  # noqa: E402

from skrel.data import Database, RelationalDataset, SchemaError  # noqa: E402
from skrel.data.files import FileTable  # noqa: E402
from skrel.features import DFSTransformer  # noqa: E402


def write(db: Database, root: Path, **overrides) -> Path:
    """Each table to ``root/<name>.parquet`` and a schema.toml."""
    return write_parquet(db, root, overrides)


def test_large_tables_stay_in_files_and_dfs_values_match(tmp_path):
    mem = make_market()
    db = Database.from_parquet(write(mem, tmp_path / "m"), memory_rows=20)  # orders, reviews stay in files
    assert isinstance(db["orders"], FileTable) and isinstance(db["reviews"], FileTable)
    assert not isinstance(db["users"], FileTable)
    Xm = market_rows(mem)
    X = RelationalDataset(db, "users", Xm.entity_ids, Xm.cutoffs)
    for depth in (1, 2):
        a = DFSTransformer(max_depth=depth, windows=[30]).fit(Xm).transform(Xm)
        b = DFSTransformer(max_depth=depth, windows=[30]).fit(X).transform(X)
        assert_frames_equal(a, b)
    assert not db["orders"].loaded and not db["reviews"].loaded  # read where they lie, never loaded
    assert db.last_time() == mem.last_time() and len(db["orders"]) == len(mem["orders"])
    # a cut is lazy, and the same rows as the in-memory cut
    t = pd.Timestamp("2021-06-01")
    cut = db.upto(t)
    assert isinstance(cut["orders"], FileTable) and len(cut["orders"]) == len(mem.upto(t)["orders"])
    assert not cut["orders"].loaded
    pd.testing.assert_frame_equal(cut["orders"].df.reset_index(drop=True),
                                  mem.upto(t)["orders"].df.reset_index(drop=True), check_dtype=False)
    # pickles carry the path, not the rows
    assert len(pickle.dumps(db["orders"])) < len(pickle.dumps(mem["orders"].df)) + 4000
    back = pickle.loads(pickle.dumps(db))
    assert back.fingerprint == db.fingerprint and not back["orders"].loaded


def test_upto_is_exact_to_the_nanosecond(tmp_path):
    at = pd.to_datetime(["2020-01-01 00:00:00.000000300", "2020-01-01 00:00:00.000000700", None])
    frame = pd.DataFrame({"id": [0, 1, 2], "at": at})
    frame.to_parquet(tmp_path / "t.parquet")
    tab = FileTable(tmp_path / "t.parquet", pkey="id", time_col="at").cut("2020-01-01 00:00:00.000000500")
    assert tab.query("SELECT id FROM {t}")["id"].tolist() == [0] == tab.df["id"].tolist()
    assert len(tab) == 1


def test_labels_run_on_files(tmp_path, shop_binary):
    mem, task = shop_binary
    db = Database.from_parquet(write(mem, tmp_path / "s"), memory_rows=100)
    assert isinstance(db["orders"], FileTable)
    Xa, ya = task.split(mem, "train")
    Xb, yb = task.split(db, "train")
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(Xa.cutoffs, Xb.cutoffs)
    a = DFSTransformer(max_depth=2, windows=[60]).fit(Xa).transform(Xa)
    b = DFSTransformer(max_depth=2, windows=[60]).fit(Xb).transform(Xb)
    assert_frames_equal(a, b)


def test_fsspec_path(shop_binary):
    mem, _ = shop_binary
    with shop_in_memory_files(mem, "skrel-test-shop") as db:
        assert all(isinstance(db[n], FileTable) for n in db)
        X = RelationalDataset(db, "users", np.arange(10), np.full(10, np.datetime64("2021-01-01", "ns")))
        Xm = RelationalDataset(mem, "users", X.entity_ids, X.cutoffs)
        assert_frames_equal(DFSTransformer(max_depth=1).fit(Xm).transform(Xm),
                            DFSTransformer(max_depth=1).fit(X).transform(X))


def test_validation_runs_on_the_files_and_names_the_problem(tmp_path):
    mem = make_market()
    orders = mem["orders"].df
    dup = orders.copy()
    dup.loc[3, "order_id"] = dup.loc[2, "order_id"]
    with pytest.raises(SchemaError, match=r"Primary key orders\.order_id has 1 duplicate.*first: \[2\]"):
        Database.from_parquet(write(mem, tmp_path / "a", orders=dup), memory_rows=0)
    bad = orders.copy()
    bad["pid"] = bad["pid"].where(bad.index != 5, 99)
    with pytest.raises(SchemaError, match=r"Foreign key orders\.pid has 1 value.*products\.pid \(first: \[99\]\)"):
        Database.from_parquet(write(mem, tmp_path / "b", orders=bad), memory_rows=0)
    text = orders.copy()
    text["at"] = text["at"].astype(str)
    with pytest.raises(SchemaError, match=r"Time column orders\.at .* must be a Parquet timestamp"):
        Database.from_parquet(write(mem, tmp_path / "c", orders=text), memory_rows=0)
    with pytest.raises(ValueError, match="dangling='raise' only"):
        Database.from_parquet(tmp_path / "a", dangling="null")
    with pytest.raises(FileNotFoundError, match="no schema file"):
        Database.from_parquet(tmp_path / "nowhere")
