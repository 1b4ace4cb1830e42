"""`skrel fit --save` then `skrel predict`: the same predictions as the Python API, in this process, in a
fresh one and through a SQL copy of the data (written back into it); and file options that name a
missing directory (issue 18) fail before any work."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from conftest import make_shop, postgres_schema, shop_task_toml
from skrel.cli import main
from skrel.data import Database
from skrel.datasets import load_flights
from skrel.persist import load_model

ROOT = Path(__file__).resolve().parents[1]
AT = "2013-11-01"  # plane-cancel's test timestamp
DFS = ["--model", "dfs", "--set", "max_depth=1", "n_estimators=50"]


def run(capsys, argv) -> str:
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("skrel: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("skrel: error: "), err
    return lines[0]


def _sa_type(dtype):
    if pd.api.types.is_bool_dtype(dtype):
        return sa.Boolean
    if pd.api.types.is_integer_dtype(dtype):
        return sa.BigInteger
    if pd.api.types.is_float_dtype(dtype):
        return sa.Float
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return sa.DateTime
    return sa.String


def write_sql(db: Database, engine, schema=None) -> None:
    """``db`` as SQL tables with its primary and foreign keys as constraints."""
    md = sa.MetaData(schema=schema)
    prefix = f"{schema}." if schema else ""
    for name, t in db.tables.items():
        cols = [sa.Column(c, _sa_type(t.df[c].dtype),
                          *([sa.ForeignKey(f"{prefix}{t.fkeys[c]}.{db[t.fkeys[c]].pkey}")] if c in t.fkeys else []),
                          primary_key=c == t.pkey) for c in t.df.columns]
        sa.Table(name, md, *cols)
    md.create_all(engine)
    with engine.begin() as conn:
        for name, t in db.tables.items():
            t.df.to_sql(name, conn, schema=schema, if_exists="append", index=False)


@pytest.fixture(scope="module")
def flights():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_flights()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """`skrel fit flights plane-cancel --model dfs ... --save m.joblib` (small DFS settings: fast)."""
    path = tmp_path_factory.mktemp("model") / "m.joblib"
    assert main(["fit", "flights", "plane-cancel", *DFS, "--save", str(path), "--json"]) == 0
    return path


def test_fit_save_predict_equals_the_python_api(capsys, tmp_path, model_file, flights):
    from skrel.evaluation import fit_and_report

    db, tasks = flights
    out = tmp_path / "p.parquet"
    text = run(capsys, ["predict", "--model", str(model_file), "flights", "--at", AT, "--out", str(out)])
    assert "403 predictions for planes at 2013-11-01 00:00:00 (plane-cancel on flights)" in text
    got = pd.read_parquet(out)
    assert list(got.columns) == ["tailnum", "cutoff", "prediction", "proba_0", "proba_1"] and len(got) == 403
    # the loaded model, from Python
    pd.testing.assert_frame_equal(got, load_model(model_file).predict_frame(db, AT))
    # the same fit from Python, never saved
    _, est = fit_and_report("flights", db, tasks["plane-cancel"], "dfs",
                            {"max_depth": 1, "n_estimators": 50, "random_state": 0}, return_estimator=True)
    pd.testing.assert_frame_equal(got, est.predict_frame(db, AT))
    card = load_model(model_file).model_card_
    assert card["scores"]["metric"] == "roc_auc" and 0.5 < card["scores"]["test"] <= 1.0
    # and in a fresh process
    fresh = tmp_path / "fresh.parquet"
    code = ("import sys, warnings; warnings.simplefilter('ignore'); from skrel.persist import load_model; "
            "from skrel.datasets import load_flights; db, _ = load_flights(); "
            f"load_model(sys.argv[1]).predict_frame(db, {AT!r}).to_parquet(sys.argv[2])")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", code, str(model_file), str(fresh)], check=True, env=env, cwd=ROOT)
    pd.testing.assert_frame_equal(pd.read_parquet(fresh), got)
    # CSV, and --entities (a CSV of tail numbers: kept as strings)
    ids = tmp_path / "planes.csv"
    pd.DataFrame({"tailnum": got["tailnum"].iloc[[5, 1]]}).to_csv(ids, index=False)
    csv = tmp_path / "p.csv"
    run(capsys, ["predict", "--model", str(model_file), "flights", "--at", AT, "--entities", str(ids), "--out",
                 str(csv), "--json"])
    some = pd.read_csv(csv, parse_dates=["cutoff"])
    pd.testing.assert_frame_equal(some, got.iloc[[5, 1]].reset_index(drop=True))


def test_predict_through_a_sqlite_copy_and_write_back(capsys, tmp_path, model_file, flights):
    db, _ = flights
    path = tmp_path / "flights.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    write_sql(db, engine)
    engine.dispose()
    url = f"sqlite:///{path}"
    expected = load_model(model_file).predict_frame(db, AT)
    run(capsys, ["predict", "--model", str(model_file), "--db", url, "--at", AT, "--out", "sql:predictions"])
    pd.testing.assert_frame_equal(pd.read_sql_table("predictions", url), expected)
    # never overwritten silently; --replace does
    assert main(["predict", "--model", str(model_file), "--db", url, "--at", "2013-11-15", "--out",
                 "sql:predictions"]) == 2
    assert "Table 'predictions' already exists" in one_error_line(capsys)
    pd.testing.assert_frame_equal(pd.read_sql_table("predictions", url), expected)
    # a SQLite file works as --db too; the predictions table now in it is not part of the model's schema
    run(capsys, ["predict", "--model", str(model_file), "--db", str(path), "--at", "2013-11-15", "--out",
                 "sql:predictions", "--replace"])
    again = pd.read_sql_table("predictions", url)
    assert (again["cutoff"] == pd.Timestamp("2013-11-15")).all() and len(again) == 403


def test_predict_errors_are_one_line_and_come_first(capsys, tmp_path, model_file, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("data were loaded")

    monkeypatch.setattr("skrel.datasets.load_dataset", refuse)
    monkeypatch.setattr("skrel.data.directory.open_database", refuse)
    base = ["predict", "--model", str(model_file), "flights", "--at", AT]
    assert main([*base, "--out", str(tmp_path / "nowhere" / "p.parquet")]) == 2
    assert f"directory '{tmp_path / 'nowhere'}' does not exist" in one_error_line(capsys)
    assert not (tmp_path / "nowhere").exists()
    assert main([*base, "--out", str(tmp_path / "p.txt")]) == 2
    assert "give a .parquet, .pq or .csv file, or sql:TABLE" in one_error_line(capsys)
    assert main([*base, "--out", "sql:predictions"]) == 2
    assert "'sql:predictions' writes into a SQL database: give it as a SQLAlchemy URL (--db URL" in \
        one_error_line(capsys)
    (tmp_path / "old.csv").write_text("x\n1\n")
    assert main([*base, "--out", str(tmp_path / "old.csv")]) == 2
    assert "old.csv' already exists; it is left as it is" in one_error_line(capsys)
    assert (tmp_path / "old.csv").read_text() == "x\n1\n"
    assert main(["predict", "--model", str(model_file), "flights", "--at", "soon", "--out", "p.csv"]) == 2
    assert "at='soon' is not a timestamp" in one_error_line(capsys)
    assert main(["predict", "--model", str(model_file), "flights", "--out", "p.csv"]) == 2
    assert "the following arguments are required: --at" in one_error_line(capsys)
    notes = tmp_path / "notes.joblib"
    notes.write_text("not a model")
    assert main(["predict", "--model", str(notes), "flights", "--at", AT, "--out", str(tmp_path / "p.csv")]) == 2
    assert "is not a skrel model file" in one_error_line(capsys)
    assert main([*base, "--entities", str(tmp_path / "none.csv"), "--out", str(tmp_path / "p.csv")]) == 2
    assert "--entities" in one_error_line(capsys)


def test_predict_entities_not_visible_is_one_line(capsys, tmp_path, model_file):
    ids = tmp_path / "ids.csv"
    pd.DataFrame({"plane": ["N108UW", "NOPE1"]}).to_csv(ids, index=False)  # a single column: its name is free
    assert main(["predict", "--model", str(model_file), "flights", "--at", AT, "--entities", str(ids), "--out",
                 str(tmp_path / "p.csv")]) == 2
    assert "1 are not in planes.tailnum (first: ['NOPE1'])" in one_error_line(capsys)


# ---------------------------------------------------------------------- issue 18: no directory created
@pytest.mark.parametrize("argv, option", [
    (["fit", "flights", "plane-cancel", "--model", "baseline", "--save", "{d}/m.joblib"], "--save"),
    (["fit", "flights", "plane-cancel", "--model", "relatron", "--report", "{d}/r.html"], "--report"),
    (["report", "flights", "plane-cancel", "--out", "{d}/r.html"], "--out"),
])
def test_file_options_in_a_missing_directory_fail_before_fitting(capsys, tmp_path, monkeypatch, argv, option):
    def refuse(*args, **kwargs):
        raise AssertionError("data were loaded")

    monkeypatch.setattr("skrel.datasets.load_dataset", refuse)
    missing = tmp_path / "missing" / "dir"
    assert main([a.format(d=missing) for a in argv]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"skrel: error: {option} {missing}") and f"directory '{missing}' does not exist" in line
    assert not (tmp_path / "missing").exists()


# ---------------------------------------------------------------------- PostgreSQL
TASK_TOML = "\n" + shop_task_toml()  # a leading blank line: the error line numbers below count it


@pytest.fixture
def pg_shop():
    with postgres_schema("skrel_predict") as (engine, url, schema):
        write_sql(make_shop(), engine, schema)
        yield url, schema


@pytest.mark.postgres
def test_fit_save_predict_write_back_on_postgres(capsys, tmp_path, pg_shop):
    from skrel.data.directory import open_database

    url, schema = pg_shop
    task = tmp_path / "task.toml"
    task.write_text(TASK_TOML)
    model = tmp_path / "m.joblib"
    source = ["--db", url, "--sql-schema", schema]
    run(capsys, ["fit", *source, "--task", str(task), "--model", "baseline", "--set", "n_estimators=20", "--save",
                 str(model)])
    run(capsys, ["predict", "--model", str(model), *source, "--at", "2021-07-01", "--out", "sql:predictions"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        db = open_database(url, sql_schema=schema)
    expected = load_model(model).predict_frame(db, "2021-07-01")
    got = pd.read_sql_table("predictions", url, schema=schema)
    pd.testing.assert_frame_equal(got, expected)
    assert main(["predict", "--model", str(model), *source, "--at", "2021-07-01", "--out", "sql:predictions"]) == 2
    assert f"Table '{schema}.predictions' already exists" in one_error_line(capsys)
