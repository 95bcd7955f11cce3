"""Runs from other instrumentations' spans: the translator wired to the processor's store, sinks
and hooks.

Every span that runtrace did not start goes here (``processor.foreign``): the
:class:`~runtrace.otel.translate.RunAssembler` decides which of them are runs and what their
events are, and its changes reach the same store, sinks and hooks as a run recorded through
:class:`~runtrace.Runtrace`. runtrace's own runs are *claimed* when a foreign span or log record
first turns up under one (the processor's ``claimer``), so framework spans made inside them (a
pydantic-ai agent called in ``start_run``) attach to them, and runs without any cost the
translator nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from ..runs import RunEventRecord, RunSnapshot, RunStatus
from ..store import RunStore
from .fanout import RunFanout
from .translate import AssemblerStats, RunAssembler, SpanReading, StoreTarget
from .translate.assembler import Claimer

__all__ = ["ForeignRuns"]


class ForeignRuns:
    """The assembler over ``store``, announcing every change through ``fan``."""

    __slots__ = ("_fan", "assembler")

    def __init__(self, store: RunStore, fan: RunFanout, claimer: Claimer | None = None) -> None:
        self._fan = fan
        events = bool(fan.sink_on_event or fan.on_event)
        self.assembler = RunAssembler(
            StoreTarget(store, on_change=self._changed, events=events), claimer=claimer
        )

    @property
    def stats(self) -> AssemblerStats:
        return self.assembler.stats

    def on_start(self, span: ReadableSpan) -> None:
        self.assembler.on_start(span)

    def on_end(self, span: ReadableSpan) -> None:
        self.assembler.on_end(span)

    def claim(
        self, span: ReadableSpan, run_id: str, *, adopted: bool, reading: SpanReading | None = None
    ) -> None:
        """``span`` is the processor's run ``run_id``: foreign children attach to it;
        ``adopted``: a framework's agent span (see ``RunAssembler.claim``)."""
        self.assembler.claim(span, run_id, adopted=adopted, reading=reading)

    def outcome(self, span_id: int) -> tuple[str | None, str | None, SpanReading] | None:
        """How a claimed run span that just ended should end (see ``RunAssembler.outcome``)."""
        return self.assembler.outcome(span_id)

    def run_id(self, span_id: int) -> str | None:
        """The run a framework's agent span is, for ``record_event`` inside it."""
        return self.assembler.run_id(span_id)

    def on_log(
        self,
        trace_id: int,
        span_id: int,
        name: str,
        attributes: Mapping[str, Any],
        at_ns: int,
        body: Any = None,
    ) -> None:
        self.assembler.on_log(trace_id, span_id, name, attributes, at_ns, body=body)

    def shutdown(self) -> None:
        """Runs whose span never ended are finished (cancelled), held children reported."""
        self.assembler.shutdown()

    def _changed(self, snapshot: RunSnapshot, record: RunEventRecord | None) -> None:
        fan = self._fan
        if record is not None:
            fan.sink_on_event(snapshot, record)
            fan.on_event(record.event, snapshot.id, snapshot.session_id)
            return
        fan.on_run(snapshot)
        if snapshot.ended_at_ms is None:
            if snapshot.event_count == 0 and snapshot.status is RunStatus.CREATED:
                fan.on_run_start(snapshot)
            return
        if snapshot.status is RunStatus.CANCELLED:
            fan.on_run_cancelled(snapshot.id, snapshot.session_id, snapshot.error or "cancelled")
        fan.on_run_end(snapshot)
