"""RunStore: every run's live snapshot and full event list, in memory, safe across threads.

The port of the reference's ``InMemoryRunStore``. One plain lock guards both maps; nothing under
it does I/O, so it is cheap to call from asyncio code. Unlike the reference, calls that name an
unknown run raise :class:`RunNotFound` instead of silently doing nothing.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import runs
from .errors import RunNotFound
from .eventlog import EventLog
from .events import BaseEvent, parse_event
from .runs import MAX_MS, RunEventRecord, RunRecord, RunSnapshot, RunStatus, now_ms

__all__ = ["RunStore"]


class RunStore:
    """Thread-safe in-memory runs and their events.

    Snapshots are immutable, so the ones handed out can be kept and shared freely; event lists
    are returned as new lists.

    Retention bounds memory in long-lived processes. ``max_finished_runs`` keeps at most that
    many finished runs (:meth:`finish`), ``max_finished_age_s`` keeps a finished run at most
    that many seconds after it ended; the oldest go first and are counted in
    :attr:`evicted_runs`. Open runs are never evicted. A sink that stores runs (the DuckDB sink)
    is registered with :meth:`persistence_listener` (``RunSpanProcessor`` does it): a finished
    run then leaves only once every such sink has reported its final snapshot persisted, so
    the store never drops the only copy of a run; until then it is counted in
    :attr:`unpersisted_runs`. Retention is applied when a run finishes and when a sink reports,
    never by a timer. The default keeps everything.
    """

    def __init__(
        self,
        *,
        max_finished_runs: int | None = None,
        max_finished_age_s: float | None = None,
    ) -> None:
        if max_finished_runs is not None and (
            not isinstance(max_finished_runs, int) or max_finished_runs < 0
        ):
            raise ValueError(
                f"max_finished_runs must be an int >= 0 or None, not {max_finished_runs!r}"
            )
        if max_finished_age_s is not None and (
            not isinstance(max_finished_age_s, (int, float)) or not max_finished_age_s >= 0
        ):
            raise ValueError(
                f"max_finished_age_s must be a number of seconds >= 0 or None, "
                f"not {max_finished_age_s!r}"
            )
        self._lock = threading.Lock()
        self._runs: dict[str, RunSnapshot] = {}
        self._events: dict[str, EventLog] = {}
        self._max_finished = max_finished_runs
        self._max_age_ms = None if max_finished_age_s is None else max_finished_age_s * 1000
        self._retains = max_finished_runs is not None or max_finished_age_s is not None
        self._persisters = 0  # sinks whose report a finished run waits for
        self._unpersisted: dict[str, int] = {}  # finished run id -> bitmask of sinks that reported
        self._evictable: dict[str, int] = {}  # finished and persisted: run id -> ended_at_ms
        self.evicted_runs = 0
        """How many finished runs left the store because of retention."""

    def __len__(self) -> int:
        return len(self._runs)

    @property
    def unpersisted_runs(self) -> int:
        """Finished runs retention would let go but a sink has not reported persisted yet."""
        return len(self._unpersisted)

    def persistence_listener(self) -> Callable[[Iterable[str]], None]:
        """Register one persisting sink; returns the callback it calls with the ids of ended
        runs whose final snapshot it has stored (``DuckDBSink.add_persisted_listener``).

        From then on, retention lets a finished run go only once every registered sink has
        reported it. The callback is thread-safe and ignores runs the store does not hold.
        """
        with self._lock:
            if self._persisters >= 62:
                raise ValueError("a RunStore tracks persistence for at most 62 sinks")
            bit = 1 << self._persisters
            self._persisters += 1

        def persisted(run_ids: Iterable[str]) -> None:
            with self._lock:
                full = (1 << self._persisters) - 1
                for run_id in run_ids:
                    mask = self._unpersisted.get(run_id)
                    if mask is None:
                        continue
                    mask |= bit
                    if mask == full:
                        del self._unpersisted[run_id]
                        self._evictable[run_id] = self._ended_ms(run_id)
                    else:
                        self._unpersisted[run_id] = mask
                self._evict()

        return persisted

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def create_run(
        self,
        session_id: str,
        prompt: str = "",
        *,
        run_id: str | None = None,
        agent_name: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        created_at_ms: int | None = None,
        checked: bool = False,
    ) -> RunSnapshot:
        """Register a new run in status ``created``; its id is ``run-<uuid4>`` unless given.

        Fields the database or OTLP could not keep raise :class:`~runtrace.errors.InvalidRun`
        (see :func:`runtrace.runs.check_run_fields`), unless ``checked``: the caller checked
        them already (``Runtrace.begin_run`` does, before the span that makes the run starts)."""
        at = now_ms() if created_at_ms is None else created_at_ms
        if checked and type(at) is int:
            snapshot = runs._fresh_snapshot(
                run_id or runs.new_run_id(),
                session_id,
                prompt,
                at,
                agent_name,
                trace_id,
                span_id,
                attributes,
            )
        else:
            if not checked:
                runs.check_run_fields(session_id, prompt, agent_name, attributes)
            snapshot = self._validated_snapshot(
                run_id, session_id, prompt, at, agent_name, trace_id, span_id, attributes
            )
        with self._lock:
            if snapshot.id in self._runs:
                raise ValueError(f"a run with id {snapshot.id!r} already exists")
            self._runs[snapshot.id] = snapshot
            self._events[snapshot.id] = EventLog()
        return snapshot

    @staticmethod
    def _validated_snapshot(
        run_id: str | None,
        session_id: str,
        prompt: str,
        at: int,
        agent_name: str | None,
        trace_id: str | None,
        span_id: str | None,
        attributes: Mapping[str, Any] | None,
    ) -> RunSnapshot:
        return RunSnapshot(
            id=run_id or runs.new_run_id(),
            session_id=session_id,
            prompt=prompt,
            created_at_ms=at,
            updated_at_ms=at,
            agent_name=agent_name,
            trace_id=trace_id,
            span_id=span_id,
            attributes=attributes or {},
        )

    def record(
        self,
        run_id: str,
        event: BaseEvent | dict[str, Any] | str | bytes,
        *,
        at_ms: int | None = None,
    ) -> tuple[RunSnapshot, RunEventRecord]:
        """Append ``event`` to the run at ``at_ms`` (epoch ms, now by default) and apply the status
        rules; returns the new snapshot and the stored record (what sinks are given).

        The event is validated before anything changes, so a malformed one (which raises
        ``pydantic.ValidationError``) leaves the run untouched.
        """
        sequence, at, model, snapshot = self.append(run_id, event, at_ms, snapshot_after=True)
        return snapshot, runs.event_record(sequence, at, model)

    def append(
        self,
        run_id: str,
        event: BaseEvent | dict[str, Any] | str | bytes,
        at_ms: int | None,
        *,
        snapshot_after: bool = False,
    ) -> tuple[int, int, BaseEvent, RunSnapshot]:
        """:meth:`record` without making the record: (sequence, time, model, snapshot).

        For the processor's hot path, which makes the record only when a sink or hook takes
        it: most events (deltas, tool calls) only move the run's event count and time, and are
        folded into its snapshot when it is next read. The snapshot is the one right after the
        event when ``snapshot_after`` (made under the same lock), else the last one made, whose
        count and time may be behind (what a :class:`~runtrace.sink.SnapshotReadingSink` is
        given)."""
        model = parse_event(event)
        if at_ms is None:
            at = now_ms()
        elif type(at_ms) is int and 0 <= at_ms < MAX_MS:
            at = at_ms
        elif isinstance(at_ms, int) and 0 <= at_ms < MAX_MS:
            at = int(at_ms)
        else:
            raise ValueError(
                f"at_ms must be an int of epoch milliseconds in [0, {MAX_MS}) "
                f"(up to the year 2262), not {at_ms!r}"
            )
        with self._lock:
            snapshot = self._runs.get(run_id)
            if snapshot is None:
                raise RunNotFound(run_id)
            stored = self._events[run_id]
            sequence = stored.append(model, at)
            if self._persisters and snapshot.ended_at_ms is not None:
                # A straggler on a finished run: its newest state is not persisted yet.
                self._evictable.pop(run_id, None)
                self._unpersisted[run_id] = 0
            if runs.counts_only_on(snapshot, model):
                # Most events: only the count and the time move, counted when next read.
                stored.pending += 1
                if at > stored.latest:
                    stored.latest = at
                if snapshot_after:
                    snapshot = self._fold(snapshot, stored)
            else:
                if stored.pending:
                    snapshot = self._fold(snapshot, stored)
                snapshot = self._runs[run_id] = runs.apply_event(snapshot, model, at_ms=at)
        return sequence, at, model, snapshot

    def _fold(self, snapshot: RunSnapshot, stored: EventLog) -> RunSnapshot:
        """Under the lock: the run's snapshot with its pending events counted (stored)."""
        values = snapshot.__dict__.copy()
        values["event_count"] += stored.pending
        if stored.latest > values["updated_at_ms"]:
            values["updated_at_ms"] = stored.latest
        stored.pending = 0
        snapshot = self._runs[snapshot.id] = runs.trusted_snapshot(values)
        return snapshot

    def _current(self, run_id: str) -> RunSnapshot | None:
        """Under the lock: the run's up-to-date snapshot, or None."""
        snapshot = self._runs.get(run_id)
        if snapshot is not None:
            stored = self._events[run_id]
            if stored.pending:
                return self._fold(snapshot, stored)
        return snapshot

    def mark_failed(self, run_id: str, error: str, *, at_ms: int | None = None) -> RunSnapshot:
        """Mark the run failed with ``error``, unless it was cancelled."""
        return self._update(run_id, lambda s: runs.mark_failed(s, error, at_ms=at_ms))

    def mark_cancelled(
        self, run_id: str, *, reason: str | None = None, at_ms: int | None = None
    ) -> RunSnapshot:
        """Mark the run cancelled, unless it already completed or failed; a ``reason`` is kept
        in ``error`` (see :func:`runtrace.runs.mark_cancelled`)."""
        return self._update(run_id, lambda s: runs.mark_cancelled(s, reason=reason, at_ms=at_ms))

    def finish(
        self, run_id: str, *, error: str | None = None, at_ms: int | None = None
    ) -> RunSnapshot:
        """Stamp the run's end and settle its status (see :func:`runtrace.runs.finish`).

        With retention on, this is where the oldest finished (and persisted) runs are evicted.
        """
        with self._lock:
            snapshot = self._current(run_id)
            if snapshot is None:
                raise RunNotFound(run_id)
            snapshot = self._runs[run_id] = runs.finish(snapshot, error=error, at_ms=at_ms)
            if self._retains and run_id not in self._evictable:
                if not self._persisters:
                    self._evictable[run_id] = self._ended_ms(run_id)
                elif run_id not in self._unpersisted:
                    self._unpersisted[run_id] = 0
                self._evict()
        return snapshot

    def snapshot(self, run_id: str) -> RunSnapshot | None:
        """The run's current snapshot, or None if the store does not know it."""
        stored = self._events.get(run_id)
        if stored is not None and stored.pending:
            with self._lock:
                return self._current(run_id)
        return self._runs.get(run_id)

    def status(self, run_id: str) -> RunStatus | None:
        snapshot = self._runs.get(run_id)  # pending events never change a status
        return None if snapshot is None else snapshot.status

    def events(self, run_id: str) -> list[RunEventRecord]:
        """A copy of the run's events in sequence order (empty for an unknown run)."""
        with self._lock:
            stored = self._events.get(run_id)
            if stored is None:
                return []
            parts = stored.copy()
        return EventLog.records(*parts)

    def list(self) -> list[RunSnapshot]:
        """All snapshots, oldest first."""
        with self._lock:
            snapshots = [self._current(run_id) or s for run_id, s in list(self._runs.items())]
        snapshots.sort(key=lambda s: s.created_at_ms)
        return snapshots

    def records(self) -> builtins.list[RunRecord]:
        """Every run with its events, oldest first, consistent with one another."""
        with self._lock:
            pairs = [
                (self._current(run_id) or s, self._events[run_id].copy())
                for run_id, s in list(self._runs.items())
            ]
        pairs.sort(key=lambda pair: pair[0].created_at_ms)
        return [
            RunRecord.model_construct(snapshot=s, events=EventLog.records(*e)) for s, e in pairs
        ]

    def replace_records(self, records: Iterable[RunRecord]) -> None:
        """Replace the whole store with ``records``; each ``event_count`` is recomputed."""
        new_runs: dict[str, RunSnapshot] = {}
        new_events: dict[str, EventLog] = {}
        for record in records:
            snapshot = record.snapshot
            if snapshot.event_count != len(record.events):
                snapshot = snapshot.model_copy(update={"event_count": len(record.events)})
            new_runs[snapshot.id] = snapshot
            new_events[snapshot.id] = EventLog(record.events)
        with self._lock:
            self._runs = new_runs
            self._events = new_events
            self._unpersisted = {}
            self._evictable = {}

    def _ended_ms(self, run_id: str) -> int:
        ended = self._runs[run_id].ended_at_ms
        return now_ms() if ended is None else ended

    def _evict(self) -> None:
        """Let the oldest persisted finished runs go while retention says so (under the lock)."""
        if not self._retains:
            return
        evictable = self._evictable
        if self._max_finished is not None:
            excess = len(evictable) + len(self._unpersisted) - self._max_finished
            while excess > 0 and evictable:
                self._drop(next(iter(evictable)))
                excess -= 1
        if self._max_age_ms is not None and evictable:
            cutoff = now_ms() - self._max_age_ms
            while evictable:
                oldest, ended = next(iter(evictable.items()))
                if ended > cutoff:
                    break
                self._drop(oldest)

    def _drop(self, run_id: str) -> None:
        del self._evictable[run_id]
        del self._runs[run_id]
        del self._events[run_id]
        self.evicted_runs += 1

    def _update(self, run_id: str, change: Callable[[RunSnapshot], RunSnapshot]) -> RunSnapshot:
        with self._lock:
            snapshot = self._current(run_id)
            if snapshot is None:
                raise RunNotFound(run_id)
            snapshot = self._runs[run_id] = change(snapshot)
        return snapshot
