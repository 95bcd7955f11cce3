"""runtrace's span events appended to an SDK span without the SDK cleaning them a second time.

runtrace's span-event attributes are already what OTLP carries
(:func:`~runtrace.otel.span_events.event_attributes` makes strings, ints within int64, floats,
booleans and tuples of one of them), yet ``Span.add_event`` copies and cleans every value again
in a ``BoundedAttributes``: about two thirds of what a span event costs. For the SDK's own
``Span``, with no limit on value length and within its limit of attributes per event, the event
is made here, its attributes frozen in a read-only mapping, and appended with ``_add_event``,
the method ``add_event`` itself ends in (which also refuses an ended span, with the SDK's
warning). Any other span, limit or SDK version goes through ``add_event``. Both ways export
the same event (``tests/otel/test_sdk_span.py`` checks it on the installed SDK).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType

from opentelemetry.sdk.trace import Event, Span

from .values import AttributeValue

__all__ = ["add_clean_event", "clean_event_limit"]

_PUBLIC_ADD_EVENT = Span.add_event
_APPEND: Callable[[Span, Event], None] | None = getattr(Span, "_add_event", None)


def clean_event_limit(span: object) -> int:
    """How many attributes a clean span event may have and still be appended to ``span``
    directly: the SDK's per-event limit, or 0 when every event must go through ``add_event``
    (not an SDK span, a subclass that changes how events are added, a value-length limit)."""
    if _APPEND is None or not isinstance(span, Span):
        return 0
    kind = type(span)
    if kind.add_event is not _PUBLIC_ADD_EVENT or getattr(kind, "_add_event", None) is not _APPEND:
        return 0
    limits = getattr(span, "_limits", None)
    if limits is None or limits.max_attribute_length is not None:
        return 0
    limit = limits.max_event_attributes
    return sys.maxsize if limit is None else int(limit)


def add_clean_event(
    span: Span,
    name: str,
    attributes: Mapping[str, AttributeValue],
    timestamp: int,
    limit: int,
) -> None:
    """Add the span event ``name`` with runtrace's clean ``attributes`` at ``timestamp``
    (epoch ns); ``limit`` is :func:`clean_event_limit` of the span, found once per span."""
    if len(attributes) <= limit and _APPEND is not None:
        _APPEND(span, Event(name, MappingProxyType(attributes), timestamp))
    else:
        span.add_event(name, attributes, timestamp)
