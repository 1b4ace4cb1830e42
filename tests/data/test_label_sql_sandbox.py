"""A task's label_sql is one SELECT on a connection that reads the database's tables and nothing else.

Each attack a task file could carry (reading a file, COPY TO, ATTACH, SET, INSTALL/LOAD, a PRAGMA,
a second statement) raises one clear error naming the file or task and the statement, and leaves
the disk as it was.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from conftest import SHOP_LABEL_SQL, make_shop, shop_in_memory_files, shop_task
from skrel.cli import main
from skrel.data import Database, LabelQueryError, Task
from skrel.data.directory import save_directory
from skrel.data.task_file import TaskFileError, load_task

# A valid label query, to which each attack is added.
LABELS = SHOP_LABEL_SQL.strip()
TASK_TOML = '''\
entity_table = "users"
entity_col = "user_id"
target_col = "churn_free"
task_type = "binary"
window = "60d"
val_timestamp = 2021-03-01
test_timestamp = 2021-07-01
label_sql = """
{sql}
"""
'''


@pytest.fixture
def victim(tmp_path):
    """A directory database and a secret file beside it, under tmp_path."""
    save_directory(make_shop(), tmp_path / "victim")
    (tmp_path / "secret.csv").write_text("user_id,churn_free\n0,1\n1,1\n")
    return tmp_path


def snapshot(root) -> dict:
    """Every file under ``root``: its bytes and modification time."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def write_task(root, sql: str, name: str = "evil.toml"):
    path = root / name
    path.write_text(TASK_TOML.format(sql=sql))
    return path


# Statements a SELECT-only query refuses when the task file is read: (label_sql, the statement named).
REFUSED = {
    "copy": ("COPY (SELECT 1 AS user_id) TO '{root}/victim/users.parquet' (FORMAT parquet);\n" + LABELS,
             r"found 2: \[\"COPY \(SELECT 1 AS user_id\) TO '"),
    "copy alone": ("COPY (SELECT 1 AS user_id) TO '{root}/victim/users.parquet' (FORMAT parquet)",
                   r"not a COPY statement: \"COPY \(SELECT 1 AS user_id\) TO '"),
    "attach": ("ATTACH '{root}/created.db' AS evil;\n" + LABELS, r"found 2: \[\"ATTACH '"),
    "attach alone": ("ATTACH '{root}/created.db' AS evil", r"not an ATTACH statement: \"ATTACH '"),
    "set": ("SET threads = 1;\n" + LABELS, r"found 2: \['SET threads = 1;'"),
    "set alone": ("SET enable_external_access = true", r"not a SET statement: 'SET enable_external_access"),
    "install": ("INSTALL httpfs", r"not a LOAD statement: 'INSTALL httpfs'"),
    "load": ("LOAD httpfs", r"not a LOAD statement: 'LOAD httpfs'"),
    "pragma": ("PRAGMA version", r"not a PRAGMA statement: 'PRAGMA version'"),
    "pragma setting": ("PRAGMA threads = 1", r"not a SET statement: 'PRAGMA threads = 1'"),
    "two selects": (LABELS + ";\nSELECT 1", r"found 2: \['SELECT t.timestamp"),
    "create": ("CREATE TABLE stolen AS SELECT * FROM users", r"not a CREATE statement"),
    "export": ("EXPORT DATABASE '{root}/exported'", r"not an EXPORT statement"),
}


@pytest.mark.parametrize("attack", sorted(REFUSED))
def test_statements_other_than_one_select_are_refused_when_the_file_is_read(victim, attack):
    sql, named = REFUSED[attack]
    sql = sql.replace("{root}", str(victim))
    path = write_task(victim, sql)
    before = snapshot(victim)
    with pytest.raises(TaskFileError, match=r"evil\.toml line 8: Task 'evil': label_sql must be") as info:
        load_task(path)
    assert re.search(named, str(info.value)), str(info.value)
    # the same query given in Python: LabelQueryError, a SchemaError/ValueError
    with pytest.raises(LabelQueryError, match="label_sql must be"):
        Task(name="evil", entity_table="users", entity_col="user_id", target_col="churn_free", task_type="binary",
             window=pd.Timedelta(days=60), label_sql=sql, val_timestamp=pd.Timestamp("2021-03-01"),
             test_timestamp=pd.Timestamp("2021-07-01"))
    # the command line: one error line, exit status 2, nothing written
    assert main(["describe", "--db", str(victim / "victim"), "--task", str(path)]) == 2
    assert snapshot(victim) == before
    assert not (victim / "created.db").exists() and not (victim / "exported").exists()


# Queries that are one SELECT but reach outside the database: refused when they run.
OUTSIDE = {
    "read_csv": "SELECT t.timestamp, s.user_id, s.churn_free FROM timestamps t CROSS JOIN read_csv('{root}/secret.csv') s",
    "read_csv_auto": "SELECT t.timestamp, s.* FROM timestamps t CROSS JOIN read_csv_auto('{root}/secret.csv') s",
    "read_text": ("SELECT t.timestamp, u.user_id, length(f.content) % 2 AS churn_free FROM timestamps t CROSS JOIN users u "
                  "CROSS JOIN read_text('/etc/passwd') f"),
    "read_parquet of a table's own file": ("SELECT t.timestamp, u.user_id, 1 AS churn_free FROM timestamps t CROSS JOIN "
                                           "read_parquet('{root}/victim/users.parquet') u"),
    "glob": ("SELECT t.timestamp, u.user_id, 1 AS churn_free FROM timestamps t CROSS JOIN users u "
             "WHERE EXISTS (SELECT * FROM glob('{root}/*'))"),
}


@pytest.mark.parametrize("attack", sorted(OUTSIDE))
def test_a_select_reading_files_is_refused_when_it_runs(victim, attack):
    sql = OUTSIDE[attack].replace("{root}", str(victim))
    path = write_task(victim, sql)
    db = Database.from_parquet(victim / "victim")
    before = snapshot(victim)
    task = load_task(path)  # one SELECT: the file is valid
    with pytest.raises(LabelQueryError, match=r"Task 'evil': label_sql may read only the database's tables "
                                              r"\['users', 'items', 'orders'\] and timestamps.*Permission Error"):
        task.labels(db, "train")
    assert main(["describe", "--db", str(victim / "victim"), "--task", str(path)]) == 2
    assert snapshot(victim) == before


def test_file_tables_are_read_but_their_files_cannot_be_named(victim):
    """A database whose tables stay in their files: the label query reads them (through pyarrow), not their paths."""
    mem = make_shop()
    db = Database.from_parquet(victim / "victim", memory_rows=0)
    task = shop_task("binary")
    pd.testing.assert_frame_equal(task.labels(db, "train"), task.labels(mem, "train"))
    pd.testing.assert_frame_equal(task.labels(db.upto("2021-05-01"), "val"), task.labels(mem.upto("2021-05-01"), "val"))
    sql = OUTSIDE["read_parquet of a table's own file"].replace("{root}", str(victim))
    evil = Task(**{**_fields(task), "label_sql": sql})
    with pytest.raises(LabelQueryError, match="Cannot access file"):
        evil.labels(db, "train")


def test_file_tables_behind_an_fsspec_url(shop_binary):
    mem, task = shop_binary
    with shop_in_memory_files(mem, "skrel-test-label-sandbox") as db:
        for split in ("train", "test"):
            pd.testing.assert_frame_equal(task.labels(db, split), task.labels(mem, split))


def _fields(task: Task) -> dict:
    return {k: getattr(task, k) for k in ("name", "entity_table", "entity_col", "target_col", "task_type", "window",
                                         "val_timestamp", "test_timestamp")}


def test_select_forms_that_stay_allowed(shop_binary):
    db, task = shop_binary
    expected = task.labels(db, "train")
    forms = [
        f"-- labels\n{LABELS};\n",  # a comment and a trailing semicolon
        f"WITH labels AS ({LABELS}) SELECT * FROM labels",
        LABELS.replace("JOIN orders o", "JOIN db.orders o"),  # a table as db.<name>
    ]
    for sql in forms:
        got = Task(**{**_fields(task), "name": "other", "label_sql": sql}).labels(db, "train")
        pd.testing.assert_frame_equal(got, expected)


def test_invalid_sql_is_one_clear_error(tmp_path):
    with pytest.raises(LabelQueryError, match=r"Task 'bad': label_sql is not valid DuckDB SQL: Parser Error"):
        Task(**{**_fields(shop_task()), "name": "bad", "label_sql": "SELEC 1"})
    with pytest.raises(LabelQueryError, match=r"exactly one SELECT statement, found 0"):
        Task(**{**_fields(shop_task()), "name": "bad", "label_sql": "-- nothing"})
    path = write_task(tmp_path, "SELEC 1", "bad.toml")
    with pytest.raises(TaskFileError, match=r"bad\.toml line 8: .*not valid DuckDB SQL"):
        load_task(path)



def test_the_connection_is_locked_when_it_is_created():
    import duckdb

    from skrel.data.files import READ_ONLY_CONFIG, read_only_connection, register_read_only

    con = read_only_connection()
    try:
        settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN ("
                                    + ", ".join(f"'{k}'" for k in READ_ONLY_CONFIG) + ")").fetchall())
        assert settings == {k: str(v).lower() for k, v in READ_ONLY_CONFIG.items()}
        register_read_only(con, "t", pd.DataFrame({"x": [1, 2]}))  # registered frames stay readable
        assert con.execute("SELECT sum(x) FROM t").fetchone()[0] == 3
        with pytest.raises(duckdb.Error, match="configuration has been locked"):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()
