"""The assembler's engine: deciding what each span is, and sending what spans say to runs.

:class:`~runtrace.otel.translate.assembler.RunAssembler` is this plus its feeds and lock; the
rules themselves (outcomes, the events children bring) are pure functions in
:mod:`~runtrace.otel.translate.rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from ...errors import RunNotFound
from ...events import BaseEvent
from . import mapping, rules
from .reading import SPAN_EVENTS_DROPPED, SpanReading
from .runtrace import DIALECT as RUNTRACE
from .stats import Counters
from .target import RunTarget
from .tree import Held, Node, Run, Tree

__all__ = ["Engine"]

_WORK = frozenset({"tool", "model"})


class Engine:
    """State and decisions; callers hold the lock."""

    def __init__(
        self,
        target: RunTarget,
        read: Callable[[ReadableSpan], SpanReading],
        *,
        max_open: int,
        max_remembered: int,
        max_held: int,
    ) -> None:
        self._target = target
        self._read = read
        self._tree = Tree(max_open=max_open, max_ended=max_remembered, max_held=max_held)
        self._deferred: dict[int, Run] = {}
        self._trace_runs: dict[int, Run] = {}  # trace id -> its first run, for held strays
        self._max_traces = max_remembered
        self._count = Counters()

    # --- what a span is ----------------------------------------------------------------------

    def _settle_state(self, node: Node) -> None:
        """Decide what a span is, as far as its reading tells now."""
        r = node.reading
        if node.seen_start and r.dialect == RUNTRACE and r.role == "agent" and r.run_id:
            self._claim(node, r.run_id)  # runtrace's own run span started here: the processor's
        elif r.role == "agent":
            if r.may_wrap:
                node.state = "pending"
            else:
                self._make_run(node)
        elif r.role == "wrapper":
            above = self._tree.resolve(node.parent_id, Held("link", r.trace_id, 0))
            node.state = "plain" if isinstance(above, Run) else "pending"
        else:
            node.state = "plain"

    def _note_child(self, parent: Node, child: Node) -> None:
        role = child.reading.role
        if role == "agent":
            parent.agent_child = True
        elif role in _WORK:
            parent.work_child = True
            if parent.state == "pending" and parent.reading.role == "agent":
                self._make_run(parent)  # an agent doing work of its own: not a wrapper

    def _refresh(self, parent: Node) -> None:
        """In-process, a span whose attributes were set after its start: read it again."""
        if parent.live is None or parent.run is not None or parent.reading.role != "other":
            return
        reading = self._read(parent.live)
        if reading.role != "other":
            parent.reading = reading
            parent.attributes = parent.live.attributes
            self._settle_state(parent)

    def _claim(self, node: Node, run_id: str, *, adopted: bool = False) -> None:
        r = node.reading
        # A framework's span the processor adopted gets agent_start as a run made here would
        # (before its first child's events) and is its outer run's subagent; runtrace's own
        # runs record both themselves.
        session = r.session_id or f"{r.trace_id:032x}"
        node.run = Run(run_id, session, node, True, not adopted, own=not adopted)
        node.state = "run"
        self._count.runs_claimed += 1
        self._remember(node.run)
        self._place(self._tree.release(r.span_id), r.span_id)
        if adopted:
            self._link(node.run)

    def _make_run(self, node: Node) -> Run:
        r = node.reading
        run_id = mapping.run_id(r)
        session = r.session_id or f"{r.trace_id:032x}"
        for attempt in (run_id, f"{run_id}-{r.span_id:016x}"):
            try:
                self._target.create_run(
                    run_id=attempt,
                    session_id=session,
                    prompt=r.prompt or "",
                    agent_name=r.agent_name or None,
                    trace_id=f"{r.trace_id:032x}",
                    span_id=f"{r.span_id:016x}",
                    attributes=node.attributes or {},
                    at_ms=(r.start_ns or r.end_ns or 0) // 1_000_000,
                )
            except ValueError:
                if attempt != run_id:
                    raise
                continue
            break
        node.attributes = None  # the snapshot has them now
        run = node.run = Run(attempt, session, node, started=r.dialect == RUNTRACE)
        node.state = "run"
        self._count.runs_made += 1
        self._count.runs_open += 1
        self._remember(run)
        if r.prompt:
            self._ensure_started(run, None)
        self._place(self._tree.release(r.span_id), r.span_id)
        self._link(run)
        return run

    def _wrap(self, node: Node) -> None:
        """Decide ``node`` is no run: what waits for it moves on (to the run it wraps)."""
        held = self._tree.release(node.reading.span_id)
        node.state = "wrapper"
        links = sorted((i for i in held if i.kind == "link"), key=lambda i: i.at_ns)
        if links and links[0].node is not None:
            node.inner_run = links[0].node.run
        self._place(held, node.reading.span_id)

    def _remember(self, run: Run) -> None:
        traces = self._trace_runs
        traces.setdefault(run.node.reading.trace_id, run)
        while len(traces) > self._max_traces:
            del traces[next(iter(traces))]

    # --- ends ----------------------------------------------------------------------------------

    def _ended(self, node: Node) -> None:
        r = node.reading
        if node.state == "pending":
            if r.role == "agent":
                held = self._tree.peek(r.span_id)
                work = node.work_child or any(
                    i.kind == "span" and i.node is not None and i.node.reading.role in _WORK
                    for i in held
                )
                agents = node.agent_child or any(i.kind == "link" for i in held)
                if agents and not work:
                    self._wrap(node)
                else:
                    self._make_run(node)
            else:
                self._wrap(node)
        if node.state == "run":
            self._end_run(node)
        elif node.state == "plain":
            node.attributes = None
            items = self._tree.release(r.span_id)
            if r.role in _WORK:
                items.append(Held("span", r.trace_id, r.start_ns or 0, node=node))
            self._place(items, node.parent_id)

    def _end_run(self, node: Node) -> None:
        run = node.run
        assert run is not None
        r = node.reading
        self._place(self._tree.release(r.span_id), r.span_id)
        if run.claimed:
            rules.settle(run, *self._outcome(run))
            self._tell_outer(run)
            return
        fresh = [e for e in r.events if e.sequence is None or e.sequence not in run.sequences]
        if fresh or r.missing_events:
            self._ensure_started(run, None)
        for span_event in fresh:
            if span_event.sequence is not None:
                run.sequences.add(span_event.sequence)
            self._record(run, span_event.model, span_event.at_ns)
        if r.missing_events:
            lost = {"type": SPAN_EVENTS_DROPPED, "count": r.missing_events}
            self._record(run, lost, r.end_ns or 0)
        if node.seen_start or r.status is not StatusCode.UNSET or r.cancelled or r.outcome:
            self._finish(run)
        else:  # out of process a child that outlived the span may still say it was cancelled
            run.deferred = True
            self._deferred[r.span_id] = run

    def _finish(self, run: Run) -> None:
        if run.finished:
            return
        r = run.node.reading
        self._deferred.pop(r.span_id, None)
        error, cancelled = self._outcome(run)
        end_ns = r.end_ns or max(run.last_end_ns, r.start_ns or 0)
        self._ensure_started(run, None)
        if error is None and cancelled is None and r.dialect != RUNTRACE:
            self._record(run, mapping.agent_end(r), end_ns)
        try:
            self._target.finish(
                run.run_id, error=error, cancelled=cancelled, at_ms=end_ns // 1_000_000
            )
        except RunNotFound:
            self._count.events_lost += 1
        rules.settle(run, error, cancelled)
        self._count.runs_open -= 1
        self._tell_outer(run)

    def _outcome(self, run: Run) -> tuple[str | None, str | None]:
        """:func:`rules.outcome`, the tool calls still open read whole first (their start reading
        was light), so an interruption names the tool as its end would."""
        for node in run.open_tools.values():
            if node.reading.light and node.live is not None:
                node.reading = self._read(node.live)
        return rules.outcome(run)

    def _link(self, run: Run) -> None:
        """A run inside another run is its subagent: the outer run gets ``subagent_start`` when
        it is known, ``subagent_end`` when both are known and the inner run has ended."""
        r = run.node.reading
        if run.node.parent_id is not None:
            item = Held("link", r.trace_id, r.start_ns or 0, node=run.node)
            self._place([item], run.node.parent_id)

    def _tell_outer(self, run: Run) -> None:
        outer = run.outer
        if outer is not None:
            r = run.node.reading
            event = mapping.subagent_end(r, run.run_id, run.session_id, run.output, run.success)
            self._record(outer, event, r.end_ns or r.start_ns or 0)

    # --- where things go -----------------------------------------------------------------------

    def _place(self, items: Iterable[Held], start: int | None) -> None:
        """Send each item to its run (walking up from span ``start``), hold it, or settle it as
        having no run; items bound for one run attach together, in time order."""
        runs: dict[int, tuple[Run, list[Held]]] = {}
        strays: dict[int, tuple[Node, list[Held]]] = {}
        for item in items:
            where = self._tree.resolve(start, item)
            if isinstance(where, Run):
                runs.setdefault(id(where), (where, []))[1].append(item)
            elif where is not None:
                if not item.was_held and item.kind != "link":
                    item.was_held = True
                    self._count.children_held += 1
                for span_id, group in self._tree.hold(where, item):
                    self._count.held_evicted += len(group)
                    self._orphans(span_id, group)
            elif item.redirect is not None:
                runs.setdefault(id(item.redirect), (item.redirect, []))[1].append(item)
            elif item.wrapper is not None and item.kind != "link":
                strays.setdefault(id(item.wrapper), (item.wrapper, []))[1].append(item)
            elif item.kind != "link":
                self._count.outside_runs += 1
        for run, group in runs.values():
            self._attach(run, group)
        for wrapper, group in strays.values():  # work under a wrapper with no run: it is one
            run = wrapper.run if wrapper.run is not None else self._make_run(wrapper)
            self._attach(run, group)
            if wrapper.ended:
                self._end_run(wrapper)

    def _attach(self, run: Run, items: list[Held]) -> None:
        timed, hint, late = rules.events(run, items)
        self._count.children_attached_late += late
        if timed:
            self._ensure_started(run, hint)
            for at_ns, event in timed:
                self._record(run, event, at_ns)

    def _ensure_started(self, run: Run, hint: str | None) -> None:
        """``agent_start`` before a run's first event, with the best prompt known by then: the
        run span's own, else its first model call's (``hint``)."""
        if run.started:
            return
        run.started = True
        node = run.node
        prompt = node.reading.prompt
        if prompt is None and node.live is not None:
            prompt = self._read(node.live).prompt
        at_ns = node.reading.start_ns or node.reading.end_ns or 0
        self._record(run, mapping.agent_start(prompt or hint), at_ns)

    def _record(self, run: Run, event: dict[str, Any] | BaseEvent, at_ns: int) -> None:
        try:
            self._target.record(run.run_id, event, at_ms=at_ns // 1_000_000)
        except RunNotFound:  # the target let the run go (a bounded store): counted, not hidden
            self._count.events_lost += 1

    def _orphans(self, span_id: int, group: list[Held]) -> None:
        """Held items whose parent span never came: to their trace's run if it has one, else a
        run of their own, failed with a message saying the trace is incomplete."""
        self._count.orphans_reported += sum(1 for item in group if item.kind != "link")
        run = self._trace_runs.get(group[0].trace_id) if group else None
        if run is not None:
            self._attach(run, group)
            return
        placeholder = rules.placeholder(span_id, group)
        if placeholder is None:
            return
        node = Node(placeholder, None, "plain", ended=True)
        self._attach(self._make_run(node), group)
        self._end_run(node)
