"""RunSpanProcessor: turns OpenTelemetry run spans into live runs in a RunStore, and feeds sinks.

A span is a run when runtrace started it (``runtrace.span.kind = "run"``) or it is a GenAI
``invoke_agent`` span that is not one of runtrace's own child spans. ``on_start`` creates the run;
events recorded through runtrace update it live; ``on_end`` picks up span events added with the
plain OpenTelemetry API, finalises the snapshot and hands it to every sink. The processor never
raises into the application: a failing sink or hook, or a bug here, is logged (and re-raised under
pytest, so that bugs show in tests).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode
from pydantic import ValidationError

from ..events import BaseEvent, GenericEvent
from ..runs import RunEventRecord, RunSnapshot, RunStatus, finish
from ..sinks.base import RunSink
from ..store import RunStore
from .attributes import (
    EVENT_SEQUENCE,
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    RUN_ID,
    RUN_PROMPT,
    SPAN_KIND,
    SpanSettings,
    child_span_end,
    child_span_start,
    event_attributes,
    event_from_attributes,
    is_run_span,
    run_end_attributes,
    run_status,
)
from .hooks import HOOK_METHODS, CancellationToken

__all__ = ["SPAN_EVENTS_DROPPED", "UNPARSED_SPAN_EVENT", "RunSpanProcessor"]

log = logging.getLogger("runtrace.otel")

UNPARSED_SPAN_EVENT = "otel_span_event"
"""Type of the generic event that keeps a plain span event whose attributes do not fit its
event type (``name`` and ``attributes`` as given): nothing is dropped, and it reloads cleanly."""

SPAN_EVENTS_DROPPED = "span_events_dropped"
"""Type of the generic event (``count``: how many) that says a run lost plain span events: the
span dropped them (its event limit) before runtrace could pick them up at its end."""

_time_ns = time.time_ns
_MISSING = object()

_CHILD_EVENT_TYPES = frozenset(
    {"tool_start", "tool_execution_start", "tool_end", "subagent_start", "subagent_end"}
)

# Every live processor, so that module-level ``record_event`` can find the run of a plain span.
_PROCESSORS: weakref.WeakSet[RunSpanProcessor] = weakref.WeakSet()


class _LiveRun:
    """What the processor knows about a run whose span has not ended yet."""

    __slots__ = (
        "cancel_ns",
        "children",
        "drops_reported",
        "error_type",
        "final",
        "lock",
        "owned",
        "picked",
        "recorded",
        "run_id",
        "session_id",
        "settled",
        "span",
        "span_added",
        "token",
    )

    def __init__(self, run_id: str, session_id: str, span: trace.Span, owned: bool) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.span = span
        self.owned = owned  # started through Runtrace, which ends it
        self.recorded = span.is_recording()  # False when the sampler dropped the span
        self.token = CancellationToken(run_id)
        self.settled = False  # final status and attributes are on the span; no more span events
        self.error_type: str | None = None
        self.children: dict[tuple[str, str], Span | None] = {}  # None: the span is starting
        self.picked: set[object] = set()  # plain span events already recorded (by identity)
        self.lock = threading.Lock()
        self.cancel_ns: int | None = None  # an explicit cancel time: the span ends then
        self.final: RunSnapshot | None = None  # the finished snapshot, kept past eviction
        # One item per span event runtrace added (list.append is atomic, a counter is not), so
        # that a pickup can tell plain events the span dropped from runtrace's own.
        self.span_added: list[None] = []
        self.drops_reported = 0  # plain span events reported lost (span_events_dropped)


def _auto_raise() -> bool:
    return "PYTEST_CURRENT_TEST" in os.environ


class CancelSpanHook:
    """The built-in hook: a cancelled run's span ends at once, with the cancelled status.

    The processor installs it after the user's hooks. Spans that runtrace started are ended;
    spans started by plain OpenTelemetry code get the status and attributes, and are ended by
    their owner as usual (ending them here would make the owner's ``end()`` warn).
    """

    def __init__(self, processor: RunSpanProcessor) -> None:
        self._processor = processor

    def on_run_cancelled(self, run_id: str, session_id: str, reason: str) -> None:
        self._processor.end_run(run_id)


class RunSpanProcessor(SpanProcessor):
    """An OpenTelemetry ``SpanProcessor`` that keeps every run span as a live run.

    ``store``: where runs live (a new :class:`~runtrace.store.RunStore` by default).
    ``sinks``: :class:`~runtrace.sinks.base.RunSink` objects given every run change and event.
    ``hooks``: :class:`~runtrace.otel.hooks.RunHooks` objects. ``settings``: how runs look on spans.
    ``cancel_ends_span``: install the built-in hook that ends a cancelled run's span at once.
    ``raise_errors``: re-raise internal, sink and hook errors instead of logging them; by default
    only under pytest.
    """

    def __init__(
        self,
        store: RunStore | None = None,
        sinks: Iterable[RunSink] = (),
        hooks: Iterable[object] = (),
        *,
        settings: SpanSettings | None = None,
        cancel_ends_span: bool = True,
        raise_errors: bool | None = None,
    ) -> None:
        self.store = store if store is not None else RunStore()
        self.settings = settings if settings is not None else SpanSettings()
        self.sinks: tuple[RunSink, ...] = tuple(sinks)
        self.hooks: tuple[object, ...] = tuple(hooks)
        self.tracer: trace.Tracer | None = None
        """Tracer for child spans; :class:`~runtrace.otel.api.Runtrace` sets it. Without one,
        tool calls and subagents stay span events only."""
        all_hooks = self.hooks + ((CancelSpanHook(self),) if cancel_ends_span else ())
        self._hook_calls: dict[str, tuple[Callable[..., Any], ...]] = {
            method: tuple(
                getattr(hook, method) for hook in all_hooks if callable(getattr(hook, method, None))
            )
            for method in HOOK_METHODS
        }
        self._on_event_hooks = self._hook_calls["on_event"]
        self._sink_on_event = tuple(sink.on_event for sink in self.sinks)
        self._raise_errors = raise_errors
        self._lock = threading.Lock()
        self._live: dict[str, _LiveRun] = {}
        self._by_span: dict[int, _LiveRun] = {}
        self._current: dict[str, str] = {}
        self._expected: dict[str, str] = {}  # run id -> prompt, for runs Runtrace is starting
        self._is_shutdown = False
        _PROCESSORS.add(self)

    # --- SpanProcessor -------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            attributes = span.attributes
            if is_run_span(attributes):
                self._start_run(span, attributes, span.start_time)
        except Exception:
            self._fault("starting a run span")

    def on_end(self, span: ReadableSpan) -> None:
        try:
            context = span.context
            if context is None:
                return
            with self._lock:
                live = self._by_span.pop(context.span_id, None)
                if live is None:
                    return
                self._live.pop(live.run_id, None)
                if self._current.get(live.session_id) == live.run_id:
                    del self._current[live.session_id]
                settled = live.settled
                live.settled = True
            end_ns = span.end_time if span.end_time is not None else _time_ns()
            # Plain span events: all of them for a span that plain OpenTelemetry code ended, the
            # ones added after a cancel settled it otherwise (none for spans runtrace ends).
            self._pickup(live, span)
            if not settled:
                self._close_children(live, end_ns)
            error = None
            if span.status.status_code is StatusCode.ERROR:
                error = span.status.description or "span ended with status ERROR"
            self._finalise(live, end_ns, error)
        except Exception:
            self._fault("ending a run span")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        ok = True
        for sink in self.sinks:
            try:
                ok = sink.force_flush(timeout_millis) is not False and ok
            except Exception:
                ok = False
                self._fault("flushing a sink")
        return ok

    def shutdown(self) -> None:
        if self._is_shutdown:
            return
        self._is_shutdown = True
        for sink in self.sinks:
            try:
                sink.shutdown()
            except Exception:
                self._fault("shutting down a sink")

    # --- runs ----------------------------------------------------------------------------------

    def expect_run(self, run_id: str, prompt: str) -> None:
        """The next span carrying ``runtrace.run.id = run_id`` is one runtrace starts and ends,
        with this prompt (kept off the span unless content capture is on)."""
        with self._lock:
            self._expected[run_id] = prompt

    def start_unrecorded(
        self, span: trace.Span, attributes: Mapping[str, Any], prompt: str
    ) -> _LiveRun:
        """Keep a run whose span the sampler dropped (no ``on_start`` came): the store and the
        sinks still get it; only the span side is missing."""
        self.expect_run(str(attributes[RUN_ID]), prompt)
        return self._start_run(span, attributes, None)

    def live_run(self, run_id: str) -> _LiveRun | None:
        """The open run ``run_id`` (None once its span ended)."""
        return self._live.get(run_id)

    def live_run_for_span(self, span: trace.Span) -> _LiveRun | None:
        """The open run whose span is ``span``, if it is one of this processor's runs."""
        live = self._by_span.get(span.get_span_context().span_id)
        return live if live is not None and live.span is span else None

    def current_run_id(self, session_id: str) -> str | None:
        """The session's current run: the last one started whose span is still open."""
        return self._current.get(session_id)

    def record(self, run_id: str, event: BaseEvent | dict[str, Any] | str | bytes) -> RunSnapshot:
        """Record ``event`` on run ``run_id``: store, span event, child spans, sinks, hooks.

        A run whose span already ended still gets the event in the store and the sinks.
        """
        live = self._live.get(run_id)
        if live is None:
            snapshot, record = self.store.record(run_id, event)
            self._after_record(snapshot, record)
            return snapshot
        return self.record_live(live, event)

    def record_live(
        self,
        live: _LiveRun,
        event: BaseEvent | dict[str, Any] | str | bytes,
        *,
        on_span: bool = True,
        timestamp_ns: int | None = None,
    ) -> RunSnapshot:
        """The hot path of :meth:`record`, for callers that hold the live run."""
        ns = _time_ns() if timestamp_ns is None else timestamp_ns
        snapshot, record = self.store.record(live.run_id, event, at_ms=ns // 1_000_000)
        if on_span and not live.settled and live.recorded:
            model = record.event
            event_type = model.type
            try:
                live.span.add_event(
                    event_type,
                    event_attributes(model, self.settings, sequence=record.sequence),
                    ns,
                )
                live.span_added.append(None)
                if event_type in _CHILD_EVENT_TYPES and self.tracer is not None:
                    self._child_span(live, model, ns)
            except Exception:
                self._fault("adding a span event")
        if self._sink_on_event or self._on_event_hooks:
            self._after_record(snapshot, record)
        return snapshot

    def _after_record(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        for on_event in self._sink_on_event:
            try:
                on_event(snapshot, record)
            except Exception:
                self._fault("a sink's on_event")
        if self._on_event_hooks:
            session = snapshot.session_id
            for hook in self._on_event_hooks:
                try:
                    hook(record.event, snapshot.id, session)
                except Exception:
                    self._fault("a hook's on_event")

    def cancel(
        self, run_id: str, reason: str = "cancelled by host", at_ns: int | None = None
    ) -> bool:
        """Cancel the run, as the reference's ``RunHandle::cancel``.

        Only the session's current, unfinished run can be cancelled; otherwise False. Sets the
        token, marks the run cancelled (the reason kept in ``error``), calls every hook's
        ``on_run_cancelled`` once, and the built-in hook ends the span with the cancelled status.
        """
        with self._lock:
            live = self._live.get(run_id)
            if live is None or live.settled or self._current.get(live.session_id) != run_id:
                return False
            snapshot = self._cancel_in_store(live, reason, at_ns)
        if snapshot is None:
            return False
        self._after_cancel(live, snapshot, reason)
        return True

    def cancel_on_exit(self, live: _LiveRun, reason: str, at_ns: int | None = None) -> None:
        """The run's code left with a cancellation (``CancelledError``, ``KeyboardInterrupt``,
        ``GeneratorExit``, or any error after the token was set): the run ends cancelled,
        whether or not it is the session's current run. Hooks are still called only once."""
        with self._lock:
            snapshot = self._cancel_in_store(live, reason, at_ns)
        if snapshot is not None:
            self._after_cancel(live, snapshot, reason)
        else:
            live.token.cancel(reason)  # the agent sees it stopped, whatever the store says

    def _cancel_in_store(
        self, live: _LiveRun, reason: str, at_ns: int | None
    ) -> RunSnapshot | None:
        """Under the processor lock: the store's transition decides. Returns the cancelled
        snapshot if this call cancelled the run, None if it had already ended (completed,
        failed, or cancelled by an earlier call): then nothing else happens."""
        before = self.store.snapshot(live.run_id)
        if before is None or before.status.is_terminal:
            return None
        at_ms = None if at_ns is None else at_ns // 1_000_000
        snapshot = self.store.mark_cancelled(live.run_id, reason=reason, at_ms=at_ms)
        if snapshot.status is not RunStatus.CANCELLED:
            return None  # a terminal event got in first: the run keeps its outcome
        live.token.cancel(reason)
        live.cancel_ns = at_ns
        return snapshot

    def _after_cancel(self, live: _LiveRun, snapshot: RunSnapshot, reason: str) -> None:
        self._notify_run(snapshot)
        for hook in self._hook_calls["on_run_cancelled"]:
            try:
                hook(live.run_id, live.session_id, reason)
            except Exception:
                self._fault("a hook's on_run_cancelled")

    def mark_failed(
        self, live: _LiveRun, error: str, error_type: str, at_ns: int | None = None
    ) -> RunSnapshot:
        """The run's code raised: failed with ``error`` (never over a cancellation)."""
        live.error_type = error_type
        at_ms = None if at_ns is None else at_ns // 1_000_000
        snapshot = self.store.mark_failed(live.run_id, error, at_ms=at_ms)
        self._notify_run(snapshot)
        return snapshot

    def end_run(self, run_id: str, end_ns: int | None = None) -> None:
        """Settle the run's span: pick up plain span events, close child spans, set the final
        status and attributes (true event count, span drops, token totals), and end the span if
        runtrace started it, at ``end_ns`` (now by default). Idempotent; the store's snapshot
        is finalised in ``on_end``."""
        with self._lock:
            live = self._live.get(run_id)
            if live is None or live.settled:
                return
            live.settled = True
            if end_ns is None:
                end_ns = live.cancel_ns
        span = live.span
        try:
            snapshot = self.store.snapshot(run_id) if live.recorded else None
            if snapshot is not None:
                self._pickup(live, span)
                snapshot = self.store.snapshot(run_id) or snapshot
                final = finish(snapshot)  # what on_end will store, to put on the span now
                status, attributes = run_status(final, self.settings, error_type=live.error_type)
                attributes.update(
                    run_end_attributes(
                        final,
                        self.settings,
                        span_dropped_events=span.dropped_events,  # type: ignore[attr-defined]
                    )
                )
                self._close_children(live, _time_ns() if end_ns is None else end_ns)
                span.set_attributes(attributes)
                if status.status_code is not StatusCode.UNSET:
                    span.set_status(status)
        except Exception:
            self._fault("settling a run span")
        finally:
            if not live.recorded:
                self._finalise_unrecorded(live, end_ns)
            elif live.owned:
                span.end(end_time=end_ns)

    # --- internals ----------------------------------------------------------------------------

    def _start_run(
        self, span: trace.Span, attributes: Mapping[str, Any], start_ns: int | None
    ) -> _LiveRun:
        context = span.get_span_context()
        trace_id = format(context.trace_id, "032x")
        run_id = attributes.get(RUN_ID)
        if not run_id:
            run_id = f"run-{uuid.uuid4()}"
            span.set_attribute(RUN_ID, run_id)
        if SPAN_KIND not in attributes:
            span.set_attribute(SPAN_KIND, "run")
        run_id = str(run_id)
        with self._lock:
            expected = self._expected.pop(run_id, None)
        session_id = attributes.get(GEN_AI_CONVERSATION_ID)
        # A plain invoke_agent span without a conversation id: its trace is its session.
        session_id = trace_id if session_id is None else str(session_id)
        prompt = expected if expected is not None else str(attributes.get(RUN_PROMPT, ""))
        agent_name = attributes.get(GEN_AI_AGENT_NAME)
        snapshot = self.store.create_run(
            session_id,
            prompt,
            run_id=run_id,
            agent_name=None if agent_name is None else str(agent_name),
            trace_id=trace_id,
            span_id=format(context.span_id, "016x"),
            attributes=dict(getattr(span, "attributes", None) or attributes),
            created_at_ms=(_time_ns() if start_ns is None else start_ns) // 1_000_000,
        )
        live = _LiveRun(run_id, session_id, span, owned=expected is not None)
        with self._lock:
            self._live[run_id] = live
            self._by_span[context.span_id] = live
            self._current[session_id] = run_id
        self._notify_run(snapshot)
        for hook in self._hook_calls["on_run_start"]:
            try:
                hook(snapshot)
            except Exception:
                self._fault("a hook's on_run_start")
        return live

    def _finalise(self, live: _LiveRun, end_ns: int, error: str | None) -> None:
        snapshot = self.store.finish(live.run_id, error=error, at_ms=end_ns // 1_000_000)
        live.final = snapshot  # the store may evict the run at once (max_finished_runs)
        self._notify_run(snapshot)
        for hook in self._hook_calls["on_run_end"]:
            try:
                hook(snapshot)
            except Exception:
                self._fault("a hook's on_run_end")

    def _finalise_unrecorded(self, live: _LiveRun, end_ns: int | None = None) -> None:
        """A run whose span the sampler dropped gets no ``on_end``: finish it here."""
        with self._lock:
            self._by_span.pop(live.span.get_span_context().span_id, None)
            self._live.pop(live.run_id, None)
            if self._current.get(live.session_id) == live.run_id:
                del self._current[live.session_id]
        self._finalise(live, _time_ns() if end_ns is None else end_ns, None)

    def _pickup(self, live: _LiveRun, span: Any) -> None:
        """Record span events added with the plain OpenTelemetry API (no sequence attribute).

        ``exception`` events are OpenTelemetry's own; their message is already the error. Events
        are remembered by identity, so a second pickup (after a cancel) records only new ones.
        Plain events the span dropped before the pickup (the SDK keeps 128 per span by default,
        evicting the oldest) are lost: their number is recorded as a ``span_events_dropped``
        event and logged once per run.
        """
        events: Sequence[Any] = span.events
        dropped = getattr(span, "dropped_events", 0) or 0
        picked = live.picked
        runtrace_present = picked_present = 0
        new: list[Any] = []
        for span_event in events:
            attributes = span_event.attributes
            if attributes and EVENT_SEQUENCE in attributes:
                runtrace_present += 1
            elif span_event in picked:
                picked_present += 1
            elif span_event.name != "exception":
                new.append(span_event)
        if dropped:
            # Dropped ones that the store has anyway: runtrace's own, and plain ones picked up
            # before (after a cancel). The rest never reached the store.
            kept = len(live.span_added) - runtrace_present + len(picked) - picked_present
            lost = dropped - kept - live.drops_reported
            if lost > 0:
                self._report_lost(live, lost, dropped, events[0].timestamp if events else None)
        for span_event in new:
            picked.add(span_event)
            attributes = span_event.attributes
            try:
                model = event_from_attributes(span_event.name, attributes)
            except ValidationError:
                model = GenericEvent(
                    type=UNPARSED_SPAN_EVENT,
                    name=span_event.name,
                    attributes=dict(attributes or {}),
                )
            self.record_live(live, model, on_span=False, timestamp_ns=span_event.timestamp)

    def _report_lost(self, live: _LiveRun, lost: int, dropped: int, at_ns: int | None) -> None:
        if not live.drops_reported:
            log.warning(
                "runtrace: run %s lost %d plain span event(s): its span dropped them before "
                "runtrace could pick them up (span event limit; %d dropped in all). Raise "
                "SpanLimits(max_events=...) or record through Runtrace / record_event, which "
                "keep every event.",
                live.run_id,
                lost,
                dropped,
            )
        live.drops_reported += lost
        event = GenericEvent(type=SPAN_EVENTS_DROPPED, count=lost)
        self.record_live(live, event, on_span=False, timestamp_ns=at_ns)

    def _child_span(self, live: _LiveRun, event: BaseEvent, ns: int) -> None:
        assert self.tracer is not None
        start = child_span_start(event, live.run_id, self.settings)
        if start is not None:
            key = start.key
            with live.lock:
                if key in live.children:
                    return
                live.children[key] = None  # reserved: a second start of the same call is skipped
            # Started outside the lock: start_span calls the sampler and every span processor,
            # any of which may cancel or end the run (which closes the children under the lock).
            try:
                child = self.tracer.start_span(
                    start.name,
                    context=trace.set_span_in_context(live.span),
                    attributes=start.attributes,
                    start_time=start.start_ms * 1_000_000 if start.start_ms else ns,
                )
            except BaseException:
                with live.lock:
                    if live.children.get(key, _MISSING) is None:
                        del live.children[key]
                raise
            with live.lock:
                # Still reserved and the run still open: keep it. Otherwise the run was settled
                # (its children closed) or the call ended while the span was starting.
                keep = not live.settled and key in live.children and live.children[key] is None
                if keep:
                    live.children[key] = child  # type: ignore[assignment]
            if not keep:
                if live.settled:
                    child.set_attribute("runtrace.span.unfinished", True)
                child.end(max(_time_ns(), getattr(child, "start_time", None) or 0))
            return
        end = child_span_end(event, self.settings)
        if end is not None:
            with live.lock:
                child = live.children.pop(end.key, None)
            if child is not None:
                child.set_attributes(end.attributes)
                child.set_status(end.status)
                child.end(end.end_ms * 1_000_000 if end.end_ms else ns)

    def _close_children(self, live: _LiveRun, end_ns: int) -> None:
        """Child spans still open when the run ends end with it, marked unfinished."""
        with live.lock:
            children = [child for child in live.children.values() if child is not None]
            live.children.clear()  # a child still starting sees the run settled, and ends itself
        for child in children:
            child.set_attribute("runtrace.span.unfinished", True)
            child.end(max(end_ns, getattr(child, "start_time", None) or end_ns))

    def _notify_run(self, snapshot: RunSnapshot) -> None:
        for sink in self.sinks:
            try:
                sink.on_run(snapshot)
            except Exception:
                self._fault("a sink's on_run")

    def _fault(self, what: str) -> None:
        """Log an internal, sink or hook error; re-raise it when errors should show (tests)."""
        log.exception("runtrace: error in %s", what)
        raise_errors = self._raise_errors
        if raise_errors is None:
            raise_errors = _auto_raise()
        if raise_errors:
            raise


def find_live_run(span: trace.Span) -> tuple[RunSpanProcessor, _LiveRun] | None:
    """The processor and open run whose span is ``span``, across every processor."""
    if not span.get_span_context().is_valid:
        return None
    for processor in list(_PROCESSORS):
        live = processor.live_run_for_span(span)
        if live is not None:
            return processor, live
    return None
