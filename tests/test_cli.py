"""The command line's contract: names, JSON keys, rel-f1's split sizes, your own database, and errors."""

from __future__ import annotations

import json
import sys
import types

import pandas as pd
import pytest
import sqlalchemy as sa

import skrel
from skrel.data import Database
from skrel.data.sql import TimeColumnInferenceWarning
from conftest import make_shop, postgres_schema, shop_task, shop_task_toml
from skrel.cli import build_parser, main
from skrel.datasets import DATASETS
from skrel.estimators.registry import FAMILIES

REL_F1_SIZES = {
    "driver-dnf": {"train": 11411, "val": 566, "test": 702},
    "driver-top3": {"train": 1353, "val": 588, "test": 726},
    "driver-position": {"train": 7453, "val": 499, "test": 760},
}


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_describe_f1_reproduces_relbench_sizes(capsys, f1_path):
    out = run_json(capsys, ["describe", "f1", "--path", str(f1_path), "--json"])
    assert out["tasks"] == REL_F1_SIZES
    assert out["tables"]["results"]["foreign_keys"] == {"raceId": "races", "driverId": "drivers",
                                                         "constructorId": "constructors"}


def test_describe_flights_text(capsys):
    assert main(["describe", "flights"]) == 0
    text = capsys.readouterr().out
    assert "planes" in text and "task plane-" in text


def test_fit_json_keys(capsys):
    out = run_json(capsys, ["fit", "flights", "plane-cancel", "--model", "baseline", "--set", "n_estimators=20",
                            "--json"])
    for key in ("dataset", "task", "model", "metric", "val", "test", "fit_seconds", "peak_rss_mb"):
        assert key in out
    assert out["metric"] == "roc_auc" and 0.0 <= out["test"] <= 1.0 and 0.0 <= out["val"] <= 1.0
    assert out["params"] == {"n_estimators": 20, "random_state": 0}


def test_set_takes_several_values_and_repeats(capsys):
    out = run_json(capsys, ["fit", "flights", "plane-cancel", "--model", "baseline", "--set", "n_estimators=10",
                            "num_leaves=7", "--set", "random_state=3", "--json"])
    assert out["params"] == {"n_estimators": 10, "num_leaves": 7, "random_state": 3}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("skrel: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("skrel: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def no_data(monkeypatch):
    """Fail any attempt to load data: checks that come before loading must fire first."""

    def refuse(*args, **kwargs):
        raise AssertionError("data were loaded")

    monkeypatch.setattr("skrel.datasets.load_dataset", refuse)
    monkeypatch.setattr("skrel.data.directory.open_database", refuse)


def test_fit_unknown_model_and_bad_set_before_loading(capsys, no_data):
    assert main(["fit", "flights", "plane-cancel", "--model", "nope"]) == 2
    assert "invalid choice: 'nope'" in one_error_line(capsys)
    assert main(["fit", "nowhere", "plane-cancel", "--model", "baseline"]) == 2
    assert "invalid choice: 'nowhere'" in one_error_line(capsys)
    assert main(["fit", "flights", "plane-cancel", "--model", "baseline", "--set", "novalue"]) == 2
    assert "expected KEY=VALUE, got 'novalue'" in one_error_line(capsys)
    assert main(["fit", "flights", "plane-cancel", "--model", "baseline", "--set", "no_such_param=1"]) == 2
    assert "no_such_param" in one_error_line(capsys)
    assert main(["fit", "flights", "--model", "baseline"]) == 2
    assert "needs a task" in one_error_line(capsys)
    assert main(["fit", "--task", "t.toml", "--model", "baseline"]) == 2
    assert "give a dataset name (" + ", ".join(DATASETS) in one_error_line(capsys)


def test_f1_needs_path(capsys):
    assert main(["describe", "f1"]) == 2
    assert "path" in capsys.readouterr().err


def test_unknown_task_name(capsys):
    assert main(["fit", "flights", "plane-nope", "--model", "baseline"]) == 2
    assert "unknown task 'plane-nope' for flights; tasks are ['plane-cancel', 'plane-delay']" in one_error_line(capsys)


def test_version_and_help_list_the_registries(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"skrel {skrel.__version__}"
    assert main(["fit", "--help"]) == 0
    text = capsys.readouterr().out
    for name, spec in FAMILIES.items():
        assert name in text and spec.description in text
    assert ", ".join(DATASETS) in text
    parser = build_parser()
    subparsers = parser._subparsers._group_actions[0].choices
    assert set(subparsers) == {"describe", "fit", "predict", "embed", "report", "demo", "bank"}
    for name, sub in [("skrel", parser), *subparsers.items()]:
        for action in sub._actions:
            assert action.help, f"{name}: option {action.dest} has no help text"


def test_engine_errors_and_bugs_are_one_line(capsys, monkeypatch):
    import duckdb

    def fails_with(exc):
        def command(args):
            raise exc
        return command

    cases = [
        (duckdb.BinderException("Binder Error: column x\nnot found"), "skrel: error: BinderException: Binder Error: column x not found"),
        (RuntimeError("CUDA out of memory.\nTried to allocate"), "skrel: error: CUDA out of memory. Tried to allocate"),
        (KeyError("No table 'x'; tables are ['a']."), "skrel: error: No table 'x'; tables are ['a']."),
        (ModuleNotFoundError("No module named 'psycopg'", name="psycopg"),
         "skrel: error: No module named 'psycopg' (install the package that provides 'psycopg')"),
        (ZeroDivisionError("division by zero"), "skrel: error: internal error ZeroDivisionError: division by zero "
                                                "(rerun with `skrel --traceback ...` and report it)"),
    ]
    for exc, line in cases:
        monkeypatch.setattr("skrel.cli.describe", fails_with(exc))
        assert main(["describe", "flights"]) == 2
        assert one_error_line(capsys) == line
    with pytest.raises(ZeroDivisionError):
        main(["--traceback", "describe", "flights"])


# ---------------------------------------------------------------------- your own database
def write_shop_sql(engine, schema=None):
    """The shop database as SQL tables with primary and foreign key constraints."""
    db = make_shop()
    md = sa.MetaData(schema=schema)
    prefix = f"{schema}." if schema else ""
    users = sa.Table("users", md, sa.Column("user_id", sa.Integer, primary_key=True), sa.Column("age", sa.Float),
                     sa.Column("country", sa.String), sa.Column("signup", sa.DateTime))
    items = sa.Table("items", md, sa.Column("item_id", sa.Integer, primary_key=True), sa.Column("price", sa.Float),
                     sa.Column("cat", sa.String))
    orders = sa.Table("orders", md, sa.Column("order_id", sa.Integer, primary_key=True),
                      sa.Column("user_id", sa.Integer, sa.ForeignKey(f"{prefix}users.user_id")),
                      sa.Column("item_id", sa.Integer, sa.ForeignKey(f"{prefix}items.item_id")),
                      sa.Column("qty", sa.Float), sa.Column("at", sa.DateTime))
    md.create_all(engine)
    with engine.begin() as conn:
        for table in (users, items, orders):
            df = db[table.name].df
            records = [{k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v.item() if hasattr(v, "item") else v)
                        for k, v in row.items()} for row in df.to_dict("records")]
            conn.execute(table.insert(), records)


TASK_TOML = "\n" + shop_task_toml()  # a leading blank line: the error line numbers below count it


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "task.toml"
    path.write_text(TASK_TOML)
    return path


@pytest.fixture
def shop_sqlite_url(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    write_shop_sql(engine)
    engine.dispose()
    return f"sqlite:///{tmp_path / 'shop.db'}"


def check_fit_on_own_db(capsys, url, task_file, extra=()):
    out = run_json(capsys, ["fit", "--db", url, *extra, "--task", str(task_file), "--model", "baseline",
                            "--set", "n_estimators=20", "--json"])
    assert out["task"] == "user-active" and out["model"] == "baseline" and out["metric"] == "roc_auc"
    assert 0.0 <= out["val"] <= 1.0 and 0.0 <= out["test"] <= 1.0
    assert "secret" not in out["dataset"]
    # The same fit from Python: the CLI adds nothing of its own.
    from skrel.data.directory import open_database
    from skrel.data.task_file import load_task
    from skrel.evaluation import fit_and_report

    schema = extra[1] if extra else None
    with pytest.warns(TimeColumnInferenceWarning, match="users.signup"):
        db = open_database(url, sql_schema=schema)
    task = load_task(task_file)
    shop = make_shop()
    expected = Database({n: t.df for n, t in shop.tables.items()},
                        primary_keys={n: t.pkey for n, t in shop.tables.items()},
                        foreign_keys={n: t.fkeys for n, t in shop.tables.items()},
                        time_columns={"orders": "at", "users": "signup"})  # from_sql infers users.signup
    assert task.sizes(db) == shop_task("binary").sizes(expected)
    ref = fit_and_report("shop", db, task, "baseline", {"n_estimators": 20, "random_state": 0})
    assert out["val"] == pytest.approx(ref["val"]) and out["test"] == pytest.approx(ref["test"])
    return out


def test_fit_own_sqlite_database_end_to_end(capsys, shop_sqlite_url, task_file):
    out = check_fit_on_own_db(capsys, shop_sqlite_url, task_file)
    assert out["dataset"] == shop_sqlite_url


def test_describe_own_directory_with_task(capsys, tmp_path, task_file):
    db = make_shop()
    data = tmp_path / "shop"
    data.mkdir()
    for name, t in db.tables.items():
        t.df.to_parquet(data / f"{name}.parquet", index=False)
    (data / "schema.toml").write_text(
        '[tables.users]\nprimary_key = "user_id"\n[tables.items]\nprimary_key = "item_id"\n'
        '[tables.orders]\nprimary_key = "order_id"\ntime_column = "at"\n'
        'foreign_keys = { user_id = "users", item_id = "items" }\n'
    )
    out = run_json(capsys, ["describe", "--db", str(data), "--task", str(task_file), "--json"])
    assert out["tables"] == db.schema()
    assert out["tasks"] == {"user-active": shop_task("binary").sizes(db)}
    assert main(["describe", "--db", str(data)]) == 0
    assert "orders" in capsys.readouterr().out


def test_own_database_errors_are_one_line(capsys, shop_sqlite_url, task_file, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TASK_TOML.replace('window = "60d"', 'window = "often"'))
    assert main(["fit", "--db", shop_sqlite_url, "--task", str(bad), "--model", "baseline"]) == 2
    assert "bad.toml line 7: window must be a positive duration" in one_error_line(capsys)

    bad.write_text(TASK_TOML.replace("LEFT JOIN orders o", "LEFT JOIN purchases o"))
    assert main(["fit", "--db", shop_sqlite_url, "--task", str(bad), "--model", "baseline"]) == 2
    assert "purchases" in one_error_line(capsys)  # DuckDB's catalog error, on one line

    bad.write_text(TASK_TOML.replace('entity_table = "users"', 'entity_table = "customers"'))
    assert main(["fit", "--db", shop_sqlite_url, "--task", str(bad), "--model", "baseline"]) == 2
    assert "entity_table 'customers'" in one_error_line(capsys)

    assert main(["describe", "--db", str(tmp_path / "missing")]) == 2
    assert "neither a database URL" in one_error_line(capsys)
    assert main(["describe", "--db", "nosuchdialect://x/y"]) == 2
    one_error_line(capsys)
    assert main(["fit", "--db", shop_sqlite_url, "plane-cancel", "--model", "baseline"]) == 2
    assert "invalid choice: 'plane-cancel'" in one_error_line(capsys)  # a positional is a dataset name
    assert main(["describe", "flights", "--db", shop_sqlite_url]) == 2
    assert "not both" in one_error_line(capsys)


@pytest.fixture
def pg_url():
    with postgres_schema("skrel_cli") as (engine, url, schema):
        write_shop_sql(engine, schema)
        yield url, schema


@pytest.mark.postgres
def test_fit_own_postgres_database_end_to_end(capsys, pg_url, task_file):
    url, schema = pg_url
    check_fit_on_own_db(capsys, url, task_file, extra=("--sql-schema", schema))


# ---------------------------------------------------------------------- embed
def test_embed_arguments(capsys, no_data):
    args = build_parser().parse_args(["embed", "flights", "plane-cancel", "--json"])
    assert (args.dataset, args.task_name, args.json, args.func.__name__) == ("flights", "plane-cancel", True, "embed")
    args = build_parser().parse_args(["embed", "--db", "sqlite:///x.db", "--task", "t.toml"])
    assert (args.dataset, args.db, args.task_file) == (None, "sqlite:///x.db", "t.toml")
    assert main(["embed", "flights"]) == 2
    assert "embed needs a task" in one_error_line(capsys)


def test_embed_without_the_module(capsys, monkeypatch, no_data):
    monkeypatch.setitem(sys.modules, "skrel.relatron.embedding", None)  # import raises ImportError
    assert main(["embed", "flights", "plane-cancel"]) == 2
    assert "skrel.relatron.embedding" in one_error_line(capsys)


def test_embed_prints_the_floats_and_seconds(capsys, monkeypatch, shop_sqlite_url, task_file):
    seen = {}

    def task_embedding(db, task):
        seen["args"] = (db, task)
        return types.MappingProxyType({"entities": float(len(db[task.entity_table])), "tables": len(db.tables)})

    fake = types.ModuleType("skrel.relatron.embedding")
    fake.task_embedding = task_embedding
    monkeypatch.setitem(sys.modules, "skrel.relatron.embedding", fake)
    out = run_json(capsys, ["embed", "--db", shop_sqlite_url, "--task", str(task_file), "--json"])
    assert set(out) == {"entities", "tables", "seconds"}
    assert out["entities"] == 60.0 and out["tables"] == 3.0 and out["seconds"] >= 0
    assert seen["args"][1].name == "user-active"


def test_embed_real_module(capsys, shop_sqlite_url, task_file):
    pytest.importorskip("skrel.relatron.embedding")
    out = run_json(capsys, ["embed", "--db", shop_sqlite_url, "--task", str(task_file), "--json"])
    assert "seconds" in out and all(isinstance(v, float) for v in out.values())


# ---------------------------------------------------------------------- the selector
RELATRON_FAST = ["budget=2", 'candidates=["baseline", "dfs"]', "post_selection=None",
                 'embedding_params={"components": ["homophily", "temporal", "scale"]}']


def test_fit_relatron_on_own_sqlite_database_with_its_report(capsys, shop_sqlite_url, task_file, tiny_bank, tmp_path):
    bank = tiny_bank.save(tmp_path / "bank.parquet")
    page = tmp_path / "why.html"
    out = run_json(capsys, ["fit", "--db", shop_sqlite_url, "--task", str(task_file), "--model", "relatron",
                            "--set", f"bank={bank}", *RELATRON_FAST, "--report", str(page), "--json"])
    assert out["model"] == "relatron" and out["selected_family"] in ("baseline", "dfs")
    assert out["fits"] >= 3 and set(out["candidates"]) <= {"baseline", "dfs"}
    assert 0.0 <= out["test"] <= 1.0 and out["report"] == str(page)
    assert 'id="sec-candidates"' in page.read_text()


def test_report_command_and_its_errors(capsys, shop_sqlite_url, task_file, tiny_bank, tmp_path):
    bank = tiny_bank.save(tmp_path / "bank.parquet")
    page = tmp_path / "r.html"
    assert main(["report", "--db", shop_sqlite_url, "--task", str(task_file), "--out", str(page),
                 "--set", f"bank={bank}", *RELATRON_FAST, "macro=dfs"]) == 0
    assert "selected dfs" in capsys.readouterr().out and page.exists()
    assert main(["fit", "flights", "plane-cancel", "--model", "dfs", "--report", str(page)]) == 2
    assert "--model relatron" in capsys.readouterr().err
    assert main(["fit", "flights", "plane-cancel", "--model", "relatron", "--set", "budget=0"]) == 2
    assert "budget" in capsys.readouterr().err
