"""The DuckDB edge: runs and events in one local file that any DuckDB client can query."""

from .jsonl import ImportResult, import_jsonl
from .queries import NamedQuery, get_query, list_queries, run_query
from .sink import (
    INTERRUPTED_ERROR,
    SinkStats,
    compact,
    export_parquet,
    list_run_ids,
    load_records,
    recover_interrupted,
    write_records,
)

__all__ = [
    "INTERRUPTED_ERROR",
    "ImportResult",
    "NamedQuery",
    "SinkStats",
    "compact",
    "export_parquet",
    "get_query",
    "import_jsonl",
    "list_queries",
    "list_run_ids",
    "load_records",
    "recover_interrupted",
    "run_query",
    "write_records",
]
