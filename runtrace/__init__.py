"""runtrace: OpenTelemetry-native run tracing for AI agents, with a DuckDB store for SQL."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import events
from .errors import (
    DatabaseError,
    DatabaseLocked,
    DatabaseNotFound,
    ForwardError,
    JsonlImportError,
    NoActiveRun,
    NotADuckDBFile,
    QueryError,
    RunCancelled,
    RunNotFound,
    RuntraceError,
    SchemaVersionError,
)
from .events import BaseEvent, GenericEvent, parse_event
from .otel import (
    CancellationToken,
    ForwardResult,
    RunHandle,
    RunHooks,
    RunSpanProcessor,
    Runtrace,
    SpanSettings,
    current_run,
    forward_records,
    record_event,
    run_spans,
)
from .runs import RunEventRecord, RunRecord, RunSnapshot, RunStatus, apply_event
from .sinks import RunSink
from .store import RunStore
from .version import __version__

# The DuckDB side (duckdb, pyarrow) loads on first use, so agent code that only traces does not
# pay for importing it.
_LAZY = {
    **dict.fromkeys(("NamedQuery", "get_query", "list_queries", "run_query"), "queries"),
    **dict.fromkeys(
        (
            "DuckDBSink",
            "SinkStats",
            "compact",
            "connect",
            "export_parquet",
            "list_run_ids",
            "load_records",
            "recover_interrupted",
            "write_records",
        ),
        "sinks.duckdb",
    ),
    **dict.fromkeys(("ImportResult", "import_jsonl"), "sinks.jsonl"),
}

if TYPE_CHECKING:
    from .queries import NamedQuery, get_query, list_queries, run_query
    from .sinks.duckdb import (
        DuckDBSink,
        SinkStats,
        compact,
        connect,
        export_parquet,
        list_run_ids,
        load_records,
        recover_interrupted,
        write_records,
    )
    from .sinks.jsonl import ImportResult, import_jsonl


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runtrace' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BaseEvent",
    "CancellationToken",
    "DatabaseError",
    "DatabaseLocked",
    "DatabaseNotFound",
    "DuckDBSink",
    "ForwardError",
    "ForwardResult",
    "GenericEvent",
    "ImportResult",
    "JsonlImportError",
    "NamedQuery",
    "NoActiveRun",
    "NotADuckDBFile",
    "QueryError",
    "RunCancelled",
    "RunEventRecord",
    "RunHandle",
    "RunHooks",
    "RunNotFound",
    "RunRecord",
    "RunSink",
    "RunSnapshot",
    "RunSpanProcessor",
    "RunStatus",
    "RunStore",
    "Runtrace",
    "RuntraceError",
    "SchemaVersionError",
    "SinkStats",
    "SpanSettings",
    "__version__",
    "apply_event",
    "compact",
    "connect",
    "current_run",
    "events",
    "export_parquet",
    "forward_records",
    "get_query",
    "import_jsonl",
    "list_queries",
    "list_run_ids",
    "load_records",
    "parse_event",
    "record_event",
    "recover_interrupted",
    "run_query",
    "run_spans",
    "write_records",
]
