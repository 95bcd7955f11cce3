"""Bounded memory: runs flow through ``Runtrace`` into DuckDB with the store's retention on
and a small queue bound while the writer is held up (a slow disk). The queue never grows past
its bound (spilling or blocking, as configured, and counting it), the store keeps only the
finished runs retention allows, and nothing is lost: the file holds every event and run.

(The figure, peak RSS for 1M events, is ``benchmarks/bench_memory.py``.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from runtrace import DuckDBSink, RunHooks, RunSpanProcessor, RunStore, Runtrace, connect
from runtrace.events import BaseEvent

THREADS = 4
RUNS = 1_000
EVENTS = 100  # per run: 100,000 in all
BOUND = 2_000  # the sink's queue, in items
RETENTION = 50  # finished runs the store keeps
WAIT = 60.0
"""Seconds to wait for something that happens soon; only a hang takes this long."""


class QueueWatch(RunHooks):
    """Looks at the sink's queue on every event: the longest it got."""

    def __init__(self) -> None:
        self.sink: DuckDBSink | None = None
        self.longest = 0

    def on_event(self, event: BaseEvent, run_id: str, session_id: str) -> None:
        assert self.sink is not None
        self.longest = max(self.longest, self.sink._batch.stats.queued)


def events(run: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"type": "agent_start", "prompt": f"task {run}"}]
    out += [{"type": "text_delta", "text": f"{run}-{i}"} for i in range(EVENTS - 2)]
    out.append({"type": "agent_end", "text": "done"})
    return out


@pytest.mark.parametrize("when_full", ["spill", "block"])
def test_the_queue_stays_bounded_the_store_retains_and_nothing_is_lost(
    tmp_path: Path, when_full: str
) -> None:
    path = tmp_path / "memory.duckdb"
    store = RunStore(max_finished_runs=RETENTION)
    sink = DuckDBSink(
        path,
        flush_interval=0.05,
        max_batch_size=BOUND // 4,
        max_queue_size=BOUND,
        when_full=when_full,
        block_timeout=WAIT,
    )
    watch = QueueWatch()
    watch.sink = sink
    provider = TracerProvider()
    rt = Runtrace(provider, RunSpanProcessor(store, sinks=[sink], hooks=[watch]))

    def full() -> bool:
        stats = sink.stats
        return stats.events_spilled > 0 if when_full == "spill" else stats.blocked > 0

    def slow_disk() -> None:  # the writer is held until the queue has been full
        with sink._batch.exclusive():
            deadline = time.monotonic() + WAIT
            while not full() and time.monotonic() < deadline:
                time.sleep(0.01)

    def agent(t: int) -> None:
        for r in range(t, RUNS, THREADS):
            run = rt.begin_run(f"s{r}", prompt=f"task {r}")
            for event in events(r):
                run.record(event)
            run.end()

    holder = threading.Thread(target=slow_disk)
    holder.start()
    agents = [threading.Thread(target=agent, args=(t,)) for t in range(THREADS)]
    for a in agents:
        a.start()
    for a in agents:
        a.join()
    holder.join()
    rt.shutdown()
    provider.shutdown()

    assert full()  # the bound was reached, and handled as configured
    assert watch.longest <= BOUND + THREADS  # racing producers pass it by one item each
    assert len(store) <= RETENTION
    assert store.evicted_runs == RUNS - RETENTION
    stats = sink.stats
    assert (stats.events_written, stats.events_lost, stats.events_rescued) == (RUNS * EVENTS, 0, 0)
    assert stats.pending == 0
    con = connect(path)
    try:
        per_run = con.execute(
            "SELECT count(*), min(n), max(n), min(top), max(top) FROM ("
            "  SELECT run_id, count(DISTINCT sequence) AS n, max(sequence) AS top"
            "  FROM run_events GROUP BY run_id)"
        ).fetchone()
        runs = con.execute(
            "SELECT count(*), count(*) FILTER (status = 'completed'), min(event_count), "
            "max(event_count) FROM runs"
        ).fetchone()
        total = con.execute("SELECT count(*) FROM run_events").fetchone()
    finally:
        con.close()
    assert total == (RUNS * EVENTS,)
    assert per_run == (RUNS, EVENTS, EVENTS, EVENTS - 1, EVENTS - 1)
    assert runs == (RUNS, RUNS, EVENTS, EVENTS)
