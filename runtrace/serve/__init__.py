"""``runtrace serve``: an OTLP receiver (HTTP and gRPC) that turns any process's spans and log
records into OpenTelemetry SDK objects and hands them to an ingest.

- :class:`Server` / :func:`serve_forever`: listen, then drain and flush on stop or SIGTERM.
- :class:`ServeSettings` / :class:`Limits`: where it listens, the token, what a request may carry.
- :class:`Ingest`: what decoded spans (``ReadableSpan``) and log records (:class:`LogItem`) go to;
  :class:`BufferedIngest` puts a bounded queue and a worker thread in front of a span processor.
- :class:`DuckDBIngest`: the ingest of ``runtrace serve``, runs in a DuckDB file, as in-process;
  :class:`ReceivedRuns` shows received runs before their run span arrives.
- :func:`parse_traces` / :func:`decode_spans` (and the logs pair): the decoding on its own.
"""

from __future__ import annotations

from .decode import Decoded, decode_logs, decode_spans
from .http import create_app
from .ingest import (
    BufferedIngest,
    Ingest,
    IngestClosed,
    IngestRejected,
    LogItem,
    QueueFull,
    ReportsFlushLag,
    ReportsOpenRuns,
)
from .ingest_duckdb import DuckDBIngest
from .live import ReceivedRuns
from .parse import RequestDecodeError, parse_logs, parse_traces
from .receive import Outcome, Receiver
from .server import Server, serve_forever
from .settings import Limits, ServeConfigError, ServeSettings

__all__ = [
    "BufferedIngest",
    "Decoded",
    "DuckDBIngest",
    "Ingest",
    "IngestClosed",
    "IngestRejected",
    "Limits",
    "LogItem",
    "Outcome",
    "QueueFull",
    "ReceivedRuns",
    "Receiver",
    "ReportsFlushLag",
    "ReportsOpenRuns",
    "RequestDecodeError",
    "ServeConfigError",
    "ServeSettings",
    "Server",
    "create_app",
    "decode_logs",
    "decode_spans",
    "parse_logs",
    "parse_traces",
    "serve_forever",
]
