"""The named-query library: loading, parameter checking, and answers on known data."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from duckdb_helpers.minidb import MINI_EVENTS, MINI_RUNS, T0

from runtrace.demo import DemoResult
from runtrace.duckdb import get_query, list_queries, run_query
from runtrace.errors import DatabaseError, QueryError

REQUIRED_QUESTIONS = {
    "outcomes_by_agent",
    "outcome_rates_over_time",
    "duration_percentiles",
    "slowest_runs",
    "tool_stats",
    "tool_failures",
    "tokens_by_agent",
    "tokens_by_session",
    "tokens_per_run",
    "stuck_runs",
    "error_messages",
    "events_per_run",
    "session_timeline",
}


def test_every_required_question_has_a_query_with_a_description() -> None:
    queries = {q.name: q for q in list_queries()}
    assert set(queries) >= REQUIRED_QUESTIONS
    for query in queries.values():
        assert query.declared, f"{query.name} has no Parameters: header"
        assert query.summary.endswith("?"), f"{query.name}: summary should be the question"


@pytest.mark.parametrize("query", list_queries(), ids=lambda q: q.name)
def test_header_declares_exactly_the_parameters_the_sql_uses(query) -> None:
    body = "\n".join(line for line in query.sql.splitlines() if not line.lstrip().startswith("--"))
    used = set(re.findall(r"\$([A-Za-z_]\w*)", body))
    assert used == {p.name for p in query.params}
    assert "?" not in body.replace("'?'", ""), "positional parameters are not used"


def test_run_query_returns_an_arrow_table(mini_con: duckdb.DuckDBPyConnection) -> None:
    table = run_query(mini_con, "outcome_summary")
    assert isinstance(table, pa.Table)
    counts = dict(zip(table["status"].to_pylist(), table["runs"].to_pylist(), strict=True))
    assert counts == {"failed": 2, "completed": 1, "cancelled": 1, "executing": 1}
    assert sum(counts.values()) == len(MINI_RUNS)


def test_outcomes_by_agent_keeps_cancelled_apart_from_failed(mini_con) -> None:
    rows = run_query(mini_con, "outcomes_by_agent").to_pylist()
    by_key = {(r["agent_name"], r["status"]): r for r in rows}
    assert by_key[("coder", "failed")]["runs"] == 2
    assert by_key[("coder", "failed")]["share"] == pytest.approx(2 / 3, abs=1e-4)
    assert by_key[("tester", "cancelled")]["runs"] == 1
    assert ("tester", "failed") not in by_key


def test_tool_stats_measures_latency_from_start_to_matching_end(mini_con) -> None:
    rows = {r["tool_name"]: r for r in run_query(mini_con, "tool_stats").to_pylist()}
    assert rows["bash"]["calls"] == 2
    assert rows["bash"]["failures"] == 1
    assert rows["bash"]["failure_rate"] == 0.5
    assert rows["bash"]["max_latency_ms"] == 250  # t1: 100 -> 350; t2: 400 -> 450
    assert rows["bash"]["p50_latency_ms"] == pytest.approx(150.0)
    assert rows["read_file"]["failures"] == 0


def test_tool_failures_groups_by_exit_code_and_filters_by_tool(mini_con) -> None:
    rows = run_query(mini_con, "tool_failures").to_pylist()
    assert rows == [
        {
            "tool_name": "bash",
            "exit_code": 2,
            "error_kind": "exit_status",
            "failures": 1,
            "runs": 1,
            "latest_output": "boom",
        }
    ]
    assert run_query(mini_con, "tool_failures", {"tool_name": "read_file"}).num_rows == 0


def test_duration_percentiles_cover_ended_runs_only(mini_con) -> None:
    rows = {r["agent_name"]: r for r in run_query(mini_con, "duration_percentiles").to_pylist()}
    assert rows["coder"]["runs"] == 3  # durations 1000, 3000, 3000
    assert rows["coder"]["p50_ms"] == 3000
    assert rows["coder"]["max_ms"] == 3000
    assert rows["tester"]["runs"] == 1  # the executing run has no duration yet
    completed = run_query(mini_con, "duration_percentiles", {"status": "completed"}).to_pylist()
    assert [(r["agent_name"], r["runs"]) for r in completed] == [("coder", 1)]


def test_error_messages_group_messages_that_differ_only_in_numbers(mini_con) -> None:
    rows = run_query(mini_con, "error_messages").to_pylist()
    assert [(r["error_pattern"], r["runs"]) for r in rows] == [("timeout after <n>s", 2)]


def test_stuck_runs_lists_open_runs_idle_longer_than_the_threshold(mini_con) -> None:

    later = T0 + 8_000 + 31 * 60_000
    rows = run_query(mini_con, "stuck_runs", {"now_ms": later}).to_pylist()
    assert [r["run_id"] for r in rows] == ["r5"]
    assert rows[0]["idle_minutes"] == 31.0
    fresh = run_query(mini_con, "stuck_runs", {"now_ms": later, "older_than_minutes": 32})
    assert fresh.num_rows == 0


def test_timelines_list_events_in_order(mini_con) -> None:
    session = run_query(mini_con, "session_timeline", {"session_id": "s2"}).to_pylist()
    assert [(r["run_id"], r["type"]) for r in session] == [("r3", "error"), ("r4", "agent_start")]
    assert [r["elapsed_ms"] for r in session] == [0, 1_000]
    run = run_query(mini_con, "run_timeline", {"run_id": "r1"})
    assert run["sequence"].to_pylist() == list(range(6))
    assert run.num_rows == sum(1 for e in MINI_EVENTS if e[0] == "r1")


def test_token_and_size_queries_add_up(mini_con) -> None:
    agents = {r["agent_name"]: r for r in run_query(mini_con, "tokens_by_agent").to_pylist()}
    assert agents["coder"]["total_tokens"] == 110
    top = run_query(mini_con, "tokens_per_run", {"limit": 1}).to_pylist()
    assert [r["run_id"] for r in top] == ["r1"]
    sessions = run_query(mini_con, "tokens_by_session").to_pylist()
    assert sum(r["runs"] for r in sessions) == len(MINI_RUNS)
    histogram = run_query(mini_con, "events_per_run").to_pylist()
    assert sum(r["runs"] for r in histogram) == len(MINI_RUNS)
    assert sum(r["events"] for r in histogram) == sum(r[7] for r in MINI_RUNS)


def test_parameters_given_as_strings_are_converted(mini_con) -> None:
    table = run_query(mini_con, "slowest_runs", {"limit": "2"})
    assert table.num_rows == 2


def test_unknown_query_names_the_known_ones(mini_con) -> None:
    with pytest.raises(QueryError, match=r"no query named 'nope'.*tool_stats"):
        run_query(mini_con, "nope")


def test_unknown_parameter_is_rejected_with_the_accepted_ones(mini_con) -> None:
    with pytest.raises(QueryError, match=r"no parameter \$limt.*\$limit"):
        run_query(mini_con, "slowest_runs", {"limt": 3})


def test_missing_required_parameter_is_rejected(mini_con) -> None:
    with pytest.raises(QueryError, match=r"needs parameter \$session_id"):
        run_query(mini_con, "session_timeline")


def test_parameter_of_the_wrong_type_is_rejected(mini_con) -> None:
    with pytest.raises(QueryError, match=r"\$limit must be INTEGER"):
        run_query(mini_con, "slowest_runs", {"limit": "many"})


def test_a_sql_file_runs_by_path_and_bad_sql_raises_query_error(mini_con, tmp_path: Path) -> None:
    good = tmp_path / "agents.sql"
    good.write_text(
        "-- Which agents ran?\n-- Parameters:\n--   $agent VARCHAR  the agent\n"
        "SELECT count(*) AS n FROM runs WHERE agent_name = $agent\n"
    )
    assert run_query(mini_con, good, {"agent": "tester"}).to_pylist() == [{"n": 2}]
    bad = tmp_path / "bad.sql"
    bad.write_text("SELEC nothing FROM runs")
    with pytest.raises(QueryError, match=r"query 'bad' failed: Parser Error"):
        run_query(mini_con, bad)
    with pytest.raises(QueryError, match=r"cannot read query file"):
        get_query(tmp_path / "missing.sql")


# --- every query against the seeded demo file, checked against the planned workload ------------


@pytest.mark.parametrize("query", list_queries(), ids=lambda q: q.name)
def test_every_query_runs_on_the_demo_file(query, demo: DemoResult) -> None:
    planned = demo.workload.runs[0]
    params = {
        "session_id": planned.session_id,
        "run_id": demo.run_ids[0],
    }
    needed = {p.name: params[p.name] for p in query.params if p.required}
    table = run_query(demo.path, query.name, needed)  # opened by path, read-only
    assert table.num_columns > 0


def test_outcome_queries_match_the_planned_outcomes(demo: DemoResult, demo_con) -> None:
    expected = demo.workload.expected
    summary = run_query(demo_con, "outcome_summary").to_pylist()
    assert {r["status"]: r["runs"] for r in summary} == expected.status_counts
    assert sum(r["events"] for r in summary) == expected.events
    by_agent = run_query(demo_con, "outcomes_by_agent").to_pylist()
    assert {(r["agent_name"], r["status"]): r["runs"] for r in by_agent} == (
        expected.status_by_agent
    )
    over_time = run_query(demo_con, "outcome_rates_over_time", {"bucket": "1 day"}).to_pylist()
    assert sum(r["cancelled"] for r in over_time) == expected.status_counts["cancelled"]
    assert sum(r["runs"] for r in over_time) == expected.runs - expected.interrupted_runs


def test_tool_queries_match_the_planned_tool_calls(demo: DemoResult, demo_con) -> None:
    expected = demo.workload.expected
    stats = run_query(demo_con, "tool_stats").to_pylist()
    assert {r["tool_name"]: r["calls"] for r in stats} == expected.tool_calls
    assert {r["tool_name"]: r["failures"] for r in stats if r["failures"]} == (
        expected.tool_failures
    )
    assert all(r["p50_latency_ms"] is not None and r["p50_latency_ms"] >= 0 for r in stats)
    failures = run_query(demo_con, "tool_failures").to_pylist()
    assert {(r["tool_name"], r["exit_code"]): r["failures"] for r in failures} == (
        expected.tool_failures_by_exit
    )
    bash_only = run_query(demo_con, "tool_failures", {"tool_name": "bash"}).to_pylist()
    assert sum(r["failures"] for r in bash_only) == expected.tool_failures["bash"]


def test_token_queries_match_the_planned_usage(demo: DemoResult, demo_con) -> None:
    expected = demo.workload.expected
    agents = run_query(demo_con, "tokens_by_agent").to_pylist()
    assert {r["agent_name"]: (r["input_tokens"], r["output_tokens"]) for r in agents} == (
        expected.tokens_by_agent
    )
    sessions = run_query(demo_con, "tokens_by_session", {"limit": expected.sessions}).to_pylist()
    assert len(sessions) == expected.sessions
    assert sum(r["total_tokens"] for r in sessions) == expected.input_tokens + (
        expected.output_tokens
    )
    top = run_query(demo_con, "tokens_per_run", {"limit": 3})["total_tokens"].to_pylist()
    assert top == sorted(top, reverse=True)


def test_failure_and_size_queries_match_the_plan(demo: DemoResult, demo_con) -> None:
    expected = demo.workload.expected
    errors = run_query(demo_con, "error_messages", {"limit": 1000}).to_pylist()
    assert sum(r["runs"] for r in errors) == expected.status_counts["failed"]
    histogram = run_query(demo_con, "events_per_run").to_pylist()
    assert sum(r["runs"] for r in histogram) == expected.runs
    assert sum(r["events"] for r in histogram) == expected.events
    assert histogram[-1]["min_events"] <= expected.max_events < histogram[-1]["below_events"]
    durations = run_query(demo_con, "duration_percentiles").to_pylist()
    assert sum(r["runs"] for r in durations) == expected.runs - expected.interrupted_runs
    slowest = run_query(demo_con, "slowest_runs", {"limit": 5})["duration_ms"].to_pylist()
    assert slowest == sorted(slowest, reverse=True)


def test_subagent_outcomes_match_the_plan(demo: DemoResult, demo_con) -> None:
    expected = demo.workload.expected
    rows = run_query(demo_con, "subagent_outcomes").to_pylist()
    assert {r["subagent"]: r["started"] for r in rows} == expected.subagents_started
    assert {r["subagent"]: r["succeeded"] for r in rows} == {
        agent: expected.subagents_succeeded.get(agent, 0) for agent in expected.subagents_started
    }


def test_stuck_runs_are_the_interrupted_ones_once_idle_long_enough(
    demo: DemoResult, demo_con
) -> None:
    interrupted = {
        rid for rid, r in zip(demo.run_ids, demo.workload.runs, strict=True)
        if r.outcome == "interrupted"
    }  # fmt: skip
    stuck = run_query(demo_con, "stuck_runs", {"older_than_minutes": 0})
    assert set(stuck["run_id"].to_pylist()) == interrupted
    assert set(stuck["status"].to_pylist()) == {"executing"}
    fresh = run_query(demo_con, "stuck_runs", {"older_than_minutes": 24 * 60})
    assert fresh.num_rows == 0  # the demo was just recorded


def test_session_timeline_holds_every_event_of_the_session(demo: DemoResult, demo_con) -> None:
    session = demo.workload.runs[0].session_id
    planned_events = sum(len(r.events) for r in demo.workload.runs if r.session_id == session)
    rows = run_query(demo_con, "session_timeline", {"session_id": session, "limit": 100_000})
    assert rows.num_rows == planned_events
    elapsed = rows["elapsed_ms"].to_pylist()
    assert elapsed[0] == 0 and elapsed == sorted(elapsed)


def test_list_runs_filters_by_status_and_session(demo: DemoResult, demo_con) -> None:
    expected = demo.workload.expected
    cancelled = run_query(demo_con, "list_runs", {"status": "cancelled", "limit": 1000})
    assert cancelled.num_rows == expected.status_counts["cancelled"]
    session = demo.workload.runs[0].session_id
    in_session = run_query(demo_con, "list_runs", {"session_id": session, "limit": 1000})
    assert in_session.num_rows == sum(1 for r in demo.workload.runs if r.session_id == session)


def test_a_missing_file_raises_a_database_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no runtrace database"):
        run_query(tmp_path / "missing.duckdb", "outcome_summary")
