"""The relational data layer: pandas, numpy, DuckDB and pyarrow only (no torch)."""

from .database import Database, DanglingForeignKeyWarning, SchemaError, Table
from .dataset import RelationalDataset
from .task import SPLITS, TASK_TYPES, Task

__all__ = [
    "Database",
    "Table",
    "SchemaError",
    "DanglingForeignKeyWarning",
    "RelationalDataset",
    "Task",
    "TASK_TYPES",
    "SPLITS",
]
