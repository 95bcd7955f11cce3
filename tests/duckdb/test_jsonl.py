"""JSON-lines import: runs rebuilt with the status rules, all or nothing, bad lines named."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from duckdb_helpers import count

from runtrace import DuckDBSink, RunStatus
from runtrace.duckdb import import_jsonl, load_records
from runtrace.duckdb.jsonl import read_jsonl
from runtrace.errors import JsonlImportError


def line(run_id: str, session: str, at: int, **event: Any) -> dict[str, Any]:
    return {"run_id": run_id, "session_id": session, "timestamp_ms": at, "event": event}


def jsonl(*objs: Any) -> str:
    return "\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs) + "\n"


def test_jsonl_import_rebuilds_runs_with_the_status_rules(tmp_path: Path) -> None:
    db = tmp_path / "imp.duckdb"
    src = tmp_path / "events.jsonl"
    src.write_text(
        jsonl(
            {
                "run_id": "r1",
                "session_id": "s",
                "timestamp_ms": 10,
                "event": {"type": "agent_start", "prompt": "p"},
            },
            {
                "run_id": "r2",
                "session_id": "t",
                "timestamp_ms": 11,
                "event": {"type": "planning_start", "prompt": "q"},
            },
            "",
            {
                "run_id": "r1",
                "session_id": "s",
                "timestamp_ms": 30,
                "event": {"type": "agent_end", "text": "ok"},
            },
            {
                "run_id": "r1",
                "session_id": "s",
                "timestamp_ms": 20,
                "event": {"type": "tool_start", "id": "1", "name": "x"},
            },
            {
                "run_id": "r2",
                "session_id": "t",
                "timestamp_ms": 12,
                "event": {"type": "brand_new", "v": 1},
            },
        ),
        encoding="utf-8",
    )
    result = import_jsonl(src, db)
    assert (result.runs, result.events, result.skipped) == (2, 5, [])
    records = {r.snapshot.id: r for r in load_records(db)}
    r1, r2 = records["r1"], records["r2"]
    assert [e.event.type for e in r1.events] == ["agent_start", "tool_start", "agent_end"]
    assert [e.timestamp_ms for e in r1.events] == [10, 20, 30]
    assert r1.snapshot.status is RunStatus.COMPLETED
    assert (r1.snapshot.prompt, r1.snapshot.result_text, r1.snapshot.ended_at_ms) == ("p", "ok", 30)
    assert r2.snapshot.status is RunStatus.PLANNING and r2.snapshot.ended_at_ms is None
    assert count(db, "SELECT owner_pid FROM runs WHERE run_id = 'r2'") is None

    again = import_jsonl(io.StringIO(src.read_text(encoding="utf-8")), db)
    assert (again.runs, again.events, again.skipped) == (0, 0, ["r1", "r2"])
    assert count(db) == 5


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"run_id": "r", "session_id": "s", "timestamp_ms": "x", "event": {}}', "timestamp_ms"),
        (
            '{"run_id": "r", "session_id": "s", "timestamp_ms": 1, "event": {"type": "error"}}',
            "invalid event",
        ),
        (
            '{"run_id": "r1", "session_id": "other", "timestamp_ms": 1, "event": {"type": "x"}}',
            "session_id",
        ),
    ],
)
def test_a_bad_jsonl_line_is_named_and_nothing_is_written(
    tmp_path: Path, bad: str, message: str
) -> None:
    db = tmp_path / "bad.duckdb"
    DuckDBSink(db).shutdown()
    good = {"run_id": "r1", "session_id": "s", "timestamp_ms": 1, "event": {"type": "x"}}
    with pytest.raises(JsonlImportError, match=message) as info:
        import_jsonl([jsonl(good), jsonl(good), bad], db)
    assert info.value.line == 3
    assert str(info.value).startswith("line 3:")
    assert count(db) == 0


@pytest.mark.parametrize("at", [10**23, 2**63, -1])
def test_an_out_of_range_jsonl_timestamp_is_named_and_nothing_is_created(
    tmp_path: Path, at: int
) -> None:
    db = tmp_path / "imp.duckdb"
    good = {"run_id": "r1", "session_id": "s", "timestamp_ms": 1, "event": {"type": "x"}}
    lines = [json.dumps(good), json.dumps({**good, "timestamp_ms": at})]
    with pytest.raises(JsonlImportError, match="timestamp_ms") as info:
        import_jsonl(lines, db)
    assert info.value.line == 2
    assert sorted(tmp_path.iterdir()) == []


def test_jsonl_import_progress_counts_bytes_up_to_the_file_size(tmp_path: Path) -> None:
    db = tmp_path / "imp.duckdb"
    src = tmp_path / "events.jsonl"
    # A few MiB, so the import reports on the way and not only at the end.
    src.write_text(
        jsonl(*(line(f"r{i % 50}", f"s{i % 50}", i, type="text_delta", text="é" * 400)
                for i in range(6_000))),
        encoding="utf-8",
    )  # fmt: skip
    size = src.stat().st_size
    calls: list[tuple[int, int]] = []
    result = import_jsonl(src, db, progress=lambda done, total: calls.append((done, total)))
    assert (result.runs, result.events) == (50, 6_000)
    assert len(calls) >= 3
    assert calls[-1] == (size, size)
    assert all(total == size for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_jsonl_progress_on_a_stream_of_unknown_length_ends_at_what_was_read() -> None:
    calls: list[tuple[int, int]] = []
    text = jsonl(line("r", "s", 1, type="x"), line("r", "s", 2, type="y"))
    records, _ = read_jsonl(
        iter(text.splitlines(keepends=True)), progress=lambda *c: calls.append(c)
    )
    assert len(records) == 1
    assert calls == [(len(text.encode()), len(text.encode()))]


def test_a_line_that_is_not_utf8_is_named_by_its_number(tmp_path: Path) -> None:
    src = tmp_path / "events.jsonl"
    good = jsonl(line("r", "s", 1, type="x")).encode()
    src.write_bytes(good + b'{"run_id": "\xff"}\n')
    with pytest.raises(JsonlImportError, match="not valid UTF-8") as info:
        import_jsonl(src, tmp_path / "imp.duckdb")
    assert info.value.line == 2
    assert not (tmp_path / "imp.duckdb").exists()
