"""The pure status rules of a run (apply_event, mark_failed, mark_cancelled, finish)."""

from __future__ import annotations

import json
import os
import random
import uuid

import pytest
from pydantic import ValidationError

from runtrace.events import parse_event
from runtrace.runs import (
    RunEventRecord,
    RunRecord,
    RunSnapshot,
    RunStatus,
    apply_event,
    counts_only_on,
    event_record,
    finish,
    mark_cancelled,
    mark_failed,
    new_run_id,
)
from tests.event_samples import ONE_OF_EACH, VARIANTS


def snapshot(status: RunStatus = RunStatus.CREATED, **fields: object) -> RunSnapshot:
    return RunSnapshot(
        id="run-1",
        session_id="s1",
        status=status,
        created_at_ms=1_000,
        updated_at_ms=1_000,
        **fields,
    )


def apply(snap: RunSnapshot, raw: dict) -> RunSnapshot:
    return apply_event(snap, parse_event(raw), at_ms=2_000)


STEP = {
    "type": "step_start",
    "step_id": "s",
    "description": "d",
    "step_number": 1,
    "total_steps": 1,
}
TOOL = {"type": "tool_start", "id": "t", "name": "bash"}
TURN = {"type": "turn_start", "turn": 1}
END = {"type": "agent_end", "text": "done"}
ERROR = {"type": "error", "message": "boom"}


def test_run_status_values_are_the_reference_wire_names() -> None:
    assert [s.value for s in RunStatus] == [
        "created",
        "planning",
        "executing",
        "verifying",
        "completed",
        "failed",
        "cancelled",
    ]
    assert RunStatus("cancelled") is RunStatus.CANCELLED
    assert RunStatus.COMPLETED == "completed"


def test_agent_start_executes_and_fills_an_empty_prompt() -> None:
    after = apply(snapshot(), {"type": "agent_start", "prompt": "fix tests"})
    assert after.status is RunStatus.EXECUTING
    assert after.prompt == "fix tests"


def test_agent_start_keeps_a_prompt_the_run_already_has() -> None:
    after = apply(snapshot(prompt="original"), {"type": "agent_start", "prompt": "other"})
    assert after.prompt == "original"


def test_planning_start_plans_and_planning_end_executes() -> None:
    planning = apply(snapshot(RunStatus.EXECUTING), {"type": "planning_start", "prompt": "p"})
    assert planning.status is RunStatus.PLANNING
    done = apply(planning, {"type": "planning_end", "plan": [], "estimated_steps": 3})
    assert done.status is RunStatus.EXECUTING


@pytest.mark.parametrize("raw", [STEP, TOOL, TURN], ids=lambda r: r["type"])
def test_work_events_execute_unless_planning(raw: dict) -> None:
    assert apply(snapshot(), raw).status is RunStatus.EXECUTING
    assert apply(snapshot(RunStatus.VERIFYING), raw).status is RunStatus.EXECUTING
    assert apply(snapshot(RunStatus.PLANNING), raw).status is RunStatus.PLANNING


def test_verification_start_verifies() -> None:
    after = apply(snapshot(RunStatus.EXECUTING), {"type": "verification_start"})
    assert after.status is RunStatus.VERIFYING


def test_agent_end_completes_with_result_and_clears_error() -> None:
    after = apply(snapshot(RunStatus.FAILED, error="earlier"), END)
    assert after.status is RunStatus.COMPLETED
    assert after.result_text == "done"
    assert after.error is None


def test_error_fails_with_the_message() -> None:
    after = apply(snapshot(RunStatus.EXECUTING), ERROR)
    assert after.status is RunStatus.FAILED
    assert after.error == "boom"


@pytest.mark.parametrize(
    "raw",
    [END, ERROR, STEP, TOOL, TURN, {"type": "agent_start", "prompt": "p"}],
    ids=lambda r: r["type"],
)
def test_cancelled_run_stays_cancelled_whatever_event_arrives(raw: dict) -> None:
    before = snapshot(RunStatus.CANCELLED, prompt="p")
    after = apply(before, raw)
    assert after.status is RunStatus.CANCELLED
    assert after.result_text is None
    assert after.error is None
    assert after.event_count == 1


def test_every_event_counts_and_updates_the_time_even_unknown_ones() -> None:
    snap = snapshot()
    for n, raw in enumerate([{"type": "text_delta", "text": "x"}, {"type": "memory_stored"}], 1):
        snap = apply(snap, raw)
        assert snap.event_count == n
        assert snap.updated_at_ms == 2_000
    assert snap.status is RunStatus.CREATED


def test_turn_usage_adds_up_and_agent_end_usage_is_the_total() -> None:
    snap = snapshot()
    for turn in (1, 2):
        snap = apply(
            snap,
            {
                "type": "turn_end",
                "turn": turn,
                "usage": {"prompt_tokens": 10, "completion_tokens": 2},
            },
        )
    assert (snap.input_tokens, snap.output_tokens) == (20, 4)
    no_usage = apply(snap, END)
    assert (no_usage.input_tokens, no_usage.output_tokens) == (20, 4)
    with_usage = apply(
        snap, {**END, "usage": {"prompt_tokens": 25, "completion_tokens": 5, "total_tokens": 30}}
    )
    assert (with_usage.input_tokens, with_usage.output_tokens) == (25, 5)


def test_apply_event_leaves_the_given_snapshot_unchanged() -> None:
    before = snapshot()
    apply(before, END)
    assert before.status is RunStatus.CREATED
    assert before.event_count == 0


def test_mark_failed_never_overrides_cancelled() -> None:
    assert mark_failed(snapshot(RunStatus.CANCELLED), "late").status is RunStatus.CANCELLED
    failed = mark_failed(snapshot(RunStatus.EXECUTING), "x")
    assert (failed.status, failed.error) == (RunStatus.FAILED, "x")


def test_mark_cancelled_keeps_an_outcome_that_is_already_decided() -> None:
    assert mark_cancelled(snapshot(RunStatus.EXECUTING)).status is RunStatus.CANCELLED
    assert mark_cancelled(snapshot(RunStatus.COMPLETED)).status is RunStatus.COMPLETED
    assert mark_cancelled(snapshot(RunStatus.FAILED)).status is RunStatus.FAILED


def test_finish_completes_an_open_run_or_fails_it_with_the_given_error() -> None:
    done = finish(snapshot(RunStatus.EXECUTING), at_ms=5_000)
    assert (done.status, done.ended_at_ms, done.duration_ms) == (RunStatus.COMPLETED, 5_000, 4_000)
    failed = finish(snapshot(RunStatus.EXECUTING), error="span error", at_ms=5_000)
    assert (failed.status, failed.error) == (RunStatus.FAILED, "span error")
    cancelled = finish(snapshot(RunStatus.CANCELLED), error="ignored", at_ms=5_000)
    assert (cancelled.status, cancelled.error) == (RunStatus.CANCELLED, None)
    assert finish(done, at_ms=9_000).ended_at_ms == 5_000


def test_snapshot_json_omits_unset_optionals_like_the_reference() -> None:
    wire = json.loads(snapshot().model_dump_json())
    assert "result_text" not in wire
    assert "error" not in wire
    assert wire["status"] == "created"
    full = snapshot(RunStatus.COMPLETED, result_text="", error="e")
    assert json.loads(full.model_dump_json())["result_text"] == ""
    assert RunSnapshot.model_validate_json(full.model_dump_json()) == full


def test_snapshots_are_immutable_including_their_attributes() -> None:
    snap = snapshot(attributes={"k": "v", "list": [1, 2]})
    with pytest.raises(ValidationError):
        snap.status = RunStatus.FAILED  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.attributes["k"] = "changed"  # type: ignore[index]
    assert RunSnapshot.model_validate_json(snap.model_dump_json()) == snap


def test_run_record_round_trips_through_json() -> None:
    record = RunRecord(
        snapshot=snapshot(RunStatus.COMPLETED, result_text="ok", event_count=2),
        events=[
            RunEventRecord(sequence=0, timestamp_ms=1, event=parse_event({"type": "x", "a": 1})),
            RunEventRecord(sequence=1, timestamp_ms=2, event=parse_event(END)),
        ],
    )
    again = RunRecord.model_validate_json(record.model_dump_json())
    assert again == record
    assert type(again.events[1].event).__name__ == "AgentEnd"


def test_fast_built_records_and_snapshots_equal_validated_ones() -> None:
    event = parse_event(END)
    assert event_record(3, 7, event) == RunEventRecord(sequence=3, timestamp_ms=7, event=event)
    assert event_record(3, 7, event).model_dump_json() == (
        RunEventRecord(sequence=3, timestamp_ms=7, event=event).model_dump_json()
    )
    after = apply(snapshot(), END)
    rebuilt = RunSnapshot.model_validate(after.model_dump())
    assert after == rebuilt
    assert after.model_fields_set >= {"status", "event_count"}


def test_updated_at_never_moves_backwards_even_with_earlier_explicit_times() -> None:
    late = snapshot(RunStatus.EXECUTING).model_copy(update={"updated_at_ms": 9_000})
    assert apply_event(late, parse_event(STEP), at_ms=5_000).updated_at_ms == 9_000
    assert mark_failed(late, "x", at_ms=5_000).updated_at_ms == 9_000
    assert mark_cancelled(late, at_ms=5_000).updated_at_ms == 9_000
    ended = finish(late, at_ms=5_000)
    assert (ended.ended_at_ms, ended.updated_at_ms) == (5_000, 9_000)


@pytest.mark.parametrize("raw", [STEP, TOOL, TURN, END, ERROR], ids=lambda r: r["type"])
def test_an_ended_run_is_never_reopened_by_a_late_event(raw: dict) -> None:
    for outcome in (RunStatus.COMPLETED, RunStatus.FAILED):
        ended = finish(snapshot(outcome, result_text="done", error=None), at_ms=1_500)
        late = apply(ended, raw)
        assert (late.status, late.result_text, late.ended_at_ms) == (outcome, "done", 1_500)
        assert late.event_count == ended.event_count + 1


def test_a_late_turn_end_still_adds_its_tokens() -> None:
    ended = finish(snapshot(RunStatus.COMPLETED), at_ms=1_500)
    late = apply(ended, {"type": "turn_end", "turn": 9, "usage": {"prompt_tokens": 5}})
    assert late.input_tokens == 5 and late.status is RunStatus.COMPLETED


def test_new_run_ids_are_uuid4_and_ignore_the_global_random_seed() -> None:
    random.seed(0)
    first = [new_run_id() for _ in range(3)]
    random.seed(0)
    second = [new_run_id() for _ in range(3)]
    assert len(set(first + second)) == 6
    for run_id in first + [new_run_id() for _ in range(2_000)]:
        assert run_id.startswith("run-")
        parsed = uuid.UUID(run_id.removeprefix("run-"))
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == run_id.removeprefix("run-")  # canonical: lower case, dashes


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_run_ids_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without running pytest's teardown
        os.write(write, new_run_id().encode())
        os._exit(0)
    os.close(write)
    parent_id = new_run_id()
    with os.fdopen(read) as pipe:
        child_id = pipe.read()
    os.waitpid(pid, 0)
    assert child_id.startswith("run-")
    assert child_id != parent_id


@pytest.mark.parametrize("status", list(RunStatus))
@pytest.mark.parametrize("ended", [False, True])
def test_an_event_said_to_only_count_changes_nothing_else(status: RunStatus, ended: bool) -> None:
    before = snapshot(status, ended_at_ms=3_000 if ended else None)
    for raw in ONE_OF_EACH + VARIANTS:
        event = parse_event(raw)
        after = apply_event(before, event, at_ms=9_000)
        expected = before.model_copy(update={"event_count": 1, "updated_at_ms": 9_000})
        if counts_only_on(before, event):
            assert after == expected, raw
        elif raw["type"] in ("tool_start", "step_start", "turn_end"):
            assert after != expected, raw  # the rule had something to change
