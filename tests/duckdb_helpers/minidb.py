"""A tiny hand-made runtrace database whose every query answer is known."""

from __future__ import annotations

import json
from typing import Any

import duckdb

# The fixed schema of the DuckDB sink, for a hand-made store whose every answer is known.
_DDL = """
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY, session_id VARCHAR, agent_name VARCHAR, status VARCHAR,
    prompt VARCHAR, result_text VARCHAR, error VARCHAR, event_count BIGINT,
    created_at_ms BIGINT, updated_at_ms BIGINT, ended_at_ms BIGINT, duration_ms BIGINT,
    input_tokens BIGINT, output_tokens BIGINT, trace_id VARCHAR, span_id VARCHAR,
    attributes JSON, owner_host VARCHAR, owner_pid BIGINT
);
CREATE TABLE run_events (
    run_id VARCHAR, sequence BIGINT, timestamp_ms BIGINT, type VARCHAR, event JSON,
    tool_name VARCHAR, tool_call_id VARCHAR, exit_code BIGINT, input_tokens BIGINT,
    output_tokens BIGINT, error_message VARCHAR
);
"""

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC


def _run(
    run_id: str,
    session: str,
    agent: str,
    status: str,
    created: int,
    ended: int | None,
    *,
    error: str | None = None,
    tokens: tuple[int, int] = (0, 0),
    events: int = 0,
) -> tuple[Any, ...]:
    return (
        run_id, session, agent, status, "prompt", None, error, events, T0 + created,
        T0 + (ended if ended is not None else created), None if ended is None else T0 + ended,
        None if ended is None else ended - created, tokens[0], tokens[1], None, None, "{}",
        "host", 1,
    )  # fmt: skip


MINI_RUNS = [
    _run("r1", "s1", "coder", "completed", 0, 1_000, tokens=(100, 10), events=6),
    _run("r2", "s1", "coder", "failed", 2_000, 5_000, error="timeout after 31s", events=3),
    _run("r3", "s2", "coder", "failed", 6_000, 9_000, error="timeout after 45s", events=1),
    _run("r4", "s2", "tester", "cancelled", 7_000, 8_000, events=1),
    _run("r5", "s3", "tester", "executing", 8_000, None, events=1),
]


def _event(run_id: str, seq: int, at: int, event: dict[str, Any]) -> tuple[Any, ...]:
    usage = event.get("usage") or {}
    return (
        run_id, seq, T0 + at, event["type"], json.dumps(event),
        event.get("name"), event.get("id"), event.get("exit_code"),
        usage.get("prompt_tokens"), usage.get("completion_tokens"), event.get("message"),
    )  # fmt: skip


MINI_EVENTS = [
    _event("r1", 0, 0, {"type": "agent_start", "prompt": "fix it"}),
    _event("r1", 1, 100, {"type": "tool_start", "id": "t1", "name": "bash"}),
    _event("r1", 2, 350, {"type": "tool_end", "id": "t1", "name": "bash", "output": "boom",
                          "exit_code": 2, "error_kind": "exit_status"}),
    _event("r1", 3, 400, {"type": "tool_start", "id": "t2", "name": "bash"}),
    _event("r1", 4, 450, {"type": "tool_end", "id": "t2", "name": "bash", "output": "ok",
                          "exit_code": 0}),
    _event("r1", 5, 1_000, {"type": "agent_end", "text": "done",
                            "usage": {"prompt_tokens": 100, "completion_tokens": 10}}),
    _event("r2", 0, 2_000, {"type": "agent_start", "prompt": "p"}),
    _event("r2", 1, 2_100, {"type": "tool_start", "id": "t1", "name": "read_file"}),
    _event("r2", 2, 2_200, {"type": "tool_end", "id": "t1", "name": "read_file", "output": "x",
                            "exit_code": 0}),
    _event("r3", 0, 6_000, {"type": "error", "message": "timeout after 45s"}),
    _event("r4", 0, 7_000, {"type": "agent_start", "prompt": "p"}),
    _event("r5", 0, 8_000, {"type": "agent_start", "prompt": "p"}),
]  # fmt: skip


def build(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schema in ``con`` and fill it with the mini runs and events."""
    con.execute(_DDL)
    con.executemany("INSERT INTO runs VALUES (" + ", ".join(["?"] * 19) + ")", MINI_RUNS)
    con.executemany("INSERT INTO run_events VALUES (" + ", ".join(["?"] * 11) + ")", MINI_EVENTS)
