"""The relational data layer: pandas, numpy, DuckDB and pyarrow only (no torch)."""

from ._cache import get_cache_bytes, set_cache_bytes
from .database import Database, DanglingForeignKeyWarning, SchemaError, Table, column_kind
from .dataset import HORIZONS, RelationalDataset, horizon_cutoffs
from .directory import load_directory, open_database, save_directory, schema_toml
from .relbench_io import from_relbench, to_relbench
from .sql import SQLSchemaWarning, TimeColumnInferenceWarning, from_sql
from .task import SPLITS, TASK_TYPES, LabelQueryError, LabelWarning, Task
from .task_file import TaskFileError, load_task

__all__ = [
    "Database",
    "Table",
    "SchemaError",
    "column_kind",
    "set_cache_bytes",
    "get_cache_bytes",
    "DanglingForeignKeyWarning",
    "RelationalDataset",
    "horizon_cutoffs",
    "HORIZONS",
    "Task",
    "TASK_TYPES",
    "SPLITS",
    "LabelWarning",
    "LabelQueryError",
    "from_sql",
    "from_relbench",
    "to_relbench",
    "SQLSchemaWarning",
    "TimeColumnInferenceWarning",
    "load_directory",
    "save_directory",
    "schema_toml",
    "open_database",
    "load_task",
    "TaskFileError",
]
