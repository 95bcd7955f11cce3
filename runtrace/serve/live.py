"""Received runs shown while they run, before their run span arrives.

OTLP carries a span only once it ended, children before their parents, so the translator alone
shows a received run only when its run span comes: its children wait for it. Two kinds of span
say earlier that a run is open:

- a *pending* span, which :class:`~runtrace.otel.announce.AnnounceSink` sends from the recording
  process at a run's start and then every few events, with the events recorded since the last
  one (:func:`~runtrace.otel.translate.runtrace.read_pending` reads it as the open run);
- a framework's work span that names its run: pydantic-ai copies ``gen_ai.agent.call.id`` (the
  run id), the agent name and the conversation onto every child span through baggage, and its
  model and tool calls are children of the run span.

For either, :class:`ReceivedRuns` replays the run span's *start* into the
:class:`~runtrace.otel.processor.RunSpanProcessor` as it happens in-process: a stand-in SDK span
with the run span's trace and span ids and its start attributes goes through
``processor.on_start``, so the run is a live run of the processor, written to the sinks at once,
and the translator attaches the run's children to it as they arrive. runtrace's own runs then take
their events by sequence (``record_live``), in order, each once; a framework's take them from its
children through the translator. When the run span itself arrives, it ends the run through
``processor.on_end``, as an in-process run span ends, once the rest of its request is in (a
pydantic-ai tool cancelled with its run ends after the run span, in the same request).

Only the first run of a trace is shown early from a child: a later agent in the same trace may be
nested in a tool of the first (its children do not say so), and shows when its run span comes,
as the translator links it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext, TraceFlags

from ..otel import semconv as sc
from ..otel.live import LiveRun
from ..otel.pickup import SPAN_EVENTS_DROPPED
from ..otel.processor import RunSpanProcessor
from ..otel.run_span import run_span_name
from ..otel.translate import SpanEvent, SpanReading
from ..otel.translate import names as n
from ..otel.translate.genai import role_of
from ..otel.translate.reading import number, plain_event
from ..otel.translate.runtrace import KIND_PENDING, read_pending
from ..otel.translate.runtrace import read as read_runtrace
from ..sink import shutdown_all

__all__ = ["ReceivedRuns"]

log = logging.getLogger("runtrace.serve")

_Key = tuple[int, int]
"""A run span: (trace id, span id)."""

_END_ATTRIBUTES = frozenset(
    {
        sc.RUN_STATUS,
        sc.RUN_EVENT_COUNT,
        sc.RUN_SPAN_DROPPED_EVENTS,
        sc.RUN_RESULT,
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        sc.ERROR_TYPE,
    }
)
"""What a runtrace run span learns at its end: not part of the start a stand-in replays."""

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


@dataclass(slots=True)
class _Open:
    """A run shown before its span arrived."""

    live: LiveRun
    announced: bool  # one of runtrace's own (events by sequence), else a framework's
    next: int = 0  # runtrace's: the next sequence to record (sequences below are in)
    offset: int = 0  # runtrace's: sequences below it were in the file before this process
    waiting: dict[int, SpanEvent] = field(default_factory=dict)  # beyond a gap, by sequence


class ReceivedRuns(SpanProcessor):
    """In front of ``processor``: the receiver's spans go here (``on_end`` for each, then
    :meth:`end_batch` after each request, which handles the request). It shows runs before their
    run span arrives (see the module docs); every other span goes straight to the translator.

    ``resume``: runs a previous process left open in the database, with the number of events
    the database holds of each; their events continue after those (a runtrace run's sequences
    below that number are not recorded again). ``max_ended``: how many run spans it remembers
    after their end, so that a pending span arriving late is known to be stale.
    """

    def __init__(
        self,
        processor: RunSpanProcessor,
        *,
        resume: Mapping[str, int] | None = None,
        max_ended: int = 100_000,
    ) -> None:
        self.processor = processor
        self._resume = dict(resume or {})
        self._open: dict[_Key, _Open] = {}
        self._ended: OrderedDict[_Key, None] = OrderedDict()
        self._traces: OrderedDict[int, None] = OrderedDict()  # traces with a run known
        self._max = max_ended
        self._batch: list[ReadableSpan] = []
        self.stale = 0
        """Pending spans that arrived after their run had ended (their events are on the run
        span, which came first)."""

    def runs_open(self) -> int:
        """Runs shown early whose run span has not arrived yet."""
        return len(self._open)

    # --- SpanProcessor ---------------------------------------------------------------------

    def on_end(self, span: ReadableSpan) -> None:
        """Take one span of the request; the request is handled at :meth:`end_batch`."""
        self._batch.append(span)

    def end_batch(self) -> None:
        """The request is in: handle its spans. Pending spans first, since OTLP groups a
        request's spans by resource and instrumentation scope, so a run span may come before the
        pending span its process sent earlier; then the rest in order, run spans held back to
        the end (a pydantic-ai tool cancelled with its run ends after the run span), after the
        translator settled its UNSET runs (nested runs end first: their ``subagent_end`` reaches
        the outer run before it ends)."""
        batch, self._batch = self._batch, []
        call = self.processor.faults.call
        for span in batch:
            if (span.attributes or {}).get(sc.SPAN_KIND) == KIND_PENDING:
                call("a pending span", self._pending, span)
        last: list[ReadableSpan] = []
        for span in batch:
            if (span.attributes or {}).get(sc.SPAN_KIND) != KIND_PENDING:
                call("a received span", self._take_span, span, last)
        assembler = self.processor.foreign.assembler
        assembler.end_batch()
        for span in last:
            call("a received run span", self._end_run_span, span)
        if last:
            assembler.end_batch()

    def _take_span(self, span: ReadableSpan, last: list[ReadableSpan]) -> None:
        context = span.context
        attributes = span.attributes or {}
        if context is None:
            self.processor.foreign.on_end(span)
            return
        kind = attributes.get(sc.SPAN_KIND)
        if kind == sc.KIND_RUN:
            self._note(self._traces, context.trace_id)
            last.append(span)
            return
        if (context.trace_id, context.span_id) in self._open:
            last.append(span)  # the run span of a framework's run shown early
            return
        if kind is None:
            if attributes.get(n.OPERATION) == n.OP_INVOKE_AGENT:
                self._note(self._traces, context.trace_id)
            elif n.PAI_RUN_ID in attributes:
                self._first_child(span, attributes, context.trace_id)
        # runtrace's own child spans too: out of process the translator reads them (as other)
        self.processor.foreign.on_end(span)

    def _end_run_span(self, span: ReadableSpan) -> None:
        context = span.context
        assert context is not None
        key = (context.trace_id, context.span_id)
        self._note(self._ended, key)  # a pending span arriving after it is stale
        opened = self._open.pop(key, None)
        run_id = (span.attributes or {}).get(sc.RUN_ID)
        if opened is None and isinstance(run_id, str) and run_id in self._resume:
            reading = read_runtrace(span)  # continued here: it ends as announced runs do
            opened = None if reading is None else self._open_announced(reading, span)
            self._open.pop(key, None)
        if opened is None:
            self.processor.foreign.on_end(span)  # received without announcement
        elif opened.announced:
            self._end_announced(opened, span)
        else:
            self.processor.on_end(span)  # a framework's run span: ends it as in-process

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Shut the processor's sinks down, not its translator: the translator's shutdown ends
        the runs it holds open cancelled and makes failed runs of children whose run span has not
        come, right when the process recording them runs on, elsewhere. They stay open in the
        sinks instead; children still waiting are logged as lost."""
        held = self.processor.foreign.stats.held
        if held:
            log.warning(
                "runtrace serve: %d received spans or log records were still waiting for their "
                "run's span; they are not written",
                held,
            )
        shutdown_all(self.processor.sinks, 30_000, self.processor.faults)

    # --- runtrace's own runs ---------------------------------------------------------------

    def _pending(self, span: ReadableSpan) -> None:
        reading = read_pending(span)
        if reading is None:
            self.processor.foreign.on_end(span)  # names no run: the translator reads it as other
            return
        key = (reading.trace_id, reading.span_id)
        opened = self._open.get(key)
        if opened is None:
            if key in self._ended:
                self.stale += 1
                return
            opened = self._open_announced(reading, span)
            if opened is None:
                return
        self._numbered(opened, reading.events)

    def _open_announced(self, reading: SpanReading, span: ReadableSpan) -> _Open | None:
        """Start runtrace's run ``reading`` (of a pending span, or of a run span continued from
        a previous process) as a live run of the processor."""
        run_id = reading.run_id
        assert run_id is not None
        if self._exists(run_id):
            self.stale += 1
            return None
        attributes = {k: v for k, v in (span.attributes or {}).items() if k not in _END_ATTRIBUTES}
        attributes[sc.SPAN_KIND] = sc.KIND_RUN
        attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
        self.processor.expect_run(run_id, "", None)  # runtrace's own: it records every event
        live = self._start(
            run_span_name(reading.agent_name), reading, attributes, reading.start_ns, span
        )
        if live is None:
            return None
        offset = self._resume.pop(run_id, 0)
        opened = self._open[(reading.trace_id, reading.span_id)] = _Open(
            live, announced=True, next=offset, offset=offset
        )
        self._note(self._traces, reading.trace_id)
        return opened

    def _numbered(self, opened: _Open, events: tuple[SpanEvent, ...]) -> None:
        """Record the numbered events not recorded yet, in sequence order; those beyond a gap
        wait for it."""
        for event in events:
            sequence = event.sequence
            if sequence is not None and sequence >= opened.next:
                opened.waiting.setdefault(sequence, event)
        waiting = opened.waiting
        record = self.processor.record_live
        while opened.next in waiting:
            event = waiting.pop(opened.next)
            record(opened.live, event.model, on_span=False, at_ns=event.at_ns)
            opened.next += 1

    def _end_announced(self, opened: _Open, span: ReadableSpan) -> None:
        """runtrace's run span arrived: the events it holds that are not in yet, a count of
        those lost, its outcome, then the processor ends the run (its plain span events are
        picked up there, less those the announcements already brought)."""
        processor, live = self.processor, opened.live
        reading = read_runtrace(span)
        assert reading is not None
        end_ns = span.end_time or 0
        numbered = tuple(e for e in reading.events if e.sequence is not None)
        self._numbered(opened, numbered)
        gap = 0
        for sequence in sorted(opened.waiting):  # never came: go on after the gap
            event = opened.waiting.pop(sequence)
            gap += sequence - opened.next
            processor.record_live(live, event.model, on_span=False, at_ns=event.at_ns)
            opened.next = sequence + 1
        last = max((e.sequence or 0 for e in numbered), default=-1)
        beyond = [  # announced, yet not numbered on the span: picked up from plain span events
            (r.event.type, r.timestamp_ms)
            for r in processor.store.events(live.run_id)[max(0, last + 1 - opened.offset) :]
        ]
        kept: list[Event] = []
        for span_event in span.events:
            attributes = span_event.attributes or {}
            if sc.EVENT_SEQUENCE in attributes:
                continue
            if span_event.name != sc.EXCEPTION_EVENT:
                at_ms = span_event.timestamp // 1_000_000
                seen = (plain_event(span_event.name, attributes)["type"], at_ms)
                if seen in beyond:
                    beyond.remove(seen)
                    continue
            kept.append(span_event)
        count = number(span.attributes or {}, sc.RUN_EVENT_COUNT)
        plain = len([e for e in kept if e.name != sc.EXCEPTION_EVENT])
        lost = gap if count is None else max(0, count - (opened.next - gap) - plain)
        if lost:
            lost_event = {"type": SPAN_EVENTS_DROPPED, "count": lost}
            processor.record_live(live, lost_event, on_span=False, at_ns=end_ns)
        if reading.cancelled is not None or reading.outcome == "cancelled":
            processor.cancel_on_exit(live, reading.cancelled or "cancelled", end_ns)
        elif reading.error is not None or reading.outcome == "failed":
            error_type = reading.error_type or sc.ERROR_TYPE_AGENT
            processor.mark_failed(live, reading.error or "failed", error_type, end_ns)
        processor.on_end(_with_events(span, kept))

    # --- a framework's runs ----------------------------------------------------------------

    def _first_child(self, span: ReadableSpan, attributes: Mapping[str, Any], trace: int) -> None:
        """A pydantic-ai model or tool call: start the run it names, its parent, if it is the
        first run of its trace and not known yet."""
        parent = span.parent
        run_id = attributes.get(n.PAI_RUN_ID)
        if parent is None or parent.is_remote or not isinstance(run_id, str) or not run_id:
            return
        key = (trace, parent.span_id)
        if trace in self._traces or key in self._open or key in self._ended:
            return
        if role_of(span.name, attributes) not in ("tool", "model") or self._exists(run_id):
            return
        start = {n.OPERATION: n.OP_INVOKE_AGENT, n.PAI_RUN_ID: run_id}
        for name in (n.AGENT_NAME, n.CONVERSATION_ID):
            value = attributes.get(name)
            if isinstance(value, str) and value:
                start[name] = value
        agent = start.get(n.AGENT_NAME)
        reading_ids = _Ids(trace, parent.span_id)
        live = self._start(run_span_name(agent), reading_ids, start, span.start_time, span)
        if live is not None:
            self._open[key] = _Open(live, announced=False)
        self._note(self._traces, trace)

    # --- shared ----------------------------------------------------------------------------

    def _start(
        self,
        name: str,
        ids: _Ids | SpanReading,
        attributes: Mapping[str, Any],
        start_ns: int | None,
        like: ReadableSpan,
    ) -> LiveRun | None:
        """``processor.on_start`` of a stand-in for the run span ``ids``; the live run made."""
        context = SpanContext(ids.trace_id, ids.span_id, is_remote=False, trace_flags=_SAMPLED)
        stand_in = _StandIn(
            name,
            context,
            resource=like.resource,
            attributes=attributes,
            instrumentation_scope=like.instrumentation_scope,
        )
        stand_in.start(start_time=start_ns)
        self.processor.on_start(stand_in)
        return self.processor.live_run_for_span(stand_in)

    def _exists(self, run_id: str) -> bool:
        processor = self.processor
        return (
            processor.live_run(run_id) is not None or processor.store.snapshot(run_id) is not None
        )

    def _note(self, table: OrderedDict[Any, None], key: Any) -> None:
        table[key] = None
        if len(table) > self._max:
            table.popitem(last=False)


class _StandIn(Span):
    """A run span's start, replayed for the processor: started, never ended nor exported (the
    SDK makes its spans through a tracer, which would pick new ids; this one has the run's)."""


@dataclass(frozen=True, slots=True)
class _Ids:
    trace_id: int
    span_id: int


def _with_events(span: ReadableSpan, events: list[Event]) -> ReadableSpan:
    """``span`` with only ``events`` (and so no drops of its own to report)."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
