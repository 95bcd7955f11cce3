"""The dialects in the order they are tried, and the two ways a span is read with them: whole
(:func:`read_span`, at a span's end or out of process) and at its start (:func:`read_start`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from . import genai, openinference, openllmetry, pydantic_ai, runtrace
from .reading import Role, SpanReading, base, opened

__all__ = ["DIALECTS", "Dialect", "read_span", "read_start"]

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

_ROLES: tuple[Callable[[str, Mapping[str, Any]], Role | None], ...] = (
    runtrace.role,
    pydantic_ai.role,
    openllmetry.role,
    genai.role_of,
    openinference.role,
)
"""Each dialect's ``role(name, attributes)``, in the order of :data:`DIALECTS`: what the span is
to it, None when it is not the dialect's (exactly when its ``read`` returns None)."""

_READ_AT_START = frozenset({"agent", "wrapper"})
"""Roles whose start reading decides something (a live run, a wrapper's run): read whole."""


def read_span(span: ReadableSpan) -> SpanReading:
    """What ``span`` is, read by the first dialect that recognises it (``other`` if none)."""
    attributes = dict(span.attributes) if span.attributes else {}  # one copy for every dialect
    for _, read in DIALECTS:
        reading = read(span, attributes)
        if reading is not None:
            return reading
    return base(span, "none", "other", attributes)


def read_start(span: ReadableSpan) -> SpanReading:
    """:func:`read_span` for a span that just started in-process, where only agents and
    wrappers need their whole reading now: any other span's is ``light`` (role and ids), its
    content read once, at its end."""
    attributes = dict(span.attributes) if span.attributes else {}
    name = span.name
    for (dialect, read), role_of in zip(DIALECTS, _ROLES, strict=True):
        role = role_of(name, attributes)
        if role is None:
            continue
        if role in _READ_AT_START:
            reading = read(span, attributes)
            if reading is not None:
                return reading
        return opened(span, dialect, role)
    return opened(span, "none", "other")
