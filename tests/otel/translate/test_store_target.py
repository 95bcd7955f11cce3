"""StoreTarget: the assembler's three calls applied to a RunStore, each change reported."""

from __future__ import annotations

from typing import Any

import pytest

from runtrace.otel.translate import StoreTarget
from runtrace.runs import RunEventRecord, RunSnapshot
from runtrace.store import RunStore


def make() -> tuple[StoreTarget, list[tuple[str, str | None]]]:
    changes: list[tuple[str, str | None]] = []

    def on_change(snapshot: RunSnapshot, record: RunEventRecord | None) -> None:
        changes.append((snapshot.status.value, None if record is None else record.event.type))

    target = StoreTarget(RunStore(), on_change)
    target.create_run("r1", "s1", "hi", "coder", "t" * 32, "s" * 16, {"k": 1}, 1_000)
    return target, changes


def test_a_run_created_recorded_and_finished_is_reported_at_each_step() -> None:
    target, changes = make()
    target.record("r1", {"type": "agent_start", "prompt": "hi"}, 1_001)
    target.finish("r1", error=None, cancelled=None, at_ms=1_002)
    snapshot = target.store.snapshot("r1")
    assert snapshot is not None
    assert (snapshot.agent_name, snapshot.attributes["k"], snapshot.ended_at_ms) == (
        "coder",
        1,
        1_002,
    )
    assert changes == [("created", None), ("executing", "agent_start"), ("completed", None)]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ({"error": "boom", "cancelled": None}, ("failed", "boom")),
        ({"error": None, "cancelled": "stopped"}, ("cancelled", "stopped")),
    ],
)
def test_failed_and_cancelled_finishes(outcome: dict[str, Any], expected: tuple[str, str]) -> None:
    target, _ = make()
    target.finish("r1", at_ms=1_005, **outcome)
    snapshot = target.store.snapshot("r1")
    assert snapshot is not None and (snapshot.status.value, snapshot.error) == expected


def test_a_second_run_with_the_same_id_is_refused() -> None:
    target, _ = make()
    with pytest.raises(ValueError, match="already exists"):
        target.create_run("r1", "s1", "", None, "t" * 32, "s" * 16, {}, 1_000)


def test_without_event_takers_events_are_stored_and_only_run_changes_reported() -> None:
    changes: list[tuple[str, str | None]] = []

    def on_change(snapshot: RunSnapshot, record: RunEventRecord | None) -> None:
        changes.append((snapshot.status.value, None if record is None else record.event.type))

    target = StoreTarget(RunStore(), on_change, events=False)
    target.create_run("r1", "s1", "hi", None, "t" * 32, "s" * 16, {}, 1_000)
    target.record("r1", {"type": "agent_start", "prompt": "hi"}, 1_001)
    target.record("r1", {"type": "text_delta", "text": "a"}, 1_002)
    target.finish("r1", error=None, cancelled=None, at_ms=1_003)
    assert changes == [("created", None), ("completed", None)]
    assert [r.event.type for r in target.store.events("r1")] == ["agent_start", "text_delta"]
    snapshot = target.store.snapshot("r1")
    assert snapshot is not None and (snapshot.event_count, snapshot.status.value) == (
        2,
        "completed",
    )
