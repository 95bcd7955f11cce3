"""Building batches: a stale snapshot never overwrites a newer one, the memory of written
versions is bounded, and one bad item costs only itself."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from duckdb_helpers import query, start_run

import runtrace.duckdb.batches as batches_module
from runtrace import DuckDBSink, RunSnapshot, RunStatus, RunStore
from runtrace.events import parse_event
from runtrace.runs import RunEventRecord


def test_a_stale_snapshot_queued_after_a_cancel_does_not_reopen_the_run(tmp_path: Path) -> None:
    db = tmp_path / "race.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    run = start_run(store, sink, "s", "p")
    sink.on_event(*store.record(run.id, {"type": "agent_start", "prompt": "p"}, at_ms=1000))
    # An agent thread records an event, then is descheduled before handing it to the sink ...
    late = store.record(run.id, {"type": "text_delta", "text": "hi"}, at_ms=1000)
    # ... while the host cancels and ends the run, in the same millisecond.
    store.mark_cancelled(run.id, reason="stop", at_ms=1000)
    sink.on_run(store.finish(run.id, at_ms=1000))
    assert sink.force_flush()
    assert query(db, "SELECT status, ended_at_ms FROM runs") == [("cancelled", 1000)]
    sink.on_event(*late)  # the stale `executing` snapshot arrives in a later flush
    assert sink.force_flush()
    sink.shutdown()
    assert query(db, "SELECT status, ended_at_ms, error, event_count FROM runs") == [
        ("cancelled", 1000, "stop", 2)
    ]
    assert query(db, "SELECT count(*) FROM run_events") == [(2,)]


def test_the_sink_remembers_a_bounded_number_of_ended_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches_module, "MAX_ENDED_KEYS", 3)
    store = RunStore()
    sink = DuckDBSink(tmp_path / "bound.duckdb", flush_interval=60)
    ids = []
    for _ in range(5):
        run = store.create_run("s")
        sink.on_event(*store.record(run.id, {"type": "agent_end", "text": "ok"}))
        sink.on_run(store.finish(run.id))
        ids.append(run.id)
        assert sink.force_flush()
    assert list(sink._builder.ended_keys) == ids[-3:]
    assert not sink._builder.written_keys
    sink.shutdown()
    assert query(tmp_path / "bound.duckdb", "SELECT DISTINCT status FROM runs") == [
        (RunStatus.COMPLETED.value,)
    ]


class _NotJSON:
    pass


def test_an_item_that_cannot_be_serialised_is_counted_and_the_rest_is_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "poison.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    good = start_run(store, sink, "good")
    for i in range(100):
        sink.on_event(*store.record(good.id, {"type": "text_delta", "text": f"t{i}"}))
    bad = store.create_run("bad")
    snap, rec = store.record(bad.id, {"type": "agent_start", "prompt": "p"})
    sink.on_event(snap, rec)
    # Values the core refuses, smuggled past validation: an object JSON cannot carry, and a
    # timestamp beyond 64 bits.
    event = type(parse_event({"type": "custom_metric"})).model_construct(
        type="custom_metric", payload=_NotJSON()
    )
    sink.on_event(snap, RunEventRecord.model_construct(sequence=1, timestamp_ms=1, event=event))
    sink.on_event(
        snap, RunEventRecord.model_construct(sequence=2, timestamp_ms=10**23, event=rec.event)
    )
    odd = store.create_run("odd")
    sink.on_run(RunSnapshot.model_construct(**{**odd.__dict__, "attributes": {"x": _NotJSON()}}))
    with caplog.at_level(logging.ERROR, logger="runtrace.duckdb"):
        assert sink.force_flush()
    sink.shutdown()
    stats = sink.stats
    assert (stats.events_received, stats.events_written, stats.events_lost) == (103, 101, 2)
    assert (stats.run_rows_lost, stats.pending) == (1, 0)
    assert any("lost" in r.getMessage() for r in caplog.records)
    assert query(
        db,
        "SELECT session_id, count(*) FROM run_events JOIN runs USING (run_id) "
        "GROUP BY ALL ORDER BY 1",
    ) == [("bad", 1), ("good", 100)]


def _counted_entries(store: RunStore, run_id: str, n: int) -> list[object]:
    """What a snapshot-reading sink's queue holds for ``n`` deltas: each with the run's last
    snapshot made (taken once, before them), the way the processor hands them."""
    stale = store.snapshot(run_id)
    entries: list[object] = []
    for i in range(n):
        _, record = store.record(run_id, {"type": "text_delta", "text": str(i)}, at_ms=2_000 + i)
        entries += [stale, record]
    return entries


def test_a_reading_sinks_rows_count_every_event_of_the_batch(tmp_path: Path) -> None:
    store = RunStore()
    live = store.create_run("s", "p", created_at_ms=1_000)
    ended = store.create_run("s", "p", created_at_ms=1_000)
    builder = batches_module.BatchBuilder(str(tmp_path / "x.duckdb"), batches_module.Counters())
    builder.source = store.snapshot
    entries = _counted_entries(store, live.id, 5) + _counted_entries(store, ended.id, 4)
    store.finish(ended.id, at_ms=9_000)  # ended since; its final snapshot comes in a later batch
    _, newest = builder.events(entries)  # type: ignore[arg-type]
    # The live run: its newest snapshot, read from the store.
    assert newest[live.id] == store.snapshot(live.id)
    # The ended one: its queued snapshot with this batch's events counted, not the final one.
    row = newest[ended.id]
    assert (row.event_count, row.updated_at_ms, row.ended_at_ms) == (4, 2_003, None)
