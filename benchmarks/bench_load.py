"""Load: many concurrent runs on threads and asyncio tasks into one DuckDB sink, with an OTLP
exporter on the same provider, against bare OpenTelemetry doing the same spans and events.

Run: python benchmarks/bench_load.py [--runs 1000] [--events 1000] [--threads 8]

Half the runs are recorded on ``--threads`` threads, half on asyncio tasks (one event loop in its
own thread); each run is ``agent_start``, tool calls and text deltas, and its end. Both sides send
their spans through a ``BatchSpanProcessor`` and the OTLP/HTTP exporter to a loopback receiver that
discards them. After the runtrace side the file is checked: every run, every event, sequences
0..n-1 (the benchmark fails loudly otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

try:
    from benchmarks.report import Figure, table
except ImportError:  # run as a script
    from report import Figure, table  # type: ignore[no-redef]

from runtrace import DuckDBSink, RunSpanProcessor, Runtrace, connect


class Discard(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


QUEUE = 200_000
"""Both sides' span queue: large enough that the SDK drops no span of either under this load."""


def events(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"type": "agent_start", "prompt": "load"}]
    i = 0
    while len(out) < n - 1:
        if i % 10 == 9:
            out.append({"type": "tool_start", "id": f"c{i}", "name": "bash"})
            out.append(
                {"type": "tool_end", "id": f"c{i}", "name": "bash", "output": "ok", "exit_code": 0}
            )
        else:
            out.append({"type": "text_delta", "text": f"token {i} "})
        i += 1
    out.append({"type": "agent_end", "text": "done"})
    return out


def runtrace_run(rt: Runtrace, session: str, evs: list[dict[str, Any]]) -> None:
    run = rt.begin_run(session, prompt="load", agent_name="load")
    for event in evs:
        run.record(event)
    run.end()


def bare_run(tracer: trace.Tracer, session: str, evs: list[dict[str, Any]]) -> None:
    span = tracer.start_span(
        "invoke_agent load",
        attributes={"gen_ai.operation.name": "bench", "gen_ai.conversation.id": session},
    )
    context = trace.set_span_in_context(span)
    child = None
    for event in evs:
        kind = event["type"]
        span.add_event(kind, {"runtrace.event.sequence": 0})
        if kind == "tool_start":
            child = tracer.start_span(
                "execute_tool bash", context=context, attributes={"gen_ai.tool.name": "bash"}
            )
        elif kind == "tool_end" and child is not None:
            child.end()
    span.end()


def drive(runs: int, threads: int, one: Callable[[str], None]) -> float:
    """Record ``runs`` runs, half on threads, half on asyncio tasks; seconds taken."""
    on_threads = runs // 2
    per_thread = [on_threads // threads + (t < on_threads % threads) for t in range(threads)]
    on_tasks = runs - on_threads

    def thread_body(t: int, n: int) -> None:
        for i in range(n):
            one(f"thread-{t}-{i}")

    async def tasks() -> None:
        async def task(i: int) -> None:
            await asyncio.sleep(0)
            one(f"task-{i}")

        await asyncio.gather(*(task(i) for i in range(on_tasks)))

    workers = [threading.Thread(target=thread_body, args=(t, n)) for t, n in enumerate(per_thread)]
    workers.append(threading.Thread(target=lambda: asyncio.run(tasks())))
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def measure(runs: int = 1000, per_run: int = 1000, threads: int = 8) -> list[Figure]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Discard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    evs = events(per_run)
    total = runs * len(evs)

    bare_provider = TracerProvider()
    bare_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), max_queue_size=QUEUE)
    )
    tracer = bare_provider.get_tracer("bench")
    bare_s = drive(runs, threads, lambda s: bare_run(tracer, s, evs))
    bare_provider.shutdown()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "load.duckdb")
        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), max_queue_size=QUEUE)
        )
        sink = DuckDBSink(path)
        rt = Runtrace(provider, RunSpanProcessor(sinks=[sink]))
        ours_s = drive(runs, threads, lambda s: runtrace_run(rt, s, evs))
        flushed = time.perf_counter()
        rt.shutdown()
        flush_s = time.perf_counter() - flushed
        provider.shutdown()
        con = connect(path)
        try:
            got_runs, got_events, gaps = con.execute(
                "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM run_events),"
                " (SELECT count(*) FROM (SELECT run_id FROM run_events GROUP BY run_id"
                "  HAVING count(*) != max(sequence) + 1))"
            ).fetchone()  # type: ignore[misc]
        finally:
            con.close()
        lost = sink.stats.events_lost
    server.shutdown()
    if (got_runs, got_events, gaps, lost) != (runs, total, 0, 0):
        raise SystemExit(
            f"LOST DATA: runs {got_runs}/{runs}, events {got_events}/{total}, "
            f"runs with gaps {gaps}, sink lost {lost}"
        )
    command = f"python benchmarks/bench_load.py --runs {runs} --events {per_run}"
    return [
        Figure(
            f"load: {runs} runs x {len(evs)} events, {threads} threads + asyncio, sink + OTLP",
            ours_s * 1e6 / total,
            bare_s * 1e6 / total,
            "µs/event",
            baseline_name="bare OTel + OTLP",
            command=command,
        ),
        Figure(
            "load: until the last event is in the file (after recording)",
            flush_s,
            None,
            "s",
            command=command,
        ),
    ]


def figures(quick: bool) -> list[Figure]:
    """For ``python -m benchmarks``: 1M events (100k with ``quick``)."""
    return measure(200, 500) if quick else measure(1000, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1000, help="events per run")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    figures = measure(args.runs, args.events, args.threads)
    print(table(figures))
    print("every run and event is in the file, sequences 0..n-1, nothing lost")


if __name__ == "__main__":
    main()
