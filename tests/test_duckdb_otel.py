"""The DuckDB sink fed by runtrace's OpenTelemetry edge, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from runtrace.otel import Runtrace
from runtrace.runs import RunStatus
from runtrace.sinks.duckdb import DuckDBSink, connect, load_records
from runtrace.store import RunStore


def test_runs_recorded_through_runtrace_land_in_duckdb_and_reload(tmp_path: Path) -> None:
    db = tmp_path / "otel.duckdb"
    provider = TracerProvider()
    sink = DuckDBSink(db, flush_interval=0.05)
    rt = Runtrace(tracer_provider=provider, sinks=[sink])
    with rt.start_run("s1", prompt="p", agent_name="coder") as run:
        run.record({"type": "agent_start", "prompt": "p"})
        run.record({"type": "tool_start", "id": "c1", "name": "grep"})
        run.record({"type": "tool_end", "id": "c1", "name": "grep", "output": "", "exit_code": 1})
        run.record({"type": "agent_end", "text": "answer"})
    with pytest.raises(RuntimeError), rt.start_run("s2", prompt="q") as failing:
        failing.record({"type": "agent_start", "prompt": "q"})
        raise RuntimeError("boom")
    rt.shutdown()
    provider.shutdown()

    con = connect(db)
    rows = con.execute(
        "SELECT session_id, agent_name, status, event_count, trace_id IS NOT NULL, "
        "ended_at_ms IS NOT NULL FROM runs ORDER BY session_id"
    ).fetchall()
    tool = con.execute(
        "SELECT tool_name, tool_call_id, exit_code FROM run_events WHERE type = 'tool_end'"
    ).fetchall()
    con.close()
    assert rows == [
        ("s1", "coder", "completed", 4, True, True),
        ("s2", None, "failed", 1, True, True),
    ]
    assert tool == [("grep", "c1", 1)]

    records = {r.snapshot.id: r for r in load_records(db)}
    assert records[run.id].snapshot == rt.store.snapshot(run.id)
    assert records[run.id].events == rt.store.events(run.id)
    assert records[failing.id].snapshot.status is RunStatus.FAILED
    rebuilt = RunStore()
    rebuilt.replace_records(records.values())
    assert rebuilt.snapshot(run.id) == rt.store.snapshot(run.id)
