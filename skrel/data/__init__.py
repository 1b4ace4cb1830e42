"""The relational data layer: pandas, numpy, DuckDB and pyarrow only (no torch)."""

from .database import Database, DanglingForeignKeyWarning, SchemaError, Table
from .dataset import HORIZONS, RelationalDataset, horizon_cutoffs
from .relbench_io import from_relbench, to_relbench
from .sql import SQLSchemaWarning, TimeColumnInferenceWarning, from_sql
from .task import SPLITS, TASK_TYPES, Task

__all__ = [
    "Database",
    "Table",
    "SchemaError",
    "DanglingForeignKeyWarning",
    "RelationalDataset",
    "horizon_cutoffs",
    "HORIZONS",
    "Task",
    "TASK_TYPES",
    "SPLITS",
    "from_sql",
    "from_relbench",
    "to_relbench",
    "SQLSchemaWarning",
    "TimeColumnInferenceWarning",
]
