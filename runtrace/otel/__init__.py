"""The OpenTelemetry edge of runtrace: runs as spans, and the API agents record with.

One small module per behaviour:

- ``semconv``: every attribute name (GenAI conventions, ``runtrace.*``); ``values``: what an
  attribute can hold (integers beyond int64 as decimal strings); ``settings``: ``SpanSettings``.
- ``span_events``: events <-> span-event attributes; ``run_span``: run-span name, attributes,
  status; ``children``: ``execute_tool`` / ``invoke_agent`` child spans.
- ``live``: open runs; ``pickup``: plain span events taken at a span's end; ``fanout``: hooks and
  sinks through the fault policy; ``cancel_hook``: :class:`CancelSpanHook`.
- ``processor``: :class:`RunSpanProcessor`, the SDK callbacks; ``api``: ``Runtrace``,
  ``RunHandle``, ``record_event``, ``current_run``; ``replay``: stored runs as spans, to OTLP.

``Runtrace``, ``RunHandle``, ``RunSpanProcessor``, ``SpanSettings``, ``record_event`` and
``current_run`` are imported from the top-level ``runtrace`` package; this package lists the rest.
"""

from __future__ import annotations

from .announce import AnnounceSink
from .api import RunScope
from .cancel_hook import CancelSpanHook
from .foreign import ForeignRuns
from .logs import RunLogProcessor
from .pickup import SPAN_EVENTS_DROPPED, UNPARSED_SPAN_EVENT
from .replay import ForwardResult, forward_records, run_spans
from .run_span import run_status
from .span_events import event_attributes, event_from_attributes

__all__ = [
    "SPAN_EVENTS_DROPPED",
    "UNPARSED_SPAN_EVENT",
    "AnnounceSink",
    "CancelSpanHook",
    "ForeignRuns",
    "ForwardResult",
    "RunLogProcessor",
    "RunScope",
    "event_attributes",
    "event_from_attributes",
    "forward_records",
    "run_spans",
    "run_status",
]
