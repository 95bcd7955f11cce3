"""Retention through ``RunSpanProcessor``: a run recorded into a real DuckDB file leaves the store
only once the sink has stored it, and stays while the sink cannot write."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

import runtrace.duckdb.write as write_module
from runtrace import DuckDBSink, RunSpanProcessor, RunStore, Runtrace, connect


def stored_statuses(path: Path) -> list[tuple[str, str]]:
    con = connect(path)
    try:
        return con.execute("SELECT run_id, status FROM runs ORDER BY run_id").fetchall()
    finally:
        con.close()


def test_a_finished_run_leaves_the_store_once_the_file_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.duckdb"
    store = RunStore(max_finished_runs=0)
    sink = DuckDBSink(path, flush_interval=60)
    provider = TracerProvider()
    rt = Runtrace(provider, RunSpanProcessor(store, sinks=[sink]))
    run = rt.begin_run("s", prompt="task")
    run.record({"type": "agent_end", "text": "done"})
    run.end()
    assert store.snapshot(run.id) is not None and store.unpersisted_runs == 1

    monkeypatch.setattr(write_module, "events_select_sql", lambda source: "SELECT x FROM nowhere")
    assert not sink.force_flush()  # the file refuses: the store is its only copy
    assert store.snapshot(run.id) is not None and store.evicted_runs == 0

    monkeypatch.undo()
    assert sink.force_flush()
    assert store.snapshot(run.id) is None and store.evicted_runs == 1
    assert store.unpersisted_runs == 0
    rt.shutdown()
    provider.shutdown()
    assert stored_statuses(path) == [(run.id, "completed")]


def test_an_open_run_stays_in_the_store_whatever_the_sink_has_written(tmp_path: Path) -> None:
    store = RunStore(max_finished_runs=0)
    sink = DuckDBSink(tmp_path / "runs.duckdb", flush_interval=60)
    provider = TracerProvider()
    rt = Runtrace(provider, RunSpanProcessor(store, sinks=[sink]))
    run = rt.begin_run("s", prompt="task")
    run.record({"type": "text_delta", "text": "thinking"})
    assert sink.force_flush()
    assert store.snapshot(run.id) is not None and store.evicted_runs == 0
    run.end()
    rt.shutdown()
    provider.shutdown()
    assert store.snapshot(run.id) is None and store.evicted_runs == 1
