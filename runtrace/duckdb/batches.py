"""Batches: what the sink's queue holds, turned into Arrow tables for one write.

The queue holds two entries per change: a run's snapshot, then the event record that made it
(None for a change without an event). An export appends every event, batch by batch, and
upserts each changed run's newest snapshot once, at its end: a run that got 10,000 events in
one flush costs one ``runs`` row, not 10,000. The builder remembers the version it last wrote
of each run, so a stale snapshot queued late (a race between agent threads) never overwrites
a newer one. An item that cannot be serialised costs only itself: the batch is rebuilt item by
item, and what is lost is counted and logged.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
from typing import cast

import pyarrow as pa

from ..runs import RunEventRecord, RunSnapshot
from ..sink import SnapshotSource
from .database import HOST
from .fastload import gc_paused
from .rows import (
    INT64_MAX,
    INT64_MIN,
    Batch,
    EventColumns,
    Owner,
    Version,
    events_arrow,
    new_event_columns,
    newer,
    runs_table,
    version,
)
from .stats import Counters

_log = logging.getLogger("runtrace.duckdb")

Entry = RunSnapshot | RunEventRecord | None
"""A queue entry of the sink; each change is two: its snapshot, then its record or None."""

Newest = dict[str, RunSnapshot]
"""The newest snapshot of each run seen so far in one export."""

MAX_ENDED_KEYS = 100_000
"""How many ended runs a builder remembers the written version of (the most recent ones)."""


def split(entries: list[Entry]) -> tuple[list[RunSnapshot], list[RunEventRecord | None]]:
    """The snapshots and the records of a flat list of entries (two C-level slices)."""
    return (
        cast("list[RunSnapshot]", entries[0::2]),
        cast("list[RunEventRecord | None]", entries[1::2]),
    )


def merge_newest(into: Newest, newest: Newest) -> None:
    """Keep, per run, the newer of the snapshots in ``into`` and ``newest`` (a tie: the later)."""
    for run_id, snap in newest.items():
        old = into.get(run_id)
        if old is None or not newer(old, snap):
            into[run_id] = snap


class BatchBuilder:
    """Builds :class:`~runtrace.duckdb.rows.Batch` objects from queued entries, thread-safely.

    ``path`` only names the file in log messages. ``owned`` stamps runs that have not ended
    with this process (host, pid), which recovery checks; without it they have no owner.
    """

    def __init__(self, path: str, counters: Counters, *, owned: bool = True) -> None:
        self.path = path
        self.counters = counters
        self.owner: Owner | None = (HOST, os.getpid()) if owned else None
        self._lock = threading.Lock()
        # The version last written of each run: live runs, and the most recent ended ones
        # (bounded), so a stale snapshot queued late never overwrites a newer one.
        self.written_keys: dict[str, Version] = {}
        self.ended_keys: dict[str, Version] = {}
        self.source: SnapshotSource | None = None
        """Where runs' newest snapshots are read when a batch is built (the store's
        ``snapshot``), so the queue need not carry one per event."""

    def after_fork_in_child(self) -> None:
        if self.owner is not None:  # the child owns what it records; no owner stays none
            self.owner = (HOST, os.getpid())
        self._lock = threading.Lock()

    def build(self, entries: list[Entry]) -> Batch:
        """Events and runs rows of ``entries`` in one batch (a spill: a segment of its own)."""
        events, newest = self.events(entries)
        runs = self.runs(newest)
        return Batch(events.events, runs.runs, ended=runs.ended)

    def events(self, entries: list[Entry]) -> tuple[Batch, Newest]:
        """The events of ``entries`` as a batch, and each run's newest snapshot among them;
        an empty batch if none of its events could be serialised."""
        with self._lock:
            try:
                return self._events(entries, checked=False)
            except Exception as exc:
                # Something cannot be serialised (a value that bypassed validation): build
                # again item by item, so only what cannot be written is dropped, counted.
                _log.debug("runtrace: rebuilding a batch item by item after %r", exc)
            try:
                return self._events(entries, checked=True)
            except Exception:
                lost = sum(1 for rec in entries[1::2] if rec is not None)
                self.counters.events_received += lost
                self.counters.events_lost += lost
                _log.exception("runtrace: %d events lost for %s", lost, self.path)
                return Batch(None, None), {}

    def runs(self, newest: Newest) -> Batch:
        """The ``runs`` rows of ``newest``, minus snapshots older than one already written."""
        with self._lock:
            fresh = self._not_stale(newest)
            if not fresh:
                return Batch(None, None)
            try:
                table, written = runs_table(fresh, owner=self.owner), fresh
            except Exception:
                table, written = self._runs_checked(fresh)
            ended = [s.id for s in written if s.ended_at_ms is not None]
            return Batch(None, table, ended=ended or None)

    def _events(self, entries: list[Entry], *, checked: bool) -> tuple[Batch, Newest]:
        # One pass over the cold records, and no per-event tuples or dicts: objects that
        # survive a batch make the cyclic GC walk the whole heap again. The last snapshot
        # queued for a run usually is its newest.
        snaps, recs = split(entries)
        columns = new_event_columns()
        latest: Newest = {}
        run_only: list[RunSnapshot] = []
        with gc_paused():  # its passes over a big heap would cost more than this loop
            if checked:
                self._collect_checked(snaps, recs, latest, run_only, columns)
            else:
                _collect(snaps, recs, latest, run_only, columns)
        n_events = len(columns[0])
        events = events_arrow(columns) if n_events else None
        if self.source is not None:
            _refresh(latest, self.source)
        _settle_latest(latest, run_only, columns, snaps, recs)
        # Lost events were received too (and counted in events_lost).
        self.counters.events_received += (
            sum(1 for rec in recs if rec is not None) if checked else n_events
        )
        self.counters.runs_received += len(run_only)
        return Batch(events, None), latest

    def _collect_checked(
        self,
        snaps: list[RunSnapshot],
        recs: list[RunEventRecord | None],
        latest: Newest,
        run_only: list[RunSnapshot],
        columns: EventColumns,
    ) -> None:
        """:func:`_collect`, one item at a time: an event that cannot be written is counted
        in ``events_lost`` and logged; its run's snapshot is still kept."""
        lost = 0
        first: str | None = None
        ids, seqs, stamps, types, texts = columns
        for snap, rec in zip(snaps, recs, strict=True):
            if not isinstance(snap.id, str):
                first = first or f"run id {snap.id!r} is not a string"
                lost += rec is not None
                continue
            if rec is None:
                _collect([snap], [rec], latest, run_only, columns)
                continue
            try:
                event = rec.event
                text = event.__pydantic_serializer__.to_json(event)
                for name, value in (("sequence", rec.sequence), ("timestamp_ms", rec.timestamp_ms)):
                    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
                        raise ValueError(f"{name} {value!r:.40} is not a 64-bit integer")
                if not isinstance(event.type, str):
                    raise ValueError(f"type {event.type!r:.40} is not a string")
            except Exception as exc:
                lost += 1
                first = first or f"event {rec.sequence!r:.40} of run {snap.id!r}: {exc}"
                latest[snap.id] = snap
                continue
            latest[snap.id] = snap
            ids.append(snap.id)
            seqs.append(rec.sequence)
            stamps.append(rec.timestamp_ms)
            types.append(event.type)
            texts.append(text)
        if lost:
            self.counters.events_lost += lost
            self.counters.last_error = first
            _log.error(
                "runtrace: %d event(s) cannot be written to %s and are lost; first: %s",
                lost,
                self.path,
                first,
            )

    def _runs_checked(self, runs: list[RunSnapshot]) -> tuple[pa.Table | None, list[RunSnapshot]]:
        """:func:`runs_table`, dropping (counted, logged) the snapshots that cannot be written;
        also returns the snapshots kept."""
        good: list[pa.Table] = []
        kept: list[RunSnapshot] = []
        for snap in runs:
            try:
                good.append(runs_table([snap], owner=self.owner))
                kept.append(snap)
            except Exception as exc:
                self.counters.run_rows_lost += 1
                self.counters.last_error = f"snapshot of run {snap.id!r}: {exc}"
                _log.error(
                    "runtrace: the snapshot of run %r cannot be written to %s: %s",
                    snap.id,
                    self.path,
                    exc,
                )
        return (pa.concat_tables(good) if good else None), kept

    def _not_stale(self, latest: Newest) -> list[RunSnapshot]:
        """The snapshots of ``latest`` that are not older than the version last written of
        their run; remembers theirs as the versions written now."""
        written, ended = self.written_keys, self.ended_keys
        fresh: list[RunSnapshot] = []
        for run_id, s in latest.items():
            key = version(s)
            old = written.get(run_id) or ended.get(run_id)
            if old is not None and key < old:
                continue  # lost a race against a snapshot written in an earlier batch
            fresh.append(s)
            if s.ended_at_ms is None:
                written[run_id] = key
            else:
                written.pop(run_id, None)
                ended.pop(run_id, None)  # re-inserted last: the most recent stay
                ended[run_id] = key
                if len(ended) > MAX_ENDED_KEYS:
                    del ended[next(iter(ended))]
        return fresh


def _refresh(latest: Newest, source: SnapshotSource) -> None:
    """Bring each live run of ``latest`` up to its newest snapshot in the store: the queue's
    may count fewer events (the agent's thread makes no snapshot per counted event), and a
    live run's row may then count events of the next flush. A run that ended since keeps its
    queued snapshot, counted up to this batch's events by :func:`_settle_latest`: its final
    snapshot comes with its last events, so an ended row never gets ahead of them.
    """
    for run_id, snap in latest.items():
        if snap.ended_at_ms is None:
            fresh = source(run_id)
            if fresh is not None and fresh.ended_at_ms is None and newer(fresh, snap):
                latest[run_id] = fresh


def _settle_latest(
    latest: Newest,
    run_only: list[RunSnapshot],
    columns: EventColumns,
    snaps: list[RunSnapshot],
    recs: list[RunEventRecord | None],
) -> None:
    """Make ``latest`` each run's newest snapshot, robust to threads enqueuing out of order.

    ``latest`` holds the last snapshot queued per run. It loses to an ``on_run`` snapshot
    that is newer (cancelled, ended), and must count every event of its run in the batch;
    if it does not, a racing thread queued an older snapshot last, and the batch is searched
    for the one that came with the run's highest sequence (rare). The check is C-level
    ``map`` calls, not a group-by (pyarrow's would load its dataset engine: ~50 MB of RSS).
    """
    for s in run_only:
        if newer(s, latest[s.id]):
            latest[s.id] = s
    ids, seqs = columns[0], columns[1]
    counts = map(_event_count, map(latest.__getitem__, ids))
    if all(map(operator.gt, counts, seqs)):
        return
    top: dict[str, int] = {}
    newest_ms: dict[str, int] = {}
    for run_id, seq, ms in zip(ids, seqs, columns[2], strict=True):
        if seq >= top.get(run_id, -1):
            top[run_id] = seq
        if ms > newest_ms.get(run_id, -1):
            newest_ms[run_id] = ms
    for run_id, highest in top.items():
        if latest[run_id].event_count < highest + 1:
            for snap, rec in zip(reversed(snaps), reversed(recs), strict=True):
                if rec is not None and snap.id == run_id and rec.sequence == highest:
                    if newer(snap, latest[run_id]):
                        latest[run_id] = snap
                    break
            snap = latest[run_id]
            if snap.event_count < highest + 1:
                # Queued for a sink that reads snapshots itself (the run's last one made, not
                # one per event) and not brought up to date: the run ended since. The events
                # after it only counted, so the row is that snapshot with them counted.
                latest[run_id] = snap.model_copy(
                    update={
                        "event_count": highest + 1,
                        "updated_at_ms": max(snap.updated_at_ms, newest_ms[run_id]),
                    }
                )


_event_count = operator.attrgetter("event_count")


def _collect(
    snaps: list[RunSnapshot],
    recs: list[RunEventRecord | None],
    latest: Newest,
    run_only: list[RunSnapshot],
    columns: EventColumns,
) -> None:
    ids, seqs, stamps, types, texts = columns
    add_id, add_seq, add_stamp = ids.append, seqs.append, stamps.append
    add_type, add_text = types.append, texts.append
    for snap, rec in zip(snaps, recs):  # noqa: B905 (equal by construction; strict costs)
        run_id = snap.id
        latest[run_id] = snap
        if rec is None:
            run_only.append(snap)
            continue
        event = rec.event
        add_id(run_id)
        add_seq(rec.sequence)
        add_stamp(rec.timestamp_ms)
        add_type(event.type)
        add_text(event.__pydantic_serializer__.to_json(event))
