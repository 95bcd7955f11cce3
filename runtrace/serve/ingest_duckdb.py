"""``DuckDBIngest``: what ``runtrace serve`` does with what it receives, runs in a DuckDB file.

The pipeline is the in-process one, fed from the network: a
:class:`~runtrace.serve.BufferedIngest` (the bounded queue that answers 429 when full) in front of
:class:`~runtrace.serve.live.ReceivedRuns` (runs shown before their run span arrives) in front of
a :class:`~runtrace.otel.processor.RunSpanProcessor` whose translator turns the spans into runs in
a :class:`~runtrace.store.RunStore`, written by a :class:`~runtrace.DuckDBSink`. After each
request the translator settles the runs it left open (``end_batch``); every ``housekeeping_s``
children whose parent span never came attach to their trace's run (``flush``).

Owners. A received run belongs to the process that sent it, which this server cannot watch, so it
is written with no owner (``owner_host`` and ``owner_pid`` NULL): no restart of the server and no
other writer's recovery (:func:`~runtrace.duckdb.recover_interrupted` leaves runs of no process
alone) ever marks it failed while its agent may still be running elsewhere. A run whose spans
stop coming stays open, and shows in the ``stuck_runs`` named query.

Restarts. A run a previous server left open in the file is continued: once it ends here it is
written whole, the events the file held first and this process's after them (a runtrace run's
announced sequences are not recorded twice), so a restart neither duplicates nor loses what was
written. Until it ends, the file shows it as the previous server left it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Final

from opentelemetry.sdk.trace import ReadableSpan

from ..duckdb.read import connect, load_records
from ..duckdb.schema import TERMINAL_STATUS_VALUES
from ..duckdb.sink import DuckDBSink
from ..faults import Faults
from ..otel.processor import RunSpanProcessor
from ..runs import RunEventRecord, RunRecord, RunSnapshot, RunStatus
from ..store import RunStore
from .ingest import BufferedIngest, LogItem
from .live import ReceivedRuns

__all__ = ["DuckDBIngest"]

log = logging.getLogger("runtrace.serve")

EVENT_NAME: Final = "event.name"
"""Where older SDKs put a log record's event name (the decoder already read it from there)."""


class DuckDBIngest:
    """An :class:`~runtrace.serve.Ingest` writing runs into the DuckDB file at ``path``.

    ``capacity``: spans and log records that may wait (beyond it the server answers 429 /
    RESOURCE_EXHAUSTED and exporters retry). ``retention``: finished runs kept in memory (the
    store's ``max_finished_runs``); older ones leave it once the file has them.
    ``flush_interval``: the sink's, the most a run waits to be queryable once processed.
    ``housekeeping_s``: how often children whose parent never came attach to their trace's run.
    ``raise_errors``: re-raise internal errors (by default only under pytest).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        capacity: int = 65_536,
        retention: int = 1_000,
        flush_interval: float = 1.0,
        housekeeping_s: float = 300.0,
        raise_errors: bool | None = None,
    ) -> None:
        if isinstance(retention, bool) or not isinstance(retention, int) or retention < 0:
            raise ValueError(f"retention must be an integer >= 0, got {retention!r}")
        self.path = os.fspath(path)
        self.sink = DuckDBSink(
            self.path, flush_interval=flush_interval, raise_errors=raise_errors, owner=False
        )
        resume = _left_open(self.path)
        self.store = RunStore(max_finished_runs=retention)
        self._continued = _Continued(self.sink, resume, Faults("runtrace.serve", raise_errors))
        self.processor = RunSpanProcessor(
            self.store, sinks=[self._continued], cancel_ends_span=False, raise_errors=raise_errors
        )
        self.received = ReceivedRuns(self.processor, resume=resume)
        self.logs_ignored = 0
        """Log records with no event name or no span: application logs, not agent events."""
        self._buffer = BufferedIngest(
            self.received,
            on_logs=self._on_logs,
            on_batch_end=self.received.end_batch,
            periodic=self.processor.foreign.assembler.flush,
            period_s=housekeeping_s,
            capacity=capacity,
            raise_errors=raise_errors,
        )
        if resume:
            log.info("runtrace serve: %d runs left open in %s continue", len(resume), self.path)

    # --- Ingest ------------------------------------------------------------------------------

    def spans(self, spans: Sequence[ReadableSpan]) -> None:
        self._buffer.spans(spans)

    def logs(self, records: Sequence[LogItem]) -> None:
        self._buffer.logs(records)

    def queue_depth(self) -> int:
        return self._buffer.queue_depth()

    def capacity(self) -> int:
        return self._buffer.capacity()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Everything taken so far is processed and written: queryable in the file."""
        return self._buffer.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Process what is queued, write it, release the file. Runs still open stay open in the
        file (their agents may still be running; a restart continues them); children still
        waiting for a run span that has not come are logged as lost."""
        self._buffer.shutdown(timeout_millis)

    # --- counters ----------------------------------------------------------------------------

    def runs_open(self) -> int:
        """Runs received and not ended: the translator's, and those shown before their span."""
        return self.processor.foreign.stats.runs_open + self.received.runs_open()

    def flush_lag_ms(self) -> float:
        """How long the oldest request not yet processed has waited."""
        return self._buffer.flush_lag_ms()

    # --- internals ---------------------------------------------------------------------------

    def _on_logs(self, records: Sequence[LogItem]) -> None:
        on_log = self.processor.foreign.on_log
        for record in records:
            if not record.event_name or not record.trace_id or not record.span_id:
                self.logs_ignored += 1
                continue
            attributes = record.attributes
            if EVENT_NAME in attributes:
                attributes = {k: v for k, v in attributes.items() if k != EVENT_NAME}
            on_log(
                record.trace_id,
                record.span_id,
                record.event_name,
                attributes,
                record.at_ns,
                body=record.body,
            )


def _left_open(path: str) -> dict[str, int]:
    """Runs of no owner the file holds open (a previous server's), with their event counts."""
    con = connect(path)
    try:
        rows = con.execute(
            "SELECT r.run_id, coalesce(max(e.sequence) + 1, 0) FROM runs r "
            "LEFT JOIN run_events e ON e.run_id = r.run_id "
            "WHERE NOT list_contains(?, r.status) AND r.owner_pid IS NULL GROUP BY r.run_id",
            [list(TERMINAL_STATUS_VALUES)],
        ).fetchall()
    finally:
        con.close()
    return {str(run_id): int(count) for run_id, count in rows}


class _Continued:
    """The sink for every run but those continued from a previous server: theirs are kept until
    they end, then written whole (the file's events first, this process's after them)."""

    def __init__(self, sink: DuckDBSink, resume: dict[str, int], faults: Faults) -> None:
        self._sink = sink
        self._waiting: dict[str, list[RunEventRecord]] = {run_id: [] for run_id in resume}
        self._faults = faults

    def add_persisted_listener(self, listener: Callable[[list[str]], None]) -> None:
        self._sink.add_persisted_listener(listener)

    def on_run(self, snapshot: RunSnapshot) -> None:
        if snapshot.id not in self._waiting:
            self._sink.on_run(snapshot)
        elif snapshot.ended_at_ms is not None:
            events = self._waiting.pop(snapshot.id)
            with self._faults.guard("writing a run continued from a previous server"):
                self._sink.write_records([self._whole(snapshot, events)])

    def on_event(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        waiting = self._waiting.get(snapshot.id)
        if waiting is None:
            self._sink.on_event(snapshot, record)
        else:
            waiting.append(record)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._sink.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        self._sink.shutdown(timeout_millis)

    def _whole(self, final: RunSnapshot, events: list[RunEventRecord]) -> RunRecord:
        """The run as the file had it, continued by ``events`` and ended as ``final`` says."""
        stored = load_records(self._sink.path, run_ids=[final.id])
        base = stored[0].snapshot if stored else final
        before = stored[0].events if stored else []
        if before and events and events[0].event.type == "agent_start":
            events = events[1:]  # the translator started the run again here: it had started
        store = RunStore()
        run_id = store.create_run(
            base.session_id,
            base.prompt,
            run_id=base.id,
            agent_name=base.agent_name,
            trace_id=base.trace_id,
            span_id=base.span_id,
            attributes=base.attributes,
            created_at_ms=base.created_at_ms,
        ).id
        for event in (*before, *events):
            store.record(run_id, event.event, at_ms=event.timestamp_ms)
        if final.status is RunStatus.CANCELLED:
            store.mark_cancelled(run_id, reason=final.error, at_ms=final.ended_at_ms)
        elif final.status is RunStatus.FAILED:
            store.mark_failed(run_id, final.error or "failed", at_ms=final.ended_at_ms)
        store.finish(run_id, at_ms=final.ended_at_ms)
        (record,) = store.records()
        return record
