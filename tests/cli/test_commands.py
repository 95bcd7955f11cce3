"""The runtrace command: every subcommand on the demo file, its formats, and its errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from runtrace.cli import main
from runtrace.demo import DemoResult, plan_workload
from runtrace.duckdb import list_queries


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_records_the_workload_and_prints_the_outcome_summary(capsys, tmp_path) -> None:
    db = tmp_path / "demo.duckdb"
    code, out, err = run_cli(capsys, "demo", "--db", str(db), "--runs", "25", "--seed", "5")
    assert code == 0, err
    expected = plan_workload(25, seed=5).expected
    assert f"Recorded 25 runs ({expected.events} events" in out
    for status, count in expected.status_counts.items():
        assert any(line.split()[:2] == [status, str(count)] for line in out.splitlines())
    code, _, err = run_cli(capsys, "demo", "--db", str(db), "--runs", "5")
    assert code == 1 and "already exists" in err


def test_runs_lists_newest_first_with_filters(capsys, demo: DemoResult) -> None:
    expected = demo.workload.expected
    code, out, _ = run_cli(
        capsys, "runs", "--db", demo.path, "--status", "cancelled", "--limit", "1000",
        "--format", "json",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == expected.status_counts["cancelled"]
    assert {r["status"] for r in rows} == {"cancelled"}
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    session = demo.workload.runs[0].session_id
    code, out, _ = run_cli(capsys, "--db", demo.path, "runs", "--session", session, "--limit", "3")
    table_rows = [line for line in out.splitlines() if line.startswith("run-")]
    in_session = sum(1 for r in demo.workload.runs if r.session_id == session)
    assert len(table_rows) == min(3, in_session)
    assert out.rstrip().endswith(f"({min(3, in_session)} row{'s' if in_session > 1 else ''})")


def test_db_defaults_to_the_environment_variable(capsys, demo: DemoResult, monkeypatch) -> None:
    monkeypatch.setenv("RUNTRACE_DB", demo.path)
    code, out, _ = run_cli(capsys, "runs", "--limit", "2", "--format", "csv")
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO(out)))) == 2


def test_show_prints_the_snapshot_and_every_event(capsys, demo: DemoResult) -> None:
    planned = demo.workload.runs[1]
    run_id = demo.run_ids[1]
    code, out, _ = run_cli(capsys, "show", run_id, "--db", demo.path, "--format", "json")
    assert code == 0
    shown = json.loads(out)
    assert shown["run"]["status"] == planned.status
    assert shown["run"]["agent_name"] == planned.agent_name
    assert shown["run"]["attributes"]["runtrace.demo.index"] == planned.index
    assert [e["type"] for e in shown["events"]] == [e["type"] for _, e in planned.events]
    code, out, _ = run_cli(capsys, "show", run_id, "--db", demo.path)
    assert f"status: {planned.status}" in out
    assert f"({len(planned.events)} rows)" in out


def test_query_runs_a_named_query_in_each_format(capsys, demo: DemoResult) -> None:
    expected = demo.workload.expected
    code, out, _ = run_cli(capsys, "query", "tool_stats", "--db", demo.path, "--format", "csv")
    assert code == 0
    calls = {r["tool_name"]: int(r["calls"]) for r in csv.DictReader(io.StringIO(out))}
    assert calls == expected.tool_calls
    code, out, _ = run_cli(
        capsys, "query", "tool_failures", "-p", "tool_name=bash", "--db", demo.path,
        "--format", "json",
    )  # fmt: skip
    assert sum(r["failures"] for r in json.loads(out)) == expected.tool_failures["bash"]
    code, out, _ = run_cli(capsys, "query", "outcome_summary", "--db", demo.path)
    assert out.splitlines()[0].split()[:2] == ["status", "runs"]


def test_query_runs_a_sql_file_with_parameters(capsys, demo: DemoResult, tmp_path) -> None:
    sql = tmp_path / "per_status.sql"
    sql.write_text(
        "-- How many runs have this status?\n-- Parameters:\n--   $status VARCHAR  a status\n"
        "SELECT count(*) AS runs FROM runs WHERE status = $status\n"
    )
    code, out, _ = run_cli(
        capsys, "query", str(sql), "-p", "status=failed", "--db", demo.path, "--format", "json"
    )
    assert code == 0
    assert json.loads(out) == [{"runs": demo.workload.expected.status_counts["failed"]}]


def test_queries_lists_every_query_with_its_question(capsys) -> None:
    code, out, _ = run_cli(capsys, "queries")
    assert code == 0
    for query in list_queries():
        assert f"{query.name}\n    {query.summary}\n" in out


def test_export_writes_parquet_partitioned_by_day(capsys, demo: DemoResult, tmp_path) -> None:
    out_dir = tmp_path / "parquet"
    code, out, err = run_cli(capsys, "export", "--parquet", str(out_dir), "--db", demo.path)
    assert code == 0, err
    expected = demo.workload.expected
    assert out.startswith(f"Exported {expected.runs} runs and {expected.events} events")
    assert list((out_dir / "runs").glob("day=*/*.parquet"))
    events = duckdb.sql(
        "SELECT count(*) FROM read_parquet($glob, hive_partitioning = true)",
        params={"glob": str(out_dir / "run_events" / "*" / "*.parquet")},
    ).fetchall()[0][0]
    assert events == demo.workload.expected.events


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["runs", "--db", "{missing}"], "no runtrace database at"),
        (["show", "run-nope", "--db", "{db}"], "no run with id 'run-nope'"),
        (["query", "nope", "--db", "{db}"], "no query named 'nope'"),
        (["query", "slowest_runs", "-p", "limit=many", "--db", "{db}"], "must be INTEGER"),
        (["query", "slowest_runs", "-p", "limit", "--db", "{db}"], "use -p name=value"),
        (["query", "slowest_runs", "-p", "limt=3", "--db", "{db}"], "no parameter $limt"),
        (["query", "session_timeline", "--db", "{db}"], "needs parameter $session_id"),
        (["query", "{bad_sql}", "--db", "{db}"], "Parser Error"),
        (["query", "{missing}.sql", "--db", "{db}"], "cannot read query file"),
        (["forward", "--endpoint", "localhost:4318", "--db", "{db}"], "bad --endpoint"),
        (
            ["forward", "--endpoint", "http://127.0.0.1:9", "--since", "soon", "--db", "{db}"],
            "bad --since",
        ),
    ],
)
def test_errors_print_one_line_and_exit_1(
    capsys, demo: DemoResult, tmp_path: Path, argv: list[str], message: str
) -> None:
    bad_sql = tmp_path / "bad.sql"
    bad_sql.write_text("SELEC 1")
    names = {"db": demo.path, "missing": str(tmp_path / "missing"), "bad_sql": str(bad_sql)}
    code, out, err = run_cli(capsys, *(a.format(**names) for a in argv))
    assert code == 1
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"runtrace {argv[0]}: error: ")


def test_console_script_entry_point_exits_non_zero_on_error(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runtrace.cli", "--db", str(tmp_path / "none.duckdb"), "runs"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"runtrace runs: error: no runtrace database at {tmp_path / 'none.duckdb'}"
        " (run `runtrace demo` to make one)"
    )


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["query"])
    assert exc.value.code == 2
    assert "the following arguments are required" in capsys.readouterr().err


def test_docs_list_every_command_and_query() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    commands = ["demo", "runs", "show", "query", "queries", "export", "import", "forward"]
    for command in commands:
        assert f"## `runtrace {command}`" in docs
    for query in list_queries():
        assert f"| `{query.name}` | {query.summary} |" in docs


def _jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


IMPORT_LINES = [
    {"run_id": "r-a", "session_id": "s-1", "timestamp_ms": 1_000,
     "event": {"type": "agent_start", "prompt": "fix it"}},
    {"run_id": "r-b", "session_id": "s-1", "timestamp_ms": 5_000,
     "event": {"type": "agent_start", "prompt": "try again"}},
    {"run_id": "r-a", "session_id": "s-1", "timestamp_ms": 1_200,
     "event": {"type": "tool_start", "id": "t1", "name": "bash"}},
    {"run_id": "r-a", "session_id": "s-1", "timestamp_ms": 1_900,
     "event": {"type": "tool_end", "id": "t1", "name": "bash", "output": "x", "exit_code": 1}},
    {"run_id": "r-a", "session_id": "s-1", "timestamp_ms": 2_000,
     "event": {"type": "goal_progress", "progress": 0.5}},
    {"run_id": "r-a", "session_id": "s-1", "timestamp_ms": 3_000,
     "event": {"type": "agent_end", "text": "done"}},
    {"run_id": "r-b", "session_id": "s-1", "timestamp_ms": 6_000,
     "event": {"type": "error", "message": "model timed out"}},
    {"run_id": "r-c", "session_id": "s-2", "timestamp_ms": 7_000,
     "event": {"type": "agent_start", "prompt": "still going"}},
]  # fmt: skip


def test_import_replays_a_jsonl_stream_into_runs(capsys, tmp_path) -> None:
    db = tmp_path / "imported.duckdb"
    source = _jsonl(tmp_path / "events.jsonl", IMPORT_LINES)
    code, out, err = run_cli(capsys, "import", str(source), "--db", str(db))
    assert code == 0, err
    assert out.startswith(f"Imported 3 runs ({len(IMPORT_LINES)} events)")
    code, out, _ = run_cli(capsys, "runs", "--db", str(db), "--format", "json")
    runs = {r["run_id"]: r for r in json.loads(out)}
    assert {k: r["status"] for k, r in runs.items()} == {
        "r-a": "completed", "r-b": "failed", "r-c": "executing",
    }  # fmt: skip
    assert runs["r-a"]["duration_ms"] == 2_000  # first event to the last
    assert runs["r-b"]["error"] == "model timed out"
    code, out, _ = run_cli(capsys, "query", "tool_stats", "--db", str(db), "--format", "json")
    stats = json.loads(out)[0]
    assert (stats["calls"], stats["failures"], stats["max_latency_ms"]) == (1, 1, 700)
    code, out, _ = run_cli(capsys, "import", str(source), "--db", str(db))
    assert out.startswith("Imported 0 runs (0 events)") and "skipped 3 runs" in out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "events.jsonl, line 2: not valid JSON"),
        ("[1, 2]", "events.jsonl, line 2: expected a JSON object"),
        ('{"run_id": "r", "event": {"type": "x"}}', "line 2: field 'session_id' must be a str"),
        (
            '{"run_id": "r", "session_id": "s", "timestamp_ms": 1, "event": {"type": "tool_end"}}',
            "events.jsonl, line 2: invalid event",
        ),
    ],
)
def test_import_rejects_a_bad_line_and_writes_nothing(capsys, tmp_path, line, message) -> None:
    db = tmp_path / "imported.duckdb"
    source = tmp_path / "events.jsonl"
    source.write_text(json.dumps(IMPORT_LINES[0]) + "\n" + line + "\n")
    code, _, err = run_cli(capsys, "import", str(source), "--db", str(db))
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1
    assert not db.exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_and_stays_quiet_in_a_pipe() -> None:
    from runtrace.cli.output import progress

    terminal = _Terminal()
    update, close = progress("recording", stream=terminal)
    update(5, 10)
    update(10, 10)
    close()
    drawn = terminal.getvalue()
    assert "recording:" in drawn and "10/10" in drawn
    assert "100%" in drawn
    pipe = io.StringIO()
    update, close = progress("recording", stream=pipe)
    update(10, 10)
    close()
    assert pipe.getvalue() == ""
