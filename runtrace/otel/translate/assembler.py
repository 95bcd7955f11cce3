"""RunAssembler: readings of spans (and log records) in, runs with their events out.

Used unchanged by the span processor (in-process: every span starts, then ends) and the OTLP
receiver (only ended spans, children before parents). The rules:

- An agent span is a run (an OpenInference AGENT that only wraps other agents is not). Nested in
  another run it is also that run's subagent: ``subagent_start`` / ``subagent_end`` on the outer
  run. A wrapper (workflow, chain) is a run only when no run is inside it but work is.
- A child's events land on its run when the child ends, at the times they happened; a child ending
  after its run ended still attaches, never reopening it. Children whose run is not known yet are
  held (bounded, counted) until it is.
- Outcome: an ERROR status or escaping exception fails the run with its message; a tool error the
  agent recovers from is a failed tool call only. A cancellation on the run span, on a child that
  outlived it (or ended last, the run span UNSET), or the run span ending while one of its tool
  calls is still open cancels it. Otherwise it completes, with the span's result and its own
  token total (which replaces the turns' sum: tokens count once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from . import runtrace
from .dialects import read_span, read_start
from .engine import Engine
from .reading import SpanReading
from .stats import AssemblerStats
from .target import RunTarget
from .tree import Held, Node, Run

__all__ = ["Claimer", "RunAssembler"]

Claimer = Callable[[int], "tuple[ReadableSpan, str, bool] | None"]
"""``span id -> (span, run id, ended)`` for one of the caller's own runs, None for any other
span: how an in-process caller lets the assembler claim its runs only when a foreign span or
log record turns up under one (see :class:`RunAssembler`)."""


class RunAssembler(Engine):
    """Turns spans into runs on ``target``. Thread-safe; pure (no I/O of its own).

    ``read``: span -> reading (:func:`~runtrace.otel.translate.read_span`). ``max_open`` /
    ``max_remembered`` / ``max_held``: bounds on open spans, ended spans kept for late children,
    and children waiting for their run. Out of process, call :meth:`end_batch` after each batch of
    spans, :meth:`flush` now and then, :meth:`shutdown` at the end.

    ``claimer``: in-process, the caller's own runs (which it records itself) are claimed on
    first need, when a foreign span starts or ends, or a log record arrives, directly under one:
    most of them never have one, and cost the assembler nothing. (:meth:`claim` claims one at
    once.)
    """

    def __init__(
        self,
        target: RunTarget,
        *,
        read: Callable[[ReadableSpan], SpanReading] | None = None,
        max_open: int = 100_000,
        max_remembered: int = 20_000,
        max_held: int = 20_000,
        claimer: Claimer | None = None,
    ) -> None:
        super().__init__(
            target,
            read if read is not None else read_span,
            max_open=max_open,
            max_remembered=max_remembered,
            max_held=max_held,
        )
        self._lock = threading.RLock()  # target callbacks may start spans on this thread
        self._claimer = claimer
        # A caller's own ``read`` reads every start whole; read_start reads most of them light.
        self._read_start = read_start if read is None else read

    @property
    def stats(self) -> AssemblerStats:
        """What the assembler has seen and done so far."""
        with self._lock:
            return self._count.snapshot(held=self._tree.held_count)

    # --- feeds -----------------------------------------------------------------------------

    def claim(
        self,
        span: ReadableSpan,
        run_id: str,
        *,
        adopted: bool = False,
        reading: SpanReading | None = None,
    ) -> None:
        """``span`` (just started) is run ``run_id``, which its caller records and ends itself
        (the processor's own runs): never create, record or finish it, but attach foreign child
        spans and nested agents to it. Pass its end to :meth:`on_end` as well. ``adopted``: a
        framework's agent span the caller keeps as a live run: it gets ``agent_start`` here and
        is its outer run's subagent, as a run made here would (:meth:`outcome` says how it
        ended); otherwise one of runtrace's own runs, which records both itself. ``reading``:
        the span's, if the caller has just read it."""
        if reading is None:
            reading = self._read(span)
        with self._lock:
            self._claim_read(span, reading, run_id, adopted=adopted)

    def _claim_read(
        self, span: ReadableSpan, reading: SpanReading, run_id: str, *, adopted: bool
    ) -> None:
        node = self._tree.get(reading.span_id)
        if node is None:
            parent_id = None if reading.parent_remote else reading.parent_id
            self._claim_own(parent_id)
            node = Node(reading, parent_id, "plain", live=span, seen_start=True)
            node.attributes = span.attributes
            self._forget(self._tree.add_open(node))
            parent = self._tree.get(parent_id)
            if parent is not None:
                self._note_child(parent, node)
        if node.run is None:
            self._claim(node, run_id, adopted=adopted)

    def _claim_own(self, span_id: int | None) -> None:
        """Claim the caller's own run that span ``span_id`` is, if it is one not claimed yet
        (see ``claimer``); an own run that already ended is claimed and ended at once."""
        if span_id is None or self._claimer is None or self._tree.get(span_id) is not None:
            return
        found = self._claimer(span_id)
        if found is None:
            return
        span, run_id, ended = found
        self._claim_read(span, self._read(span), run_id, adopted=False)
        if ended:
            self._end(span, self._read_end(span))

    def outcome(self, span_id: int) -> tuple[str | None, str | None, SpanReading] | None:
        """For a claimed run span that has ended (after :meth:`on_end`): ``(error, cancelled,
        reading)`` as the rules read its span and children, so a processor that records the
        run itself can end it the way the assembler would. None for any other span."""
        with self._lock:
            node = self._tree.get(span_id)
            run = None if node is None else node.run
            if run is None or not run.claimed or not node.ended:  # type: ignore[union-attr]
                return None
            if not run.started and run.node.reading.prompt:
                self._ensure_started(run, None)  # the prompt was known only at the end
            error, cancelled = self._outcome(run)
            return error, cancelled, run.node.reading

    def run_id(self, span_id: int) -> str | None:
        """The run span ``span_id`` is (made or claimed), if it is one: for recording events on a
        framework's agent span through runtrace's API."""
        with self._lock:
            node = self._tree.get(span_id)
            return None if node is None or node.run is None else node.run.run_id

    def on_start(self, span: ReadableSpan) -> None:
        """A span started in-process: an agent span becomes a live run at once."""
        reading = self._read_start(span)
        with self._lock:
            if self._tree.get(reading.span_id) is not None:
                return
            parent_id = None if reading.parent_remote else reading.parent_id
            self._claim_own(parent_id)
            node = Node(reading, parent_id, "plain", live=span, seen_start=True)
            node.attributes = span.attributes
            self._forget(self._tree.add_open(node))
            parent = self._tree.get(parent_id)
            if parent is not None and not parent.ended:
                self._refresh(parent)
            self._settle_state(node)
            if parent is not None:
                self._note_child(parent, node)
            if reading.role == "tool":
                owner = self._tree.resolve(parent_id, Held("span", reading.trace_id, 0))
                if isinstance(owner, Run):
                    owner.open_tools[reading.span_id] = node
                    node.owner = owner

    def on_end(self, span: ReadableSpan) -> None:
        """A span ended (in-process or received): its events land on its run."""
        reading = self._read_end(span)
        with self._lock:
            self._end(span, reading)

    def _end(self, span: ReadableSpan, reading: SpanReading) -> None:
        self._count.spans_seen += 1
        node = self._tree.get(reading.span_id)
        if node is not None and node.ended:
            self._count.duplicate_spans += 1
            return
        if node is None:
            if not reading.parent_remote:
                self._claim_own(reading.parent_id)
            node = Node(reading, reading.parent_id, "plain", attributes=span.attributes)
            self._tree.add_ended(node)
            self._settle_state(node)
            parent = self._tree.get(node.parent_id)
            if parent is not None:
                self._note_child(parent, node)
        else:
            changed = node.reading.role != reading.role
            node.reading = reading
            node.live = None
            if node.run is None:
                node.attributes = span.attributes
            self._tree.add_ended(node)
            if changed and node.run is None:
                self._settle_state(node)
        node.ended = True
        if node.owner is not None:
            node.owner.open_tools.pop(reading.span_id, None)
        self._ended(node)

    def _read_end(self, span: ReadableSpan) -> SpanReading:
        """The reading of an ended span; for one of runtrace's own runs claimed here, without
        its events, which the run's recorder has already (the assembler never records them)."""
        context = span.context
        with self._lock:
            node = None if context is None else self._tree.get(context.span_id)
            own = node is not None and node.run is not None and node.run.own
        if own:
            reading = runtrace.read(span, events=False)
            if reading is not None:
                return reading
        return self._read(span)

    def on_log(
        self,
        trace_id: int,
        span_id: int,
        name: str,
        attributes: Mapping[str, Any],
        at_ns: int,
        *,
        body: Any = None,
    ) -> None:
        """A log record tied to span ``span_id`` (GenAI events, runtrace's own events as logs):
        an event of that span's run, ``name`` its type. A mapping ``body`` adds its fields."""
        fields: dict[str, Any] = dict(body) if isinstance(body, Mapping) else {}
        if body is not None and not fields:
            fields["body"] = body
        fields.update(attributes)
        with self._lock:
            self._count.logs_seen += 1
            self._claim_own(span_id)
            item = Held("log", trace_id, at_ns, log=(name, fields))
            self._place([item], span_id)

    def _forget(self, nodes: list[Node]) -> None:
        for lost in nodes:
            self._count.open_forgotten += 1
            lost.live = None

    def end_batch(self) -> None:
        """The feed has no more spans for now: runs whose span ended UNSET out of process (their
        outcome may still come from a child ending after them) are finished."""
        with self._lock:
            deferred = list(self._deferred.values())
            self._deferred.clear()
            for run in deferred:
                self._finish(run)

    def flush(self) -> None:
        """:meth:`end_batch`, and children held for a parent that never came attach to the run
        of their trace when it has one (a framework that never ended an intermediate span)."""
        with self._lock:
            self.end_batch()
            for span_id in list(self._tree.held):
                group = self._tree.peek(span_id)
                run = self._trace_runs.get(group[0].trace_id) if group else None
                if run is not None:
                    self._attach(run, self._tree.release(span_id))

    def shutdown(self) -> None:
        """:meth:`flush`; held children with no run become runs of their own (failed: their
        trace is incomplete) and runs whose span never ended end cancelled."""
        with self._lock:
            self.flush()
            while self._tree.held:
                self._orphans(*self._tree.pop_oldest())
            for node in list(self._tree.open.values()):
                run = node.run
                if run is not None and not run.claimed and not run.finished:
                    self._count.runs_unended += 1
                    run.late_cancel = "shut down before the run's span ended"
                    self._finish(run)
