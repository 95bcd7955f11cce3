"""RunStore: the reference's in-memory run store, strict about unknown runs and safe on threads."""

from __future__ import annotations

import json
import threading

import pytest
from pydantic import TypeAdapter, ValidationError

from runtrace import RunStatus, RunStore, RuntraceError
from runtrace.errors import RunNotFound
from runtrace.events import AgentEnd, AgentStart, TokenUsage
from runtrace.runs import RunRecord


# The reference's three tests, ported. The third one's store half (mark_cancelled) is here;
# the run handle that only cancels the current run lives with the OpenTelemetry edge.
def test_run_store_tracks_status_and_events() -> None:
    store = RunStore()
    run = store.create_run("session-1", "fix tests")
    store.record(run.id, AgentStart(prompt="fix tests"))
    store.record(run.id, AgentEnd(text="done", usage=TokenUsage()))
    snapshot = store.snapshot(run.id)
    assert snapshot is not None
    assert snapshot.status is RunStatus.COMPLETED
    assert snapshot.result_text == "done"
    assert snapshot.event_count == 2
    assert len(store.events(run.id)) == 2


def test_run_store_replaces_persisted_records() -> None:
    source = RunStore()
    run = source.create_run("session-1", "persist")
    source.record(run.id, AgentStart(prompt="persist"))
    target = RunStore()
    target.replace_records(source.records())
    assert len(target.list()) == 1
    assert len(target.events(run.id)) == 1
    snapshot = target.snapshot(run.id)
    assert snapshot is not None
    assert snapshot.event_count == 1


def test_run_store_marks_a_run_cancelled() -> None:
    store = RunStore()
    run = store.create_run("session-1", "fix tests")
    assert store.mark_cancelled(run.id).status is RunStatus.CANCELLED
    assert store.status(run.id) is RunStatus.CANCELLED


def test_create_run_makes_a_uuid_run_id_in_status_created() -> None:
    store = RunStore()
    run = store.create_run("s")
    assert run.id.startswith("run-") and len(run.id) == len("run-") + 36
    assert (run.status, run.prompt, run.event_count) == (RunStatus.CREATED, "", 0)
    assert store.create_run("s").id != run.id


def test_create_run_refuses_an_id_already_in_use() -> None:
    store = RunStore()
    store.create_run("s", run_id="run-a")
    with pytest.raises(ValueError, match="run-a"):
        store.create_run("s", run_id="run-a")


def test_record_accepts_dicts_and_json_and_numbers_events_in_order() -> None:
    store = RunStore()
    run = store.create_run("s")
    store.record(run.id, {"type": "agent_start", "prompt": "p"})
    store.record(run.id, '{"type": "tool_start", "id": "1", "name": "bash"}')
    snapshot, record = store.record(run.id, {"type": "custom_thing", "x": 1}, at_ms=42)
    assert record.sequence == 2 and record.timestamp_ms == 42
    assert snapshot.updated_at_ms >= store.events(run.id)[1].timestamp_ms  # never backwards
    assert [r.sequence for r in store.events(run.id)] == [0, 1, 2]
    assert [r.event.type for r in store.events(run.id)] == [
        "agent_start",
        "tool_start",
        "custom_thing",
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.record("run-missing", {"type": "agent_start", "prompt": "p"}),
        lambda s: s.mark_failed("run-missing", "x"),
        lambda s: s.mark_cancelled("run-missing"),
        lambda s: s.finish("run-missing"),
    ],
)
def test_mutating_an_unknown_run_raises_run_not_found(call) -> None:
    store = RunStore()
    with pytest.raises(RunNotFound) as info:
        call(store)
    assert isinstance(info.value, KeyError) and isinstance(info.value, RuntraceError)
    assert "run-missing" in str(info.value)
    assert len(store) == 0


def test_reading_an_unknown_run_gives_none_or_empty() -> None:
    store = RunStore()
    assert store.snapshot("nope") is None
    assert store.status("nope") is None
    assert store.events("nope") == []


def test_malformed_event_leaves_the_run_untouched() -> None:
    store = RunStore()
    run = store.create_run("s")
    store.record(run.id, {"type": "agent_start", "prompt": "p"})
    before = store.snapshot(run.id)
    with pytest.raises(ValidationError, match="exit_code"):
        store.record(run.id, {"type": "tool_end", "id": "1", "name": "n", "output": ""})
    assert store.snapshot(run.id) == before
    assert len(store.events(run.id)) == 1


def test_cancelled_run_is_never_overwritten_by_end_error_or_mark_failed() -> None:
    store = RunStore()
    run = store.create_run("s")
    store.record(run.id, {"type": "agent_start", "prompt": "p"})
    store.mark_cancelled(run.id)
    store.record(run.id, {"type": "agent_end", "text": "done anyway"})
    store.record(run.id, {"type": "error", "message": "late"})
    store.mark_failed(run.id, "later")
    final = store.finish(run.id, error="span error")
    assert final.status is RunStatus.CANCELLED
    assert final.result_text is None and final.error is None
    assert final.event_count == 3 and len(store.events(run.id)) == 3


def test_handed_out_snapshots_and_event_lists_cannot_change_the_store() -> None:
    store = RunStore()
    run = store.create_run("s", attributes={"k": "v"})
    events = store.events(run.id)
    events.append("junk")  # type: ignore[arg-type]
    assert store.events(run.id) == []
    with pytest.raises(TypeError):
        run.attributes["k"] = "x"  # type: ignore[index]
    assert store.snapshot(run.id).attributes["k"] == "v"  # type: ignore[union-attr]


def test_list_and_records_are_sorted_by_creation() -> None:
    store = RunStore()
    ids = [store.create_run("s", created_at_ms=t).id for t in (30, 10, 20)]
    assert [s.id for s in store.list()] == [ids[1], ids[2], ids[0]]
    assert [r.snapshot.id for r in store.records()] == [ids[1], ids[2], ids[0]]


def test_replace_records_recomputes_event_counts() -> None:
    source = RunStore()
    run = source.create_run("s")
    for i in range(3):
        source.record(run.id, {"type": "turn_start", "turn": i})
    record = source.records()[0]
    wrong = RunRecord(
        snapshot=record.snapshot.model_copy(update={"event_count": 99}), events=record.events
    )
    target = RunStore()
    target.create_run("old")
    target.replace_records([wrong])
    assert [s.id for s in target.list()] == [run.id]
    assert target.snapshot(run.id).event_count == 3  # type: ignore[union-attr]


def test_records_round_trip_through_json_into_a_new_store() -> None:
    source = RunStore()
    for n in range(3):
        run = source.create_run(f"s{n}", f"prompt {n}", attributes={"n": n})
        source.record(run.id, {"type": "agent_start", "prompt": "x"})
        source.record(run.id, {"type": "odd", "text": "ünïcødé ✓ \u0000", "big": 2**80})
        source.record(run.id, {"type": "agent_end", "text": f"done {n}"})
    adapter = TypeAdapter(list[RunRecord])
    wire = adapter.dump_json(source.records())
    json.loads(wire)  # it is plain JSON
    target = RunStore()
    target.replace_records(adapter.validate_json(wire))
    assert target.records() == source.records()
    assert target.list() == source.list()


def test_concurrent_threads_keep_every_runs_sequence_gapless() -> None:
    store = RunStore()
    threads_n, runs_per_thread, events_per_run = 8, 50, 200
    run_ids = [store.create_run(f"s{t}").id for t in range(threads_n * runs_per_thread)]
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def work(thread_index: int) -> None:
        barrier.wait()
        try:
            # every thread writes to every run, interleaved, so runs see real contention
            for i in range(runs_per_thread * events_per_run):
                run_id = run_ids[(i + thread_index) % len(run_ids)]
                store.record(run_id, {"type": "text_delta", "text": str(i)})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for run_id in run_ids:
        records = store.events(run_id)
        assert [r.sequence for r in records] == list(range(events_per_run))
        assert store.snapshot(run_id).event_count == events_per_run  # type: ignore[union-attr]


def test_max_finished_runs_evicts_the_oldest_finished_runs_and_counts_them() -> None:
    store = RunStore(max_finished_runs=2)
    open_run = store.create_run("s", created_at_ms=0)
    finished = [store.create_run("s", created_at_ms=t).id for t in (1, 2, 3)]
    for run_id in finished:
        store.record(run_id, {"type": "agent_end", "text": "ok"})
        final = store.finish(run_id)
        assert final.status is RunStatus.COMPLETED  # the caller still gets the final snapshot
    assert store.evicted_runs == 1
    assert store.snapshot(finished[0]) is None and store.events(finished[0]) == []
    assert [s.id for s in store.list()] == [open_run.id, *finished[1:]]
    store.finish(finished[2])  # finishing again does not evict twice
    assert store.evicted_runs == 1


def test_store_keeps_every_finished_run_by_default() -> None:
    store = RunStore()
    for _ in range(50):
        store.finish(store.create_run("s").id)
    assert len(store) == 50 and store.evicted_runs == 0


def test_negative_max_finished_runs_is_refused() -> None:
    with pytest.raises(ValueError, match="max_finished_runs"):
        RunStore(max_finished_runs=-1)


@pytest.mark.parametrize("bad", [-1, 2**63, 10**23, 1.5, "now"])
def test_an_out_of_range_timestamp_is_refused_and_changes_nothing(bad: object) -> None:
    store = RunStore()
    run = store.create_run("s")
    with pytest.raises(ValueError, match="at_ms"):
        store.record(run.id, {"type": "text_delta", "text": "x"}, at_ms=bad)  # type: ignore[arg-type]
    assert store.events(run.id) == [] and store.snapshot(run.id) == run


def test_an_event_with_a_lone_surrogate_is_refused_and_changes_nothing() -> None:
    store = RunStore()
    run = store.create_run("s")
    with pytest.raises(ValidationError, match="text holds a lone surrogate"):
        store.record(run.id, {"type": "text_delta", "text": "\udcff x"})
    assert store.events(run.id) == [] and store.snapshot(run.id) == run


def test_events_that_only_count_are_in_every_snapshot_read_after_them() -> None:
    store = RunStore()
    run = store.create_run("s", "p", created_at_ms=1_000)
    store.append(run.id, {"type": "text_delta", "text": "a"}, 5_000)
    store.append(run.id, {"type": "text_delta", "text": "b"}, 3_000)  # an older time
    for read in (
        lambda: store.snapshot(run.id),
        lambda: store.list()[0],
        lambda: store.records()[0].snapshot,
    ):
        snapshot = read()
        assert snapshot is not None
        assert (snapshot.event_count, snapshot.updated_at_ms) == (2, 5_000)
    assert store.status(run.id) is RunStatus.CREATED


def test_a_status_event_after_counted_events_applies_to_the_counted_snapshot() -> None:
    store = RunStore()
    run = store.create_run("s", "p", created_at_ms=1_000)
    store.append(run.id, {"type": "agent_start", "prompt": "p"}, 2_000)
    store.append(run.id, {"type": "tool_start", "id": "c", "name": "bash"}, 9_000)
    store.append(run.id, {"type": "agent_end", "text": "done"}, 4_000)
    snapshot = store.finish(run.id, at_ms=10_000)
    assert snapshot.status is RunStatus.COMPLETED
    assert snapshot.event_count == 3
    assert snapshot.updated_at_ms == 10_000
    cancelled = store.create_run("s", "p", created_at_ms=1_000)
    store.append(cancelled.id, {"type": "text_delta", "text": "a"}, 3_000)
    after = store.mark_cancelled(cancelled.id, reason="stop", at_ms=4_000)
    assert (after.status, after.event_count, after.updated_at_ms) == (
        RunStatus.CANCELLED,
        1,
        4_000,
    )
