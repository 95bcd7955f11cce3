"""The OpenTelemetry edge of runtrace: runs as spans, and the API agents record with.

- :class:`Runtrace` / :class:`RunHandle`: start runs, record events, cancel.
- :class:`RunSpanProcessor`: the SDK span processor that keeps run spans as live runs.
- :mod:`runtrace.otel.attributes`: events and runs <-> span attributes, reusable for replay.
- :class:`RunHooks`: observe runs; :class:`RunCancelled` is what a cancelled run raises.
- :func:`run_spans` / :func:`forward_records` (:mod:`runtrace.otel.replay`): stored runs as spans,
  replayed to an OTLP/HTTP backend.
"""

from __future__ import annotations

from ..errors import ForwardError, RunCancelled
from .api import RunHandle, RunScope, Runtrace, current_run, record_event
from .attributes import (
    SpanSettings,
    event_attributes,
    event_from_attributes,
    run_status,
)
from .hooks import CancellationToken, RunHooks
from .processor import CancelSpanHook, RunSpanProcessor
from .replay import ForwardResult, forward_records, run_spans

__all__ = [
    "CancelSpanHook",
    "CancellationToken",
    "ForwardError",
    "ForwardResult",
    "RunCancelled",
    "RunHandle",
    "RunHooks",
    "RunScope",
    "RunSpanProcessor",
    "Runtrace",
    "SpanSettings",
    "current_run",
    "event_attributes",
    "event_from_attributes",
    "forward_records",
    "record_event",
    "run_spans",
    "run_status",
]
