"""The DuckDB edge: runs and events in one local file that any DuckDB client can query.

``DuckDBSink`` (the writer) and ``connect`` (the read-only view) are top-level names:
``runtrace.DuckDBSink``, ``runtrace.connect``. Here is everything else a user of the file needs:
reloading, bulk writes, repair and compaction, Parquet export, JSON-lines import, named queries.
"""

from .jsonl import ImportResult, import_jsonl
from .maintenance import INTERRUPTED_ERROR, export_parquet, recover_interrupted
from .queries import NamedQuery, QueryParam, get_query, list_queries, run_query
from .read import list_run_ids, load_records
from .schema import SCHEMA_VERSION
from .segments import compact
from .stats import SinkStats
from .write import write_records

__all__ = [
    "INTERRUPTED_ERROR",
    "SCHEMA_VERSION",
    "ImportResult",
    "NamedQuery",
    "QueryParam",
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
