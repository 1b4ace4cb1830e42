"""Shared fixtures: a small seeded relational database with a computed task, and the F1 path."""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skrel.data import Database
# the shop database and its tasks are those of the conformance checks (one definition)
from skrel.utils.estimator_checks import SHOP_LABEL_SQL, SHOP_MULTICLASS_SQL, SHOP_REG_SQL, shop_task  # noqa: F401
from skrel.utils.estimator_checks import make_shop_database as make_shop

F1_PATH = Path(os.environ.get("SKREL_F1_PATH", Path(__file__).resolve().parents[1].parent / "shared" / "data" / "f1"))


def shop_task_toml(label_sql: str = SHOP_LABEL_SQL, name: str | None = "user-active") -> str:
    """The shop's binary task as a task file (TOML), with ``label_sql`` as its query."""
    head = f'name = "{name}"\n' if name else ""
    return (head + 'entity_table = "users"\nentity_col = "user_id"\ntarget_col = "churn_free"\n'
            'task_type = "binary"\nwindow = "60d"\nval_timestamp = 2021-03-01\ntest_timestamp = 2021-07-01\n'
            f'label_sql = """{label_sql}"""\n')


def with_changes_after(db: Database, t: pd.Timestamp, rng) -> Database:
    """The shop ``db`` with its orders dated after ``t`` changed and 200 new orders after ``t`` appended."""
    orders = db["orders"].df.copy()
    later = orders["at"] > t
    orders.loc[later, "qty"] = rng.integers(50, 100, int(later.sum())).astype(float)
    orders.loc[later, "user_id"] = rng.integers(0, 60, int(later.sum()))
    new = pd.DataFrame({
        "order_id": np.arange(200) + 10_000,
        "user_id": rng.integers(0, 60, 200),
        "item_id": rng.integers(0, 15, 200),
        "qty": rng.integers(1, 100, 200).astype(float),
        "at": t + pd.to_timedelta(rng.integers(1, 400, 200), "D"),
    })
    return Database({"users": db["users"].df, "items": db["items"].df, "orders": pd.concat([orders, new])},
                    primary_keys={"users": "user_id", "items": "item_id", "orders": "order_id"},
                    foreign_keys={"orders": {"user_id": "users", "item_id": "items"}}, time_columns={"orders": "at"})


@pytest.fixture(scope="session")
def shop_db():
    return make_shop()


@pytest.fixture(scope="session")
def shop_binary(shop_db):
    return shop_db, shop_task("binary")


@pytest.fixture(scope="session")
def shop_regression(shop_db):
    return shop_db, shop_task("regression")


@pytest.fixture(scope="session")
def f1_path():
    if not (F1_PATH / "results.csv").exists():
        pytest.skip(f"F1 CSVs not found at {F1_PATH} (set SKREL_F1_PATH)")
    return F1_PATH


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one thread is faster, and immune to other processes holding the second core.

    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def shop_multiclass(shop_db):
    """The shop database with a 3-class task: a user's orders in the next 60 days, bucketed 0, 1 or 2+
    (about 30/25/45 percent of the train rows)."""
    return shop_db, shop_task("multiclass")


# ---------------------------------------------------------------- model selection
TINY_CONFIGS = {"baseline": [{"n_estimators": 20}], "dfs": [{"max_depth": 1, "n_estimators": 50},
                                                            {"max_depth": 2, "n_estimators": 50}]}


def tiny_task(homophily: float, task_type: str, seed: int):
    from skrel.datasets import make_synthetic

    db, tasks = make_synthetic(n_entities=100, n_rows=2000, homophily=homophily, task_type=task_type,
                               random_state=seed)
    return db, tasks["synthetic"]


@pytest.fixture(scope="session")
def tiny_bank():
    """A tiny performance bank: four small synthetic tasks (homophily 0 and 1, binary and
    regression), the baseline and DFS families, real fits (about 20 s)."""
    from skrel.relatron.bank import PerformanceBank

    bank = PerformanceBank()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (h, kind) in enumerate([(0.0, "binary"), (1.0, "binary"), (0.0, "regression"), (1.0, "regression")]):
            db, task = tiny_task(h, kind, seed=i)
            bank.extend(db, task, task_id=f"tiny/h{h}-{kind}", group=f"seed{i}", source="synthetic",
                        configs=TINY_CONFIGS, landscape=False)
    return bank


@pytest.fixture(scope="session")
def make_tiny_task():
    """``make_tiny_task(homophily, task_type, seed) -> (db, task)``."""
    return tiny_task


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every Spark test (2 cores, 2 shuffle partitions, no UI).

    Skips without pyspark or Java; under CI (``SKREL_REQUIRE_SPARK=1``, set by ``.ci/run``) fails instead.
    """
    from skrel.features._spark import java_available

    required = os.environ.get("SKREL_REQUIRE_SPARK") == "1"
    reason = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        reason = "pyspark is not installed (pip install 'skrel[spark]')"
    if reason is None and not java_available():
        reason = "no Java runtime (JAVA_HOME or java on PATH); see .ci/java.sh"
    if reason is not None:
        if required:
            pytest.fail(f"SKREL_REQUIRE_SPARK=1 but {reason}.")
        pytest.skip(reason)
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("skrel-tests")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.default.parallelism", "2")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", "1g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@contextlib.contextmanager
def postgres_schema(prefix: str):
    """``(engine, url, schema)``: a fresh schema on the server of ``SKREL_TEST_POSTGRES_URL``, dropped after.

    Skips without a server, or fails when ``SKREL_REQUIRE_POSTGRES=1`` (CI, where ``.ci/postgres.sh`` starts one).
    """
    import sqlalchemy as sa

    url = os.environ.get("SKREL_TEST_POSTGRES_URL")
    required = os.environ.get("SKREL_REQUIRE_POSTGRES") == "1"
    if not url:
        if required:
            pytest.fail("SKREL_REQUIRE_POSTGRES=1 but SKREL_TEST_POSTGRES_URL is not set (see .ci/postgres.sh).")
        pytest.skip("SKREL_TEST_POSTGRES_URL is not set: start a server with `eval \"$(bash .ci/postgres.sh start)\"`.")
    engine = sa.create_engine(url)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if required:
            pytest.fail(f"cannot connect to SKREL_TEST_POSTGRES_URL: {exc}")
        pytest.skip(f"cannot connect to SKREL_TEST_POSTGRES_URL: {exc}")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield engine, url, schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@contextlib.contextmanager
def shop_in_memory_files(db: Database, name: str):
    """The shop ``db`` as Parquet files on fsspec's ``memory://`` filesystem, opened with every table left in its
    file (``from_parquet(memory_rows=0)``); the files are removed after."""
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"memory://{name}"
    for table, t in db.tables.items():
        with fs.open(f"{root}/{table}.parquet", "wb") as fh:
            t.df.to_parquet(fh, index=False)
    schema = {"tables": {"users": {"primary_key": "user_id"}, "items": {"primary_key": "item_id"},
                         "orders": {"primary_key": "order_id", "time_column": "at",
                                    "foreign_keys": {"user_id": "users", "item_id": "items"}}}}
    try:
        yield Database.from_parquet(root, schema, memory_rows=0)
    finally:
        fs.rm(root, recursive=True)
