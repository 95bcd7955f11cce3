"""Runs that show while they run, out of process: pending spans for an OTLP receiver.

An exporter sends a span only when it ends, so a run recorded here and exported to
``runtrace serve`` would stay invisible there until its very end. :class:`AnnounceSink` sends a
small *pending* span (``runtrace.span.kind = "pending"``, a child of the run span) when a run
starts, and again every ``every_events`` events or ``every_seconds`` seconds with the events
recorded since the previous one, as span events encoded exactly as on the run span
(:func:`~runtrace.otel.span_events.event_attributes`, numbered by ``runtrace.record.sequence``).
The receiver's runtrace dialect reads a pending span as the open run it announces
(:func:`~runtrace.otel.translate.runtrace.read_pending`); when the run span itself arrives, the
events it repeats are recognised by their sequence and kept once.

It is a :class:`~runtrace.sink.RunSink`, not a hook: a sink is given each event's stored record
(its true sequence and time, whatever thread recorded it) and is flushed and shut down with the
processor, which stops its timer. Add it next to the other sinks, with a tracer of the provider
whose exporter sends to the receiver::

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    announce = AnnounceSink(provider.get_tracer("runtrace.announce"))
    rt = Runtrace(provider, RunSpanProcessor(sinks=[announce]))
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from ..runs import RunEventRecord, RunSnapshot
from . import semconv as sc
from .settings import SpanSettings, default_settings
from .span_events import event_attributes
from .translate.runtrace import KIND_PENDING
from .values import span_attributes

__all__ = ["PENDING_SPAN_NAME", "AnnounceSink"]

PENDING_SPAN_NAME: Final = "runtrace.pending"
"""The name of every pending span."""

_NS_PER_MS = 1_000_000
_MAX_EVENTS = 128  # the SDK's default span event limit: a pending span must fit in it
_LEFT_OFF: Final = frozenset({sc.RUN_PROMPT, sc.GEN_AI_OPERATION_NAME})
"""Start attributes a pending span does not repeat: the prompt is content (kept off spans
unless the run span carries it), and ``gen_ai.operation.name`` would make backends that do not
know pending spans show them as agent invocations."""


@dataclass(slots=True)
class _Run:
    """An announced run: where its pending spans go and the events not announced yet."""

    parent: Context
    attributes: dict[str, Any]
    start_ns: int
    waiting: list[RunEventRecord] = field(default_factory=list)
    oldest: float = 0.0  # monotonic time the oldest waiting event arrived


class AnnounceSink:
    """A :class:`~runtrace.sink.RunSink` that announces runtrace's own open runs as pending
    spans on ``tracer`` (see the module docs).

    ``every_events``: a pending span at the latest every this many events (1 to 128, the SDK's
    default span event limit; at most this many events on one pending span, so the run span's
    own last 128 events always hold what the last announcement did not). ``every_seconds``:
    events never wait longer than this (0: only by count). ``settings``: the processor's, so
    that content is kept off pending spans exactly as off the run span.

    Only runs recorded through :class:`~runtrace.Runtrace` are announced (their snapshot says
    ``runtrace.span.kind = "run"``); a framework's runs are shown by the receiver from the
    framework's own spans. Runs whose span a sampler dropped should not be announced: use it with
    the default (always-on) sampling of run spans.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        *,
        every_events: int = 64,
        every_seconds: float = 2.0,
        settings: SpanSettings | None = None,
    ) -> None:
        if isinstance(every_events, bool) or not isinstance(every_events, int):
            raise TypeError(f"every_events must be an int, not {type(every_events).__name__}")
        if not 1 <= every_events <= _MAX_EVENTS:
            raise ValueError(f"every_events must be from 1 to {_MAX_EVENTS}, not {every_events}")
        if not isinstance(every_seconds, int | float) or not 0 <= every_seconds < float("inf"):
            raise ValueError(f"every_seconds must be a number >= 0, not {every_seconds!r}")
        self.tracer = tracer
        self.every_events = every_events
        self.every_seconds = float(every_seconds)
        self.settings = settings if settings is not None else default_settings()
        self.announced = 0
        """Pending spans sent so far."""
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()  # spans are sent under it, so they leave in order
        self._wake = threading.Event()
        self._closed = False
        self._timer: threading.Thread | None = None

    # --- RunSink ------------------------------------------------------------------------------

    def on_run(self, snapshot: RunSnapshot) -> None:
        """A run started (announced at once), changed, or ended (forgotten: its span says the
        rest)."""
        if snapshot.ended_at_ms is not None:
            with self._lock:
                self._runs.pop(snapshot.id, None)
            return
        with self._lock:
            if snapshot.id not in self._runs and not self._closed:
                run = self._track(snapshot)
                if run is not None:
                    self._send(run)

    def on_event(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        """Keep the event for the next pending span; send one once ``every_events`` wait."""
        if snapshot.ended_at_ms is not None:
            return  # recorded after the run's span ended: the span cannot carry it either
        with self._lock:
            run = self._runs.get(snapshot.id)
            if run is None:
                if self._closed:
                    return
                run = self._track(snapshot)
                if run is None:
                    return
            first = not run.waiting
            if first:
                run.oldest = time.monotonic()
            run.waiting.append(record)
            if len(run.waiting) >= self.every_events:
                self._send(run)
            elif first and self.every_seconds:
                self._start_timer()
                self._wake.set()  # the timer sleeps until this event is due

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send a pending span for every run with events waiting."""
        with self._lock:
            for run in self._runs.values():
                if run.waiting:
                    self._send(run)
        return True

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Send what waits and stop the timer; later calls do nothing."""
        self.force_flush(timeout_millis)
        with self._lock:
            self._closed = True
            self._runs.clear()
            timer, self._timer = self._timer, None
        self._wake.set()
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout_millis / 1000)

    # --- internals ----------------------------------------------------------------------------

    def _track(self, snapshot: RunSnapshot) -> _Run | None:
        """Start announcing ``snapshot``'s run, if it is runtrace's own and has a span."""
        if snapshot.attributes.get(sc.SPAN_KIND) != sc.KIND_RUN:
            return None
        if not snapshot.trace_id or not snapshot.span_id:
            return None
        parent = SpanContext(
            trace_id=int(snapshot.trace_id, 16),
            span_id=int(snapshot.span_id, 16),
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        run = _Run(
            parent=trace.set_span_in_context(NonRecordingSpan(parent)),
            attributes=_pending_attributes(snapshot.attributes),
            start_ns=snapshot.created_at_ms * _NS_PER_MS,
        )
        self._runs[snapshot.id] = run
        return run

    def _send(self, run: _Run) -> None:
        """One pending span (under the lock): from the run's start to now, with the events that
        waited. A run without events gets one too: that is its announcement."""
        records, run.waiting = run.waiting, []
        span = self.tracer.start_span(
            PENDING_SPAN_NAME,
            context=run.parent,
            kind=SpanKind.INTERNAL,
            attributes=run.attributes,
            start_time=run.start_ns,
        )
        for record in records:
            attributes = event_attributes(record.event, self.settings, sequence=record.sequence)
            span.add_event(record.event.type, attributes, record.timestamp_ms * _NS_PER_MS)
        span.end()
        self.announced += 1

    def _start_timer(self) -> None:
        if self._timer is None:
            self._timer = threading.Thread(
                target=_tick, args=(weakref.ref(self),), name="runtrace-announce", daemon=True
            )
            self._timer.start()

    def _due(self) -> float:
        """Send what waited ``every_seconds``; the seconds until the next is due."""
        now = time.monotonic()
        wait = self.every_seconds
        with self._lock:
            if self._closed:
                return -1.0
            for run in self._runs.values():
                if not run.waiting:
                    continue
                left = run.oldest + self.every_seconds - now
                if left <= 0:
                    self._send(run)
                else:
                    wait = min(wait, left)
        return wait


def _tick(ref: weakref.ReferenceType[AnnounceSink]) -> None:
    """The timer: sends what waited too long; ends with its sink (shut down or collected)."""
    while True:
        sink = ref()
        if sink is None:
            return
        wait = sink._due()
        wake = sink._wake
        del sink
        if wait < 0:
            return
        if wake.wait(wait):
            wake.clear()


def _pending_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """What a pending span carries of its run's start ``attributes`` (as far as a span can)."""
    out = {k: v for k, v in span_attributes(attributes).items() if k not in _LEFT_OFF}
    out[sc.SPAN_KIND] = KIND_PENDING
    return out
