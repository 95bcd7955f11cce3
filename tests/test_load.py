"""Load: 1,000 concurrent runs on 8 threads and asyncio tasks through one DuckDB sink, with an
OTLP exporter on the same provider. Nothing is lost: every run's sequences are 0..n-1 in the
store and in the file, the file's row counts equal the store's, statuses are right, and the
backend received every run span."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from otlp_receiver import Receiver

from runtrace import DuckDBSink, RunSpanProcessor, RunStatus, Runtrace, connect

THREADS = 8
RUNS_PER_THREAD = 100  # and as many again on asyncio tasks
EVENTS = 20  # per run, besides agent_start and the end


def outcome(i: int) -> RunStatus:
    return (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)[i % 3]


def record_run(rt: Runtrace, session: str, i: int) -> str:
    run = rt.begin_run(session, prompt=f"task {i}", agent_name=f"agent-{i % 5}")
    run.record({"type": "agent_start", "prompt": f"task {i}"})
    for n in range(EVENTS):
        if n % 5 == 0:
            run.record({"type": "tool_start", "id": f"c{n}", "name": "bash"})
            run.record(
                {"type": "tool_end", "id": f"c{n}", "name": "bash", "output": "ok", "exit_code": n}
            )
        else:
            run.record({"type": "text_delta", "text": f"token {n} "})
    want = outcome(i)
    if want is RunStatus.CANCELLED:
        assert run.cancel("load test")
    elif want is RunStatus.FAILED:
        run.record({"type": "error", "message": "boom"})
        run.end()
    else:
        run.record({"type": "agent_end", "text": "done"})
        run.end()
    return run.id


def test_concurrent_runs_on_threads_and_tasks_lose_nothing(
    tmp_path: Path, receiver: Receiver
) -> None:
    path = tmp_path / "load.duckdb"
    provider = TracerProvider()
    provider.add_span_processor(
        # a queue that holds the burst: the SDK's default (2,048 spans) drops spans under it
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=receiver.endpoint, timeout=10), max_queue_size=100_000
        )
    )
    sink = DuckDBSink(str(path), flush_interval=0.2)
    rt = Runtrace(provider, RunSpanProcessor(sinks=[sink]))
    ids: list[str] = []
    lock = threading.Lock()

    def thread_body(t: int) -> None:
        mine = [
            record_run(rt, f"thread-{t}-{i}", t * RUNS_PER_THREAD + i)
            for i in range(RUNS_PER_THREAD)
        ]
        with lock:
            ids.extend(mine)

    async def task_body(t: int) -> list[str]:
        out = []
        for i in range(RUNS_PER_THREAD // 4):
            out.append(record_run(rt, f"task-{t}-{i}", 10_000 + t * 100 + i))
            await asyncio.sleep(0)  # interleave the tasks' runs
        return out

    def asyncio_body() -> None:
        async def main() -> list[list[str]]:
            return await asyncio.gather(*(task_body(t) for t in range(4 * 4)))

        for batch in asyncio.run(main()):
            with lock:
                ids.extend(batch)

    workers = [threading.Thread(target=thread_body, args=(t,)) for t in range(THREADS)]
    workers.append(threading.Thread(target=asyncio_body))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert rt.force_flush(30_000)
    store = rt.store
    assert len(ids) == len(set(ids)) == THREADS * RUNS_PER_THREAD + 16 * (RUNS_PER_THREAD // 4)
    store_events = 0
    for run_id in ids:
        events = store.events(run_id)
        assert [e.sequence for e in events] == list(range(len(events)))
        store_events += len(events)
    con = connect(str(path))
    try:
        runs, events = con.execute("SELECT count(*), sum(event_count) FROM runs").fetchone()  # type: ignore[misc]
        rows = con.execute("SELECT count(*) FROM run_events").fetchone()[0]  # type: ignore[index]
        gaps = con.execute(
            "SELECT count(*) FROM (SELECT run_id, count(*) AS n, max(sequence) AS top "
            "FROM run_events GROUP BY run_id) WHERE n != top + 1"
        ).fetchone()[0]  # type: ignore[index]
        statuses = dict(con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    finally:
        con.close()
    assert (runs, events, rows, gaps) == (len(ids), store_events, store_events, 0)
    want: dict[str, int] = {}
    for snapshot in (store.snapshot(i) for i in ids):
        assert snapshot is not None
        want[snapshot.status.value] = want.get(snapshot.status.value, 0) + 1
    assert statuses == want and set(want) == {"completed", "failed", "cancelled"}
    assert sink.stats.events_lost == 0
    provider.shutdown()  # the exporter sends what it still holds
    rt.shutdown()
    received = {
        kv.value.string_value
        for span in receiver.spans
        for kv in span.attributes
        if kv.key == "runtrace.run.id"
    }
    assert received >= set(ids)
