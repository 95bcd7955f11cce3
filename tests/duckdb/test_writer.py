"""The writer's failures: a failed flush changes nothing stored and is retried; a batch that
keeps failing is set aside as Parquet, counted."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as pads
import pytest
from duckdb_helpers import count, record_deltas, start_run

import runtrace.duckdb.write as write_module
from runtrace import DuckDBSink, RunStore
from runtrace.events import parse_event


def test_a_failed_batch_changes_nothing_stored_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "retry.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    a = start_run(store, sink, "s")
    record_deltas(store, sink, a.id, 5)
    assert sink.force_flush()

    b = start_run(store, sink, "s")
    record_deltas(store, sink, a.id, 3, start=5)
    record_deltas(store, sink, b.id, 4)
    monkeypatch.setattr(
        write_module, "events_select_sql", lambda source: "SELECT broken FROM nowhere"
    )
    assert not sink.force_flush()
    stats = sink.stats
    assert stats.failed_attempts == 1 and stats.last_error is not None
    assert stats.pending == 7
    # The runs upsert in the failed transaction was rolled back with it.
    assert count(db, "SELECT count(*), max(event_count) FROM runs") == (1, 5)
    assert count(db) == 5

    monkeypatch.undo()
    assert sink.force_flush()
    sink.shutdown()
    assert count(db) == 12
    assert (
        count(db, "SELECT count(*) FROM (SELECT DISTINCT run_id, sequence FROM run_events)") == 12
    )
    assert sink.stats.events_written == 12 and sink.stats.events_lost == 0


def test_a_batch_that_keeps_failing_is_set_aside_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "rescue.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, max_retries=1, lock_timeout=0.2)
    run = start_run(store, sink, "s")
    record_deltas(store, sink, run.id, 6)
    monkeypatch.setattr(
        write_module, "events_select_sql", lambda source: "SELECT broken FROM nowhere"
    )
    sink.shutdown()
    stats = sink.stats
    assert stats.events_rescued == 6 and stats.events_written == 0 and stats.pending == 0
    rescued = list(Path(f"{db}.failed").glob("*.events.parquet"))
    assert len(rescued) == 1
    texts = pads.dataset(rescued[0]).to_table().column("event").to_pylist()
    assert [parse_event(t) for t in texts] == [r.event for r in store.events(run.id)]
