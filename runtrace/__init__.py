"""runtrace: OpenTelemetry-native run tracing for AI agents, with a DuckDB store for SQL."""

from __future__ import annotations

from . import events
from .errors import (
    NoActiveRun,
    NotADuckDBFile,
    QueryError,
    RunCancelled,
    RunNotFound,
    RuntraceError,
    SchemaVersionError,
    StoreFileError,
    StoreLocked,
)
from .events import BaseEvent, GenericEvent, parse_event
from .otel import (
    CancellationToken,
    RunHandle,
    RunHooks,
    RunSpanProcessor,
    Runtrace,
    SpanSettings,
    current_run,
    record_event,
)
from .runs import RunEventRecord, RunRecord, RunSnapshot, RunStatus, apply_event
from .sinks import RunSink
from .store import RunStore

__version__ = "0.1.0"

__all__ = [
    "BaseEvent",
    "CancellationToken",
    "GenericEvent",
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
    "SpanSettings",
    "StoreFileError",
    "StoreLocked",
    "__version__",
    "apply_event",
    "current_run",
    "events",
    "parse_event",
    "record_event",
]
