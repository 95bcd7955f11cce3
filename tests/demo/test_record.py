"""The demo workload: deterministic from its seed, and recorded faithfully through Runtrace."""

from __future__ import annotations

import gc
import os
from collections import Counter

import pytest
from conftest import DEMO_RUNS, DEMO_SEED

from runtrace.demo import AGENTS, TOOLS, DemoResult, plan_workload, run_demo


def test_the_same_seed_plans_the_same_workload() -> None:
    first = plan_workload(120, seed=3, start_ms=0)
    second = plan_workload(120, seed=3, start_ms=0)
    assert first.expected == second.expected
    assert [r.events for r in first.runs] == [r.events for r in second.runs]
    assert plan_workload(120, seed=4, start_ms=0).expected != first.expected


def test_the_plan_covers_every_outcome_and_feature() -> None:
    expected = plan_workload(DEMO_RUNS, seed=DEMO_SEED).expected
    assert set(expected.status_counts) == {"completed", "failed", "cancelled", "executing"}
    assert expected.error_runs > 0 and expected.crashed_runs > 0  # both ways of failing
    assert expected.interrupted_runs == expected.status_counts["executing"] > 0
    assert expected.long_runs >= 1 and expected.max_events >= 1_000
    assert set(expected.tool_calls) == set(TOOLS)
    assert sum(expected.tool_failures.values()) > 0
    assert sum(expected.subagents_started.values()) > 0
    assert {agent for agent, _ in expected.status_by_agent} == set(AGENTS)
    assert expected.sessions < expected.runs  # sessions hold several runs


def test_plan_rejects_an_empty_workload() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        plan_workload(0)


def test_every_planned_run_is_recorded_with_its_outcome(demo: DemoResult, demo_con) -> None:
    expected = demo.workload.expected
    assert len(set(demo.run_ids)) == expected.runs
    rows = demo_con.execute("SELECT run_id, status, event_count FROM runs").fetchall()
    assert len(rows) == expected.runs
    assert dict(Counter(status for _, status, _ in rows)) == expected.status_counts
    by_id = {run_id: (status, count) for run_id, status, count in rows}
    for run_id, planned in zip(demo.run_ids, demo.workload.runs, strict=True):
        assert by_id[run_id] == (planned.status, len(planned.events)), planned.index


def test_every_event_lands_in_order(demo: DemoResult, demo_con) -> None:
    total, runs_with_gaps = demo_con.execute(
        """
        SELECT (SELECT count(*) FROM run_events),
               (SELECT count(*) FROM (SELECT run_id FROM run_events GROUP BY run_id
                                      HAVING max(sequence) + 1 <> count(*)))
        """
    ).fetchone()
    assert total == demo.workload.expected.events
    assert runs_with_gaps == 0


def test_long_runs_keep_all_their_events(demo: DemoResult, demo_con) -> None:
    long_ids = [rid for rid, r in zip(demo.run_ids, demo.workload.runs, strict=True) if r.long]
    assert len(long_ids) == demo.workload.expected.long_runs
    for run_id, planned in zip(demo.run_ids, demo.workload.runs, strict=True):
        if planned.long:
            stored = demo_con.execute(
                "SELECT count(*) FROM run_events WHERE run_id = ?", [run_id]
            ).fetchone()[0]
            assert stored == len(planned.events) >= 1_000


def test_failures_and_cancellations_keep_their_messages(demo: DemoResult, demo_con) -> None:
    errors = dict(demo_con.execute("SELECT run_id, error FROM runs").fetchall())
    for run_id, planned in zip(demo.run_ids, demo.workload.runs, strict=True):
        if planned.outcome == "failed":
            assert errors[run_id] == planned.error
        elif planned.outcome == "crashed":
            assert planned.error in errors[run_id]  # the exception's message
        elif planned.outcome == "cancelled":
            assert planned.cancel_reason in (errors[run_id] or "")
        else:
            assert errors[run_id] is None


def test_token_totals_match_the_turns(demo: DemoResult, demo_con) -> None:
    tokens_in, tokens_out = demo_con.execute(
        "SELECT sum(input_tokens), sum(output_tokens) FROM runs"
    ).fetchone()
    assert (tokens_in, tokens_out) == (
        demo.workload.expected.input_tokens,
        demo.workload.expected.output_tokens,
    )


def test_runs_carry_agent_session_and_demo_attributes(demo: DemoResult, demo_con) -> None:
    rows = demo_con.execute(
        "SELECT run_id, session_id, agent_name, attributes->>'runtrace.demo.index' FROM runs"
    ).fetchall()
    planned = {rid: r for rid, r in zip(demo.run_ids, demo.workload.runs, strict=True)}
    for run_id, session_id, agent_name, index in rows:
        assert (session_id, agent_name) == (planned[run_id].session_id, planned[run_id].agent_name)
        assert int(index) == planned[run_id].index


def test_interrupted_runs_stay_open_and_owned_by_the_recording_process(
    demo: DemoResult, demo_con
) -> None:
    rows = demo_con.execute(
        "SELECT run_id, ended_at_ms, owner_pid FROM runs WHERE status = 'executing'"
    ).fetchall()
    interrupted = {
        rid for rid, r in zip(demo.run_ids, demo.workload.runs, strict=True)
        if r.outcome == "interrupted"
    }  # fmt: skip
    assert {run_id for run_id, _, _ in rows} == interrupted
    assert all(ended is None and pid == os.getpid() for _, ended, pid in rows)


def test_the_demo_leaves_the_garbage_collector_as_it_found_it(tmp_path) -> None:
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    result = run_demo(tmp_path / "gc.duckdb", runs=5, seed=DEMO_SEED)
    assert len(result.run_ids) == 5
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == frozen
