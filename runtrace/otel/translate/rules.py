"""The assembler's pure rules: a run's outcome, and the events a batch of children brings it.

Outcome, in order: a cancellation the run span says (exception, ``error.type``, a framework's
attribute) or one a child that outlived the run span says; else, unless the span is ERROR, a tool
call still open when the span ended (in-process) or ending after it (out of process) means the
run was interrupted, and an UNSET span whose last child to end was cancelled was cancelled; else
ERROR fails the run with its message; else it completed. runtrace's own run spans say their
status outright (``runtrace.run.status``).
"""

from __future__ import annotations

from opentelemetry.trace import StatusCode

from ...runs import RunStatus
from ..semconv import EVENT_SEQUENCE
from . import mapping
from .mapping import Timed
from .reading import SpanReading, plain_model
from .tree import Held, Run

__all__ = ["events", "outcome", "placeholder", "settle"]


def outcome(run: Run) -> tuple[str | None, str | None]:
    """``(error, cancelled)`` for a run whose span ended: at most one is set."""
    r = run.node.reading
    cancelled = r.cancelled or run.late_cancel
    if cancelled is None and r.status is not StatusCode.ERROR:
        open_tool = next(iter(run.open_tools.values()), None)
        tool = run.interrupted or (
            None if open_tool is None else open_tool.reading.tool_name or open_tool.reading.name
        )
        if tool is not None:
            cancelled = f"interrupted: the run's span ended while tool {tool!r} was running"
        elif r.status is StatusCode.UNSET and run.last_cancel is not None:
            cancelled = run.last_cancel
    if cancelled is None and r.outcome == RunStatus.CANCELLED.value:
        cancelled = RunStatus.CANCELLED.value
    if cancelled is not None:
        return None, cancelled
    if r.error is None and r.outcome == RunStatus.FAILED.value:
        return RunStatus.FAILED.value, None
    return r.error, None


def settle(run: Run, error: str | None, cancelled: str | None) -> None:
    """Note a run's outcome, which its outer run's ``subagent_end`` reports."""
    r = run.node.reading
    run.finished = True
    run.success = error is None and cancelled is None
    run.output = (r.result or "") if run.success else (error or cancelled or "")


def events(run: Run, items: list[Held]) -> tuple[list[Timed], str | None, int]:
    """The events ``items`` bring ``run``, in time order; the first model call's prompt (for
    ``agent_start``); how many items arrived after the run ended. Updates the run's turn count
    and what its children said about cancellation."""
    timed: list[Timed] = []
    hint: str | None = None
    late = 0
    for item in sorted(items, key=lambda i: i.at_ns):
        if item.kind == "span" and item.node is not None:
            r = item.node.reading
            late += run.finished
            if r.role == "model":
                run.turns += 1
                hint = hint or r.prompt
            timed.extend(mapping.child_events(r, run.turns))
            _child_ended(run, r)
        elif item.kind == "link" and item.node is not None:
            inner = item.node.run
            if inner is None or inner is run:
                continue
            r = item.node.reading
            start = mapping.subagent_start(r, inner.run_id, inner.session_id, run.session_id)
            timed.append((r.start_ns or item.at_ns, start))
            if inner.finished:
                end = mapping.subagent_end(
                    r, inner.run_id, inner.session_id, inner.output, inner.success
                )
                timed.append((r.end_ns or item.at_ns, end))
            else:
                inner.outer = run  # it tells this run when it ends
        elif item.log is not None:
            name, fields = item.log
            sequence = fields.get(EVENT_SEQUENCE)
            if isinstance(sequence, int):  # one of runtrace's own events, sent as a log record
                if run.claimed or sequence in run.sequences:
                    continue  # the run has it already
                run.sequences.add(sequence)
            late += run.finished
            timed.append((item.at_ns, plain_model(name, fields)))
    timed.sort(key=lambda t: t[0])
    return timed, hint, late


def _child_ended(run: Run, r: SpanReading) -> None:
    """What a child ending says about its run's outcome (nothing once the run finished)."""
    if run.finished:
        return
    end = r.end_ns or 0
    run_end = run.node.reading.end_ns if run.node.ended else None
    if run_end is not None and end >= run_end:
        if r.role == "tool" and end > run_end:  # it was still running: as if seen open
            run.interrupted = run.interrupted or r.tool_name or r.name
        elif r.cancelled is not None:
            run.late_cancel = run.late_cancel or r.cancelled
    if end >= run.last_end_ns:
        run.last_end_ns = end
        run.last_cancel = r.cancelled


def placeholder(span_id: int, group: list[Held]) -> SpanReading | None:
    """A stand-in for span ``span_id`` that never arrived, whose held ``group`` has work (tool
    or model calls, log records): a failed run saying so. None when the group has no work."""
    work = [
        item
        for item in group
        if item.log is not None or (item.node is not None and item.node.reading.role in _WORK)
    ]
    if not work:
        return None
    first = min(work, key=lambda i: i.at_ns)
    ends = [i.node.reading.end_ns or i.at_ns for i in work if i.node is not None] or [first.at_ns]
    session = next((i.node.reading.session_id for i in work if i.node is not None), None)
    return SpanReading(
        dialect="incomplete",
        role="agent",
        trace_id=first.trace_id,
        span_id=span_id,
        parent_id=None,
        parent_remote=False,
        name="",
        start_ns=first.at_ns,
        end_ns=max(ends),
        status=StatusCode.ERROR,
        session_id=session,
        error=(
            f"incomplete trace: span {span_id:016x}, the parent of {len(work)} span(s) or log "
            "record(s) here, never arrived"
        ),
    )


_WORK = frozenset({"tool", "model"})
