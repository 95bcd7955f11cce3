"""DuckDBIngest: what agents in other processes export arrives in the file as the runs they
recorded; received runs have no owner, so restarts continue them; memory stays bounded; a full
queue makes exporters retry, and nothing is lost or stored twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from serve.agent import describe, runtrace_runs
from serve.helpers import run_agent, run_sender

from runtrace import RunSpanProcessor, RunStore, Runtrace, connect
from runtrace.duckdb import load_records, recover_interrupted, run_query
from runtrace.otel import AnnounceSink
from runtrace.serve import DuckDBIngest, LogItem, Server

Start = Callable[..., Server]


def _ingest(server: Server) -> DuckDBIngest:
    assert isinstance(server.ingest, DuckDBIngest)
    return server.ingest


def _endpoint(server: Server, protocol: str) -> str:
    return f"http://127.0.0.1:{server.grpc_port}" if protocol == "grpc" else server.url


def _stored(server: Server) -> dict[str, dict[str, Any]]:
    """Every run in the server's file, as the agents describe theirs, once flushed."""
    ingest = _ingest(server)
    assert ingest.force_flush(30_000)
    return {r.snapshot.id: describe(r) for r in load_records(ingest.path)}


def _event_rows(path: str) -> list[tuple[str, int]]:
    con = connect(path)
    try:
        rows = con.execute("SELECT run_id, sequence FROM run_events ORDER BY ALL").fetchall()
    finally:
        con.close()
    return [(str(r), int(s)) for r, s in rows]


def test_runs_recorded_in_another_process_arrive_as_the_same_records(
    duckdb_server: Start,
) -> None:
    server = duckdb_server()
    protocols = ("http", "json", "grpc")
    endpoints = ",".join(_endpoint(server, p) for p in protocols)
    sent = run_agent("runs", "--protocol", ",".join(protocols), "--endpoint", endpoints)
    runs = sent["runs"]
    assert len(runs) == 3 * 5  # the same five runs over OTLP/HTTP protobuf, JSON and gRPC
    statuses = sorted(r["status"] for r in runs[:5])
    assert statuses == ["cancelled", "completed", "completed", "completed", "failed"]
    assert max(len(r["events"]) for r in runs) == 300  # more than a span's 128
    assert any(r["agent_name"] == "helper" and r["input_tokens"] for r in runs)  # pydantic-ai
    metrics = server.receiver.metrics()
    assert metrics["http_requests"] > 0 and metrics["grpc_requests"] > 0
    stored = _stored(server)
    assert stored == {r["id"]: r for r in runs}  # ids, statuses, events, tokens: all of it
    assert _ingest(server).runs_open() == 0


def test_without_announcements_runs_arrive_whole_but_for_what_their_span_dropped(
    duckdb_server: Start,
) -> None:
    server = duckdb_server()
    provider = TracerProvider()  # here, as the exporter's process is not what this is about
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{server.url}/v1/traces")))
    rt = Runtrace(provider, RunSpanProcessor())
    runtrace_runs(rt)
    provider.shutdown()
    sent = {"runs": [describe(r) for r in rt.store.records()]}
    stored = _stored(server)
    for run in sent["runs"]:
        got = stored[run["id"]]
        if len(run["events"]) <= 128:
            assert got == run
            continue
        # The span kept its newest 128 events (the SDK's limit): those, then how many it lost.
        assert got["status"] == run["status"] == "completed"
        kept = [t for _, t in run["events"][-128:]]
        assert [t for _, t in got["events"]] == [*kept, "span_events_dropped"]
    (long_id,) = [r["id"] for r in sent["runs"] if len(r["events"]) > 128]
    (dropped,) = [r for r in load_records(_ingest(server).path) if r.snapshot.id == long_id]
    assert dropped.events[-1].event.model_dump()["count"] == 300 - 128


def test_received_runs_have_no_owner_and_a_restart_continues_them(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    server = Server(DuckDBIngest(path, flush_interval=0.1), port=0, grpc_port=None).start()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{server.url}/v1/traces")))
    announce = AnnounceSink(provider.get_tracer("announce"), every_events=2)
    rt = Runtrace(provider, RunSpanProcessor(sinks=[announce]))
    handle = rt.begin_run("sess-1", "go on", agent_name="worker")
    for turn in range(4):
        handle.record({"type": "turn_start", "turn": turn})
    assert _ingest(server).force_flush(30_000)
    assert server.receiver.metrics()["runs_open"] == 1
    con = connect(path)
    row = con.execute("SELECT status, event_count, owner_host, owner_pid FROM runs").fetchall()
    con.close()
    assert row == [("executing", 4, None, None)]  # live in the file, owned by no process here
    server.stop()  # the server goes; the agent goes on

    assert recover_interrupted(path) == []  # what another writer's recovery does: nothing
    stuck = run_query(str(path), "stuck_runs", {"older_than_minutes": 0})
    assert stuck.column("run_id").to_pylist() == [handle.id]

    restarted = Server(DuckDBIngest(path, flush_interval=0.1), port=server.port, grpc_port=None)
    restarted.start()
    try:
        assert restarted.receiver.metrics()["runs_open"] == 0  # nothing of it arrived here yet
        for turn in range(4, 7):
            handle.record({"type": "turn_start", "turn": turn})
        handle.record({"type": "agent_end", "text": "done"})
        handle.end()
        provider.force_flush()
        assert _ingest(restarted).force_flush(30_000)
        (stored,) = load_records(path)
    finally:
        restarted.stop()
        provider.shutdown()
    assert describe(stored) == describe(rt.store.records()[0])  # written whole, in order
    assert stored.snapshot.status.value == "completed"
    assert _event_rows(str(path)) == [(handle.id, s) for s in range(8)]  # each once


def test_finished_runs_leave_memory_once_retention_is_reached(duckdb_server: Start) -> None:
    server = duckdb_server(retention=2)
    sent = run_agent("burst", "--protocol", "http", "--endpoint", server.url, "--runs", "6")
    stored = _stored(server)
    assert len(stored) == 6 and all(r["status"] == "completed" for r in stored.values())
    ingest = _ingest(server)
    assert len(ingest.store) == 2 and ingest.store.evicted_runs == 4
    assert stored == {r["id"]: r for r in sent["runs"]}


def test_log_records_tied_to_a_span_become_events_of_its_run(duckdb_server: Start) -> None:
    server = duckdb_server()
    run_sender("scenario", "--protocol", "http", "--endpoint", server.url)
    (run,) = _stored(server).values()
    types = [t for _, t in run["events"]]
    # the GenAI operation-details record and the plain log line named by event.name
    assert "gen_ai.client.inference.operation.details" in types and "note" in types
    assert _ingest(server).logs_ignored == 0


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_burst_on_a_small_queue_is_refused_retried_and_stored_once(
    duckdb_server: Start, protocol: str
) -> None:
    server = duckdb_server(capacity=1)  # every request is refused unless the queue is empty
    endpoint = _endpoint(server, protocol)
    key = "http 429" if protocol == "http" else "grpc RESOURCE_EXHAUSTED"
    # The worker holds its first span until a request has been refused (10 s at most), so the
    # queue is full while the other agents send, however fast the sink is.
    received = _ingest(server).received
    on_end = received.on_end
    held = threading.Event()

    def hold_first(span: Any) -> None:
        if not held.is_set():
            held.set()
            for _ in range(1_000):
                if server.receiver.metrics()["requests_refused"].get(key, 0):
                    break
                time.sleep(0.01)
        on_end(span)

    received.on_end = hold_first  # type: ignore[method-assign]
    args = ("burst", "--protocol", protocol, "--endpoint", endpoint, "--batch-size", "8")
    reports = _in_parallel(3, lambda: run_agent(*args, "--runs", "40"))
    refused = server.receiver.metrics()["requests_refused"]
    assert refused.get(key, 0) > 0, refused  # the queue was full at times...
    sent = {r["id"]: r for report in reports for r in report["runs"]}
    assert len(sent) == 120
    assert _stored(server) == sent  # ...and the retries delivered every run, once
    rows = _event_rows(_ingest(server).path)
    assert len(rows) == len(set(rows)) == 4 * 120


def _in_parallel(n: int, fn: Callable[[], Any]) -> list[Any]:
    """``fn()`` in ``n`` threads at once; their results."""
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(fn) for _ in range(n)]
        return [f.result() for f in futures]


def test_retention_must_be_a_whole_number(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retention must be an integer >= 0, got -1"):
        DuckDBIngest(tmp_path / "x.duckdb", retention=-1)


def test_a_framework_run_a_previous_server_left_open_is_continued_and_written_whole(
    tmp_path: Path,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store = RunStore()
    Runtrace(provider, RunSpanProcessor(store))  # the run as recorded in its own process
    _pydantic_ai_run(provider)
    spans = exporter.get_finished_spans()
    assert spans[0].name == "chat test" and spans[-1].name == "invoke_agent helper"
    path = tmp_path / "runs.duckdb"

    first = DuckDBIngest(path, flush_interval=0.1)
    first.spans(spans[:1])  # its first model call: the run shows, open
    assert first.force_flush(30_000)
    first.shutdown()
    con = connect(path)
    left = con.execute("SELECT status, event_count, owner_pid FROM runs").fetchall()
    con.close()
    assert left == [("executing", 3, None)]  # agent_start, turn_start, turn_end

    second = DuckDBIngest(path, flush_interval=0.1)
    for span in spans[1:]:
        second.spans([span])  # the rest, one request each
    assert second.force_flush(30_000)
    second.shutdown()
    (stored,) = load_records(path)
    (recorded,) = store.records()
    assert describe(stored) == {**describe(recorded), "events": describe(stored)["events"]}
    assert sorted(t for _, t in describe(stored)["events"]) == sorted(
        t for _, t in describe(recorded)["events"]
    )  # the file's first events, then this server's, the run started once
    run_id = recorded.snapshot.id
    assert _event_rows(str(path)) == [(run_id, s) for s in range(len(recorded.events))]


def test_log_records_with_no_event_name_or_span_are_counted_not_recorded(tmp_path: Path) -> None:
    ingest = DuckDBIngest(tmp_path / "runs.duckdb")
    ingest.logs(
        [
            LogItem(1, 2, "", {}, "an application log line", 1, {}),
            LogItem(0, 0, "note", {}, None, 1, {}),
        ]
    )
    assert ingest.force_flush(30_000)
    assert ingest.logs_ignored == 2 and ingest.processor.foreign.stats.logs_seen == 0
    ingest.shutdown()


def _pydantic_ai_run(provider: TracerProvider) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.test import TestModel

    helper: Any = Agent(TestModel(), name="helper")
    helper.instrument = InstrumentationSettings(tracer_provider=provider)

    @helper.tool_plain
    def lookup(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    helper.run_sync("what is the weather?")
