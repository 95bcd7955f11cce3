"""RunSpanProcessor: the SDK callbacks that turn run spans into live runs, and the recording,
cancelling and ending of those runs.

A span is a run when runtrace started it or it is a GenAI ``invoke_agent`` span that is not one of
runtrace's own child spans (:func:`~runtrace.otel.run_span.is_run_span`). ``on_start`` creates the
run; events recorded through runtrace update it live; ``on_end`` picks up span events added with
the plain OpenTelemetry API, finalises the snapshot and hands it to every sink. Every other span,
except runtrace's own child spans, goes to :attr:`RunSpanProcessor._foreign`, the seam where the
translator of framework spans plugs in. The processor never raises into the application: faults go
through :class:`~runtrace.faults.Faults` (logged and counted; re-raised under pytest).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from ..events import BaseEvent
from ..faults import Faults
from ..hooks import RunHooks
from ..runs import RunEventRecord, RunSnapshot, RunStatus, event_record, finish
from ..sink import PersistingSink, RunSink, SnapshotReadingSink, flush_all, shutdown_all
from ..store import RunStore
from . import semconv as sc
from .cancel_hook import CancelSpanHook
from .children import CHILD_EVENT_TYPES, close_children, on_child_event
from .fanout import RunFanout
from .foreign import ForeignRuns
from .live import LiveRun, LiveRuns
from .pickup import pickup
from .run_span import is_own_span, is_run_span, run_end_attributes, run_status
from .sdk_span import add_clean_event
from .settings import SpanSettings
from .span_events import event_attributes
from .translate import mapping, read_span

__all__ = ["RunSpanProcessor", "find_live_run"]

_time_ns = time.time_ns
_NS_PER_MS = 1_000_000

EventInput = BaseEvent | dict[str, Any] | str | bytes
"""What ``record`` accepts: an event model, a dict, or JSON text (validated once)."""

# Every live processor, so that module-level ``record_event`` can find the run of a plain span.
_PROCESSORS: weakref.WeakSet[RunSpanProcessor] = weakref.WeakSet()


class RunSpanProcessor(SpanProcessor):
    """An OpenTelemetry ``SpanProcessor`` that keeps every run span as a live run.

    ``store``: where runs live (a new :class:`~runtrace.store.RunStore` by default).
    ``sinks``: :class:`~runtrace.sink.RunSink` objects given every run change and event.
    ``hooks``: :class:`~runtrace.hooks.RunHooks` subclasses (only overridden methods are called).
    ``settings``: how runs look on spans. ``cancel_ends_span``: install the built-in hook that
    ends a cancelled run's span at once. ``raise_errors``: re-raise internal, sink and hook
    errors instead of logging them; by default only under pytest.
    """

    def __init__(
        self,
        store: RunStore | None = None,
        sinks: Iterable[RunSink] = (),
        hooks: Iterable[RunHooks] = (),
        *,
        settings: SpanSettings | None = None,
        cancel_ends_span: bool = True,
        raise_errors: bool | None = None,
    ) -> None:
        self.store = store if store is not None else RunStore()
        self.settings = settings if settings is not None else SpanSettings()
        self.sinks: tuple[RunSink, ...] = tuple(sinks)
        readers = 0
        for sink in self.sinks:  # retention lets a run go only once these have stored it
            if isinstance(sink, PersistingSink):
                sink.add_persisted_listener(self.store.persistence_listener())
            if isinstance(sink, SnapshotReadingSink):  # reads runs' newest snapshots itself
                sink.read_snapshots_from(self.store.snapshot)
                readers += 1
        # Whether some sink needs the run's snapshot right after each event; the others read
        # the newest when they write, so the agent's thread makes none per counted event.
        self._exact_snapshots = readers < len(self.sinks)
        self.hooks: tuple[RunHooks, ...] = tuple(hooks)
        self.tracer: trace.Tracer | None = None
        """Tracer for child spans; :class:`~runtrace.otel.api.Runtrace` sets it. Without one,
        tool calls and subagents stay span events only."""
        self.faults = Faults("runtrace.otel", raise_errors)
        """The fault policy of this processor, its sinks and hooks (``faults.counts``)."""
        all_hooks = self.hooks + ((CancelSpanHook(self),) if cancel_ends_span else ())
        self._fan = RunFanout(self.sinks, all_hooks, self.faults)
        self._event_hooks = bool(self._fan.on_event)
        # One sink (the common case) is called directly, without the fan-out's loop.
        self._sink_on_event: Callable[[RunSnapshot, RunEventRecord], object] | None = (
            None
            if not self.sinks
            else self.sinks[0].on_event
            if len(self.sinks) == 1
            else self._fan.sink_on_event
        )
        self._after_event = self._event_hooks or bool(self._fan.sink_on_event)
        self._runs = LiveRuns()
        self.foreign = ForeignRuns(self.store, self._fan, claimer=self._runs.claim_own)
        """Runs from spans runtrace did not start (framework instrumentations): the translator.
        runtrace's own runs reach it only once a foreign span or log record is under one."""
        self._is_shutdown = False
        _PROCESSORS.add(self)

    # --- SpanProcessor -------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        # is_run_span and is_own_span in one lookup of runtrace's marker: the SDK's attribute
        # mapping costs a Python call (and, for a missing key, an exception) per lookup. The
        # fault policy as try/except, not Faults.guard: a generator context manager per span.
        attributes = span.attributes
        kind = None if attributes is None else attributes.get(sc.SPAN_KIND)
        if kind is not None:  # runtrace's own span: a run, or a child span that never is one
            if kind == sc.KIND_RUN:
                try:
                    self._start_run(span, attributes, span.start_time)  # type: ignore[arg-type]
                except Exception:
                    self.faults.report("starting a run span")
        elif attributes is not None and is_run_span(attributes):
            try:
                self._start_run(span, attributes, span.start_time)
            except Exception:
                self.faults.report("starting a run span")
        else:
            try:
                self.foreign.on_start(span)
            except Exception:
                self.faults.report("a foreign span's start")

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        ended = self._runs.end(span, context.span_id) if self._runs.has(context.span_id) else None
        if ended is None:
            if not is_own_span(span.attributes):
                try:
                    self.foreign.on_end(span)
                except Exception:
                    self.faults.report("a foreign span's end")
            return
        try:
            self._end_run_span(span, context.span_id, *ended)
        except Exception:
            self.faults.report("ending a run span")

    def _end_run_span(self, span: ReadableSpan, span_id: int, live: LiveRun, settled: bool) -> None:
        end_ns = span.end_time if span.end_time is not None else _time_ns()
        # Foreign children first (a framework's tool and model spans under this run), so
        # their events are in before the run's final snapshot goes to the sinks.
        if live.claimed:
            try:
                self.foreign.on_end(span)
            except Exception:
                self.faults.report("a run span's end, for the translator")
        # Plain span events: all of them for a span that plain OpenTelemetry code ended, the
        # ones added after a cancel settled it otherwise (none for spans runtrace ends).
        pickup(live, span, self._record_picked)
        if not settled:
            close_children(live, end_ns)
        error = None
        if span.status.status_code is StatusCode.ERROR:
            error = span.status.description or "span ended with status ERROR"
        if not live.owned:  # a framework's span: the translator's outcome rules
            error = self._foreign_outcome(live, span_id, end_ns, error)
        self._finalise(live, end_ns, error)

    def _foreign_outcome(
        self, live: LiveRun, span_id: int, end_ns: int, error: str | None
    ) -> str | None:
        """End an adopted run (a framework's ``invoke_agent`` span) as the translator reads it:
        cancelled by an interrupted tool call or a ``CancelledError`` under it, failed with the
        exception's message, or completed with the span's result and run-level token total."""
        decided = self.foreign.outcome(span_id)
        snapshot = self.store.snapshot(live.run_id)
        if decided is None or snapshot is None or snapshot.status.is_terminal:
            return error
        failure, cancelled, reading = decided
        if cancelled is not None:
            with self._runs.lock:
                cancelled_now = self._cancel_in_store(live, cancelled, end_ns)
            if cancelled_now is not None:
                self._after_cancel(live, cancelled_now, cancelled)
            return None
        if failure is not None or error is not None:
            return failure or error
        agent_end = mapping.agent_end(reading)
        if agent_end.get("text") or agent_end.get("usage"):  # the span says how the run ended
            self.record_live(live, agent_end, on_span=False, at_ns=end_ns)
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush every sink within one shared deadline of ``timeout_millis``."""
        return flush_all(self.sinks, timeout_millis, self.faults)

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Shut every sink down (once) within one shared deadline of ``timeout_millis``."""
        if self._is_shutdown:
            return
        self._is_shutdown = True
        with self.faults.guard("shutting down the translator"):
            self.foreign.shutdown()
        shutdown_all(self.sinks, timeout_millis, self.faults)

    # --- runs ----------------------------------------------------------------------------------

    def expect_run(
        self,
        run_id: str,
        prompt: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        span_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """The next span carrying ``runtrace.run.id = run_id`` is one runtrace starts and ends,
        with this prompt (kept off the span unless content capture is on) and the caller's own
        ``attributes`` as given (the span holds them as far as it can). The caller has checked
        the run's fields (:func:`runtrace.runs.check_run_fields`), as ``Runtrace.begin_run``
        does: the store does not check them again. ``span_attributes``, the attributes the span
        is started with, are what the store keeps (the caller's own as given), read from the
        span when not given."""
        self._runs.expect(run_id, prompt, attributes, span_attributes)

    def start_unrecorded(
        self,
        span: trace.Span,
        attributes: Mapping[str, Any],
        prompt: str,
        extra: Mapping[str, Any] | None = None,
    ) -> LiveRun:
        """Keep a run whose span the sampler dropped (no ``on_start`` came): the store and the
        sinks still get it; only the span side is missing."""
        self.expect_run(str(attributes[sc.RUN_ID]), prompt, extra, span_attributes=attributes)
        return self._start_run(span, attributes, None)

    def live_run(self, run_id: str) -> LiveRun | None:
        """The open run ``run_id`` (None once its span ended)."""
        return self._runs.get(run_id)

    def live_run_for_span(self, span: trace.Span) -> LiveRun | None:
        """The open run whose span is ``span``, if it is one of this processor's runs."""
        live = self._runs.for_span(span.get_span_context().span_id)
        return live if live is not None and live.span is span else None

    def current_run_id(self, session_id: str) -> str | None:
        """The session's current run: the last one started whose span is still open."""
        return self._runs.current(session_id)

    def record(self, run_id: str, event: EventInput) -> None:
        """Record ``event`` on run ``run_id``: store, span event, child spans, sinks, hooks.

        A run whose span already ended still gets the event in the store and the sinks.
        """
        live = self._runs.get(run_id)
        if live is None:
            snapshot, record = self.store.record(run_id, event)
            self._after_record(snapshot, record)
            return
        self.record_live(live, event)

    def record_live(
        self, live: LiveRun, event: EventInput, *, on_span: bool = True, at_ns: int | None = None
    ) -> None:
        """The hot path of :meth:`record`, for callers that hold the live run; ``at_ns`` is
        the event's time (epoch ns, now by default)."""
        ns = _time_ns() if at_ns is None else at_ns
        # The record and the snapshot are made only for sinks and hooks: the span needs the
        # event's number only.
        after = self._after_event
        sequence, at_ms, model, snapshot = self.store.append(
            live.run_id, event, ns // _NS_PER_MS, snapshot_after=after and self._exact_snapshots
        )
        if on_span and not live.settled and live.recorded:
            event_type = model.type
            try:
                add_clean_event(
                    live.span,  # type: ignore[arg-type]
                    event_type,
                    event_attributes(model, self.settings, sequence=sequence),
                    ns,
                    live.event_limit,
                )
                live.span_added.append(None)
                if event_type in CHILD_EVENT_TYPES:
                    tracer = self.tracer
                    if tracer is not None and self.settings.child_spans:
                        on_child_event(tracer, live, model, ns, self.settings)
            except Exception:
                self.faults.report("adding a span event")
        if after:
            self._after_record(snapshot, event_record(sequence, at_ms, model))

    def _record_picked(self, live: LiveRun, event: BaseEvent, at_ns: int | None) -> None:
        self.record_live(live, event, on_span=False, at_ns=at_ns)

    def _after_record(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        sink_on_event = self._sink_on_event
        if sink_on_event is not None:
            try:
                sink_on_event(snapshot, record)
            except Exception:
                self.faults.report("a sink's on_event")
        if self._event_hooks:
            self._fan.on_event(record.event, snapshot.id, snapshot.session_id)

    def cancel(
        self, run_id: str, reason: str = "cancelled by host", at_ns: int | None = None
    ) -> bool:
        """Cancel the run, as the reference's ``RunHandle::cancel``.

        Only the session's current, unfinished run can be cancelled; otherwise False. Sets the
        token, marks the run cancelled (the reason kept in ``error``), calls every hook's
        ``on_run_cancelled`` once, and the built-in hook ends the span with the cancelled status.
        """
        runs = self._runs
        with runs.lock:
            live = runs.get(run_id)
            if live is None or live.settled or not runs.is_current(live):
                return False
            snapshot = self._cancel_in_store(live, reason, at_ns)
        if snapshot is None:
            return False
        self._after_cancel(live, snapshot, reason)
        return True

    def cancel_on_exit(self, live: LiveRun, reason: str, at_ns: int | None = None) -> None:
        """The run's code left with a cancellation (``CancelledError``, ``KeyboardInterrupt``,
        ``GeneratorExit``, or any error after the token was set): the run ends cancelled,
        whether or not it is the session's current run. Hooks are still called only once."""
        with self._runs.lock:
            snapshot = self._cancel_in_store(live, reason, at_ns)
        if snapshot is not None:
            self._after_cancel(live, snapshot, reason)
        else:
            live.token.cancel(reason)  # the agent sees it stopped, whatever the store says

    def _cancel_in_store(self, live: LiveRun, reason: str, at_ns: int | None) -> RunSnapshot | None:
        """Under the runs' lock: the store's transition decides. Returns the cancelled snapshot
        if this call cancelled the run, None if it had already ended (completed, failed, or
        cancelled by an earlier call): then nothing else happens."""
        before = self.store.snapshot(live.run_id)
        if before is None or before.status.is_terminal:
            return None
        at_ms = None if at_ns is None else at_ns // _NS_PER_MS
        snapshot = self.store.mark_cancelled(live.run_id, reason=reason, at_ms=at_ms)
        if snapshot.status is not RunStatus.CANCELLED:
            return None  # a terminal event got in first: the run keeps its outcome
        live.token.cancel(reason)
        live.cancel_ns = at_ns
        return snapshot

    def _after_cancel(self, live: LiveRun, snapshot: RunSnapshot, reason: str) -> None:
        self._fan.on_run(snapshot)
        self._fan.on_run_cancelled(live.run_id, live.session_id, reason)

    def mark_failed(
        self, live: LiveRun, error: str, error_type: str, at_ns: int | None = None
    ) -> RunSnapshot:
        """The run's code raised: failed with ``error`` (never over a cancellation)."""
        live.error_type = error_type
        at_ms = None if at_ns is None else at_ns // _NS_PER_MS
        snapshot = self.store.mark_failed(live.run_id, error, at_ms=at_ms)
        self._fan.on_run(snapshot)
        return snapshot

    def end_run(self, run_id: str, end_ns: int | None = None) -> None:
        """Settle the run's span: pick up plain span events, close child spans, set the final
        status and attributes (true event count, span drops, token totals), and end the span if
        runtrace started it, at ``end_ns`` (now by default). Idempotent; the store's snapshot
        is finalised in ``on_end``."""
        with self._runs.lock:
            live = self._runs.get(run_id)
            if live is None or live.settled:
                return
            live.settled = True
            if end_ns is None:
                end_ns = live.cancel_ns
        span = live.span
        try:
            try:
                snapshot = self.store.snapshot(run_id) if live.recorded else None
                if snapshot is not None:  # recorded: the SDK span of an SDK provider
                    self._settle(live, cast(Span, span), snapshot, end_ns)
            except Exception:
                self.faults.report("settling a run span")
        finally:
            if not live.recorded:
                self._finalise_unrecorded(live, end_ns)
            elif live.owned:
                span.end(end_time=end_ns)

    def _settle(self, live: LiveRun, span: Span, snapshot: RunSnapshot, end_ns: int | None) -> None:
        """Put the final status and attributes on an open run span."""
        pickup(live, span, self._record_picked)
        snapshot = self.store.snapshot(live.run_id) or snapshot
        final = finish(snapshot)  # what on_end will store, to put on the span now
        status, attributes = run_status(final, self.settings, error_type=live.error_type)
        attributes.update(
            run_end_attributes(final, self.settings, span_dropped_events=span.dropped_events)
        )
        close_children(live, _time_ns() if end_ns is None else end_ns)
        span.set_attributes(attributes)
        if status.status_code is not StatusCode.UNSET:
            span.set_status(status)

    # --- internals ----------------------------------------------------------------------------

    def _start_run(
        self, span: trace.Span, attributes: Mapping[str, Any], start_ns: int | None
    ) -> LiveRun:
        context = span.get_span_context()
        trace_id = format(context.trace_id, "032x")
        run_id = attributes.get(sc.RUN_ID)
        expected = None if not run_id else self._runs.take_expected(str(run_id))
        reading = None
        if expected is not None:  # started through Runtrace, which set every runtrace attribute
            prompt, given, started = expected
            if started is None:
                started = getattr(span, "attributes", None) or attributes
            # What the span was given (a plain dict: the SDK's mapping costs a Python call per
            # key), with the caller's own values as given (an int beyond int64 whole, not as its
            # digits).
            stored = dict(started)
            stored.update({k: v for k, v in given.items() if k in stored})
            session_id = str(started.get(sc.GEN_AI_CONVERSATION_ID, trace_id))
            agent_name = started.get(sc.GEN_AI_AGENT_NAME)
        else:
            stored = dict(getattr(span, "attributes", None) or attributes)
            # A framework's (or plain OpenTelemetry code's) agent span: read as the translator
            # reads it, so the run has the same id, session and agent whether it is seen here or
            # received over OTLP. Nothing is written onto the span.
            reading = read_span(cast(ReadableSpan, span))
            run_id = run_id or mapping.run_id(reading)
            session_id = reading.session_id or trace_id  # no conversation id: the trace
            agent_name = reading.agent_name
            prompt = reading.prompt or str(attributes.get(sc.RUN_PROMPT, ""))
        run_id = str(run_id)
        span_hex = format(context.span_id, "016x")
        create = partial(
            self.store.create_run,
            session_id,
            prompt,
            agent_name=None if agent_name is None else str(agent_name),
            trace_id=trace_id,
            span_id=span_hex,
            attributes=stored,
            created_at_ms=(_time_ns() if start_ns is None else start_ns) // _NS_PER_MS,
            # Runtrace.begin_run checked the caller's fields; the rest are runtrace's own.
            checked=expected is not None,
        )
        try:
            snapshot = create(run_id=run_id)
        except ValueError:
            if expected is not None:
                raise
            # A framework's id already taken (a replayed conversation, an id that is not
            # unique): the translator's rule, the same out of process, keeps both runs.
            run_id = f"{run_id}-{span_hex}"
            snapshot = create(run_id=run_id)
        live = LiveRun(run_id, session_id, span, owned=expected is not None)
        self._runs.add(live, context.span_id)
        if expected is None and isinstance(span, ReadableSpan):  # a framework's: claimed now
            self.foreign.claim(span, run_id, adopted=True, reading=reading)
        self._fan.on_run(snapshot)
        self._fan.on_run_start(snapshot)
        return live

    def _finalise(self, live: LiveRun, end_ns: int, error: str | None) -> None:
        snapshot = self.store.finish(live.run_id, error=error, at_ms=end_ns // _NS_PER_MS)
        live.final = snapshot  # the store may evict the run at once (max_finished_runs)
        self._fan.on_run(snapshot)
        self._fan.on_run_end(snapshot)

    def _finalise_unrecorded(self, live: LiveRun, end_ns: int | None = None) -> None:
        """A run whose span the sampler dropped gets no ``on_end``: finish it here."""
        self._runs.discard(live, live.span.get_span_context().span_id)
        self._finalise(live, _time_ns() if end_ns is None else end_ns, None)


def find_live_run(span: trace.Span) -> tuple[RunSpanProcessor, LiveRun] | None:
    """The processor and open run whose span is ``span``, across every processor."""
    if not span.get_span_context().is_valid:
        return None
    for processor in list(_PROCESSORS):
        live = processor.live_run_for_span(span)
        if live is not None:
            return processor, live
    return None
