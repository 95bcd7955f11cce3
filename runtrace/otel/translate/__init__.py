"""Framework spans in, runtrace runs out: one translator with a dialect per convention.

A dialect is a pure function ``read(span) -> SpanReading | None`` (None: not its span).
:func:`read_span` tries them in a fixed order, runtrace's own first (so runtrace's spans are never
taken for foreign ones), then the specific conventions before the general: pydantic-ai,
OpenLLMetry, OpenTelemetry GenAI, OpenInference. A span none of them knows reads as ``other``.
:class:`RunAssembler` turns the readings of a whole trace into runs on a :class:`RunTarget`
(:class:`StoreTarget` for a :class:`~runtrace.store.RunStore`); the span processor feeds it
in-process, the OTLP receiver out of process.
"""

from __future__ import annotations

from .assembler import RunAssembler
from .dialects import DIALECTS, Dialect, read_span, read_start
from .reading import Role, SpanEvent, SpanReading, Tokens
from .stats import AssemblerStats
from .store_target import StoreTarget
from .target import RunTarget

__all__ = [
    "DIALECTS",
    "AssemblerStats",
    "Dialect",
    "Role",
    "RunAssembler",
    "RunTarget",
    "SpanEvent",
    "SpanReading",
    "StoreTarget",
    "Tokens",
    "read_span",
    "read_start",
]
