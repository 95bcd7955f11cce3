"""runtrace: OpenTelemetry-native run tracing for AI agents, with a DuckDB store for SQL."""

from __future__ import annotations

from . import events
from .errors import (
    NoActiveRun,
    NotADuckDBFile,
    QueryError,
    RunNotFound,
    RuntraceError,
    SchemaVersionError,
    StoreFileError,
    StoreLocked,
)
from .events import BaseEvent, GenericEvent, parse_event
from .runs import RunEventRecord, RunRecord, RunSnapshot, RunStatus, apply_event
from .sinks import RunSink
from .store import RunStore

__version__ = "0.1.0"

__all__ = [
    "BaseEvent",
    "GenericEvent",
    "NoActiveRun",
    "NotADuckDBFile",
    "QueryError",
    "RunEventRecord",
    "RunNotFound",
    "RunRecord",
    "RunSink",
    "RunSnapshot",
    "RunStatus",
    "RunStore",
    "RuntraceError",
    "SchemaVersionError",
    "StoreFileError",
    "StoreLocked",
    "__version__",
    "apply_event",
    "events",
    "parse_event",
]
