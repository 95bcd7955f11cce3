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

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from . import genai, openinference, openllmetry, pydantic_ai, runtrace
from .assembler import RunAssembler, RunTarget
from .reading import Role, SpanEvent, SpanReading, Tokens, base
from .stats import AssemblerStats
from .store_target import StoreTarget

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
]

Dialect = Callable[[ReadableSpan, Mapping[str, Any]], SpanReading | None]
"""``read(span, attributes)``: the span's reading, or None when the span is not the dialect's
(``attributes``: the span's as a plain dict; each dialect's ``read`` also takes the span alone)."""

DIALECTS: tuple[tuple[str, Dialect], ...] = (
    (runtrace.DIALECT, runtrace.read),
    (pydantic_ai.DIALECT, pydantic_ai.read),
    (openllmetry.DIALECT, openllmetry.read),
    (genai.DIALECT, genai.read),
    (openinference.DIALECT, openinference.read),
)
"""The dialects in the order :func:`read_span` tries them."""


def read_span(span: ReadableSpan) -> SpanReading:
    """What ``span`` is, read by the first dialect that recognises it (``other`` if none)."""
    attributes = dict(span.attributes) if span.attributes else {}  # one copy for every dialect
    for _, read in DIALECTS:
        reading = read(span, attributes)
        if reading is not None:
            return reading
    return base(span, "none", "other", attributes)
