"""runtrace: OpenTelemetry-native run tracing for AI agents, with a DuckDB store for SQL.

The names here are what an agent developer writes in the first hour. Everything else has one
path in a submodule: ``runtrace.events`` (event models), ``runtrace.runs`` (records and status
rules), ``runtrace.errors``, ``runtrace.sink`` (the sink protocol), ``runtrace.otel`` (replay,
span attributes), ``runtrace.duckdb`` (reload, maintenance, named queries), ``runtrace.serve``
(the OTLP receiver) and ``runtrace.forward``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import RunCancelled, RuntraceError
from .hooks import CancellationToken, RunHooks
from .otel.api import RunHandle, Runtrace, current_run, record_event
from .otel.processor import RunSpanProcessor
from .otel.settings import SpanSettings
from .runs import RunSnapshot, RunStatus
from .store import RunStore
from .version import __version__

# The DuckDB side (duckdb, pyarrow) loads on first use, so agent code that only traces does not
# pay for importing it.
_LAZY = {"DuckDBSink": "duckdb.sink", "connect": "duckdb.read"}

if TYPE_CHECKING:
    from .duckdb.read import connect
    from .duckdb.sink import DuckDBSink


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runtrace' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CancellationToken",
    "DuckDBSink",
    "RunCancelled",
    "RunHandle",
    "RunHooks",
    "RunSnapshot",
    "RunSpanProcessor",
    "RunStatus",
    "RunStore",
    "Runtrace",
    "RuntraceError",
    "SpanSettings",
    "__version__",
    "connect",
    "current_run",
    "record_event",
]
