"""What the DuckDB tests share: a run of every kind of event, drivers that feed a sink the way
the OpenTelemetry processor does, and ways to ask the file what it holds.

(``recorder.py`` is the recording process of the multi-process tests; ``minidb.py`` a tiny
hand-made database whose every query answer is known.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtrace import DuckDBSink, RunSnapshot, RunStore, connect
from runtrace.runs import RunRecord

EVENTS: list[dict[str, Any]] = [
    {"type": "agent_start", "prompt": "fix the bug"},
    {"type": "turn_start", "turn": 1},
    {"type": "tool_start", "id": "t1", "name": "bash"},
    {
        "type": "tool_end",
        "id": "t1",
        "name": "bash",
        "args": {"cmd": "ls"},
        "output": "a\nb",
        "exit_code": 2,
        "error_kind": "nonzero_exit",
    },
    {
        "type": "turn_end",
        "turn": 1,
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    },
    {"type": "permission_denied", "tool_id": "t2", "tool_name": "rm", "reason": "no"},
    {"type": "memory_stored", "memory_id": "m1", "nested": {"a": [1, 2.5, None, True]}},
    {
        "type": "agent_end",
        "text": "done",
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    },
]
"""One run, start to end: core events with typed columns, and an unknown type."""


def start_run(store: RunStore, sink: DuckDBSink, *args: Any, **kwargs: Any) -> RunSnapshot:
    """Create a run (``RunStore.create_run``'s arguments) and hand its snapshot to the sink."""
    snap = store.create_run(*args, **kwargs)
    sink.on_run(snap)
    return snap


def record_run(
    store: RunStore, sink: DuckDBSink, events: list[dict[str, Any]], **kwargs: Any
) -> str:
    """Create a run and record ``events``, driving the sink the way the processor does."""
    snap = start_run(store, sink, kwargs.pop("session_id", "s1"), **kwargs)
    for event in events:
        snap, rec = store.record(snap.id, event)
        sink.on_event(snap, rec)
    return snap.id


def record_deltas(store: RunStore, sink: DuckDBSink, run_id: str, n: int, start: int = 0) -> None:
    """Record ``n`` text deltas (``t<start>``, ...) into an existing run."""
    for i in range(start, start + n):
        sink.on_event(*store.record(run_id, {"type": "text_delta", "text": f"t{i}"}))


def ordered(records: list[RunRecord]) -> list[RunRecord]:
    """load_records orders by creation time, then run id (the store keeps insertion order)."""
    return sorted(records, key=lambda r: (r.snapshot.created_at_ms, r.snapshot.id))


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` on a read-only connection to ``db``."""
    con = connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def count(db: Path, sql: str = "SELECT count(*) FROM run_events") -> Any:
    """The first row of ``sql``: its value when it has one column (None without a row)."""
    rows = query(db, sql)
    if not rows:
        return None
    return rows[0][0] if len(rows[0]) == 1 else rows[0]
