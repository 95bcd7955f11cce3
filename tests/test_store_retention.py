"""RunStore retention: by count and by age, and only of runs every persisting sink has stored.

(``RunSpanProcessor`` registering a real ``DuckDBSink`` is ``tests/otel/test_retention.py``.)"""

from __future__ import annotations

import pytest

from runtrace import RunStatus, RunStore
from runtrace.runs import now_ms


def finished(store: RunStore, *, ended_ms_ago: int = 0) -> str:
    run_id = store.create_run("s").id
    store.record(run_id, {"type": "agent_end", "text": "ok"})
    store.finish(run_id, at_ms=now_ms() - ended_ms_ago)
    return run_id


def test_a_finished_run_waits_for_its_sink_before_it_leaves() -> None:
    store = RunStore(max_finished_runs=0)
    persisted = store.persistence_listener()
    run_id = finished(store)
    assert store.snapshot(run_id) is not None  # only the store has it yet
    assert store.unpersisted_runs == 1 and store.evicted_runs == 0
    persisted([run_id])
    assert store.snapshot(run_id) is None and store.events(run_id) == []
    assert store.unpersisted_runs == 0 and store.evicted_runs == 1


def test_every_persisting_sink_must_report_a_run_before_it_leaves() -> None:
    store = RunStore(max_finished_runs=0)
    first, second = store.persistence_listener(), store.persistence_listener()
    run_id = finished(store)
    first([run_id])
    first([run_id])  # the same sink twice is still one sink
    assert store.snapshot(run_id) is not None
    second([run_id])
    assert store.snapshot(run_id) is None and store.evicted_runs == 1


def test_open_runs_are_never_evicted_even_when_reported() -> None:
    store = RunStore(max_finished_runs=0)
    persisted = store.persistence_listener()
    open_id = store.create_run("s").id
    persisted([open_id, "run-unknown"])  # an open run, and one the store never had
    assert store.snapshot(open_id) is not None and store.evicted_runs == 0
    assert store.unpersisted_runs == 0


def test_the_count_bound_lets_the_oldest_persisted_runs_go_first() -> None:
    store = RunStore(max_finished_runs=2)
    persisted = store.persistence_listener()
    ids = [finished(store) for _ in range(4)]
    assert len(store) == 4  # nothing persisted: all kept, over the bound
    persisted([ids[2]])  # a newer one persisted first: it is the one that can go
    assert [s.id for s in store.list()] == [ids[0], ids[1], ids[3]]
    persisted(ids)
    assert [s.id for s in store.list()] == [ids[1], ids[3]]
    assert store.evicted_runs == 2 and store.unpersisted_runs == 0


def test_the_age_bound_evicts_runs_ended_longer_ago_than_it() -> None:
    store = RunStore(max_finished_age_s=60)
    old = [finished(store, ended_ms_ago=120_000) for _ in range(3)]
    young = finished(store)
    for run_id in old:
        assert store.snapshot(run_id) is None
    assert store.snapshot(young) is not None
    assert store.evicted_runs == 3


def test_the_age_bound_waits_for_persistence_too() -> None:
    store = RunStore(max_finished_age_s=0)
    persisted = store.persistence_listener()
    run_id = finished(store, ended_ms_ago=10_000)
    assert store.snapshot(run_id) is not None
    persisted([run_id])
    assert store.snapshot(run_id) is None


def test_a_straggler_event_makes_a_persisted_run_wait_again() -> None:
    store = RunStore(max_finished_runs=1)
    persisted = store.persistence_listener()
    run_id = finished(store)
    persisted([run_id])  # within the bound: kept
    store.record(run_id, {"type": "text_delta", "text": "late"})
    other = finished(store)
    persisted([other])
    assert store.snapshot(run_id) is not None  # its late event is not stored anywhere else yet
    assert store.snapshot(other) is None and store.evicted_runs == 1
    persisted([run_id])
    third = finished(store)
    persisted([third])
    assert store.snapshot(run_id) is None and store.snapshot(third) is not None
    assert store.evicted_runs == 2


def test_without_a_persisting_sink_retention_is_by_count_alone() -> None:
    store = RunStore(max_finished_runs=1)
    ids = [finished(store) for _ in range(3)]
    assert [s.id for s in store.list()] == ids[2:]
    assert store.evicted_runs == 2
    assert store.status(ids[2]) is RunStatus.COMPLETED


@pytest.mark.parametrize(
    ("keyword", "bad"),
    [
        ("max_finished_runs", -1),
        ("max_finished_runs", 1.5),
        ("max_finished_age_s", -0.1),
        ("max_finished_age_s", float("nan")),
        ("max_finished_age_s", "1h"),
    ],
)
def test_a_bad_retention_setting_is_refused_by_name(keyword: str, bad: object) -> None:
    with pytest.raises(ValueError, match=keyword):
        RunStore(**{keyword: bad})  # type: ignore[arg-type]
