"""OTLP receiver throughput: spans per second that several exporter processes get accepted.

Each sender process records its runs up front with the real OpenTelemetry SDK (runs of 10 spans,
5 events on each span) and encodes them in batches of 512 (the ``BatchSpanProcessor`` default)
with the SDK's OTLP encoder; on a common start, it sends them as the exporters do (a
``requests`` session posting protobuf, or the generated gRPC stub). Encoding beforehand keeps the
senders' CPU out of the measured window: on 2 cores, encoding senders would starve the server.
Side by side, on the same senders:

- bare: a stdlib HTTP server that reads each body and answers 200 without decoding: the rate the
  exporters themselves can send at on this machine, the baseline.
- serve: ``runtrace serve`` (uvicorn + Starlette) decoding every span into an SDK ``ReadableSpan``
  and handing it to the ingest: ``--ingest discard`` (counts and drops), ``buffered`` (a
  ``BufferedIngest`` over a span processor that does nothing: the queue and worker thread too),
  or ``duckdb`` (``runtrace.serve.DuckDBIngest(path)``, what ``runtrace serve`` runs: timed until
  every run is queryable in SQL, a ``count(*)`` over the file through ``runtrace.connect``).

Run: ``python benchmarks/bench_serve.py [--senders 3] [--runs 300] [--protocol http|grpc]
[--ingest discard|buffered|duckdb] [--repeat 3]``. Target (issue 13): at least 10,000 spans/s
until queryable on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, os.path.dirname(__file__))

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from report import Figure

from runtrace import connect
from runtrace.serve import BufferedIngest, DuckDBIngest, LogItem, Server

BATCH = 512


def sender(args: argparse.Namespace) -> None:
    """One exporter process: record, wait for "go" on stdin, export, report."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"bench-{os.getpid()}"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench", "1.0")
    for run in range(args.runs):
        with tracer.start_as_current_span(
            "invoke_agent bench",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bench"},
        ) as root:
            for e in range(5):
                root.add_event("agent_event", {"runtrace.seq": e, "text": f"run {run} step {e}"})
            for i in range(args.spans_per_run - 1):
                name = f"execute_tool tool{i}"
                with tracer.start_as_current_span(
                    name,
                    attributes={"gen_ai.tool.name": f"tool{i}", "gen_ai.tool.call.id": f"c{i}"},
                ) as span:
                    for e in range(5):
                        span.add_event("tool_progress", {"n": e, "message": "working on it " * 3})
    spans = memory.get_finished_spans()
    # Encoded up front with the SDK's own OTLP encoder, so that during the measured window the
    # senders only send (on 2 cores, senders that encode would starve the server being measured).
    requests = [encode_spans(spans[i : i + BATCH]) for i in range(0, len(spans), BATCH)]
    if args.protocol == "grpc":
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        channel = grpc.insecure_channel(args.endpoint)
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]

        def send(request: Any) -> None:
            stub.Export(request, timeout=60)

    else:
        import requests as http

        session = http.Session()
        url = f"{args.endpoint}/v1/traces"
        headers = {"Content-Type": "application/x-protobuf"}
        bodies = {id(r): r.SerializeToString() for r in requests}

        def send(request: Any) -> None:
            response = session.post(url, data=bodies[id(request)], headers=headers, timeout=60)
            if response.status_code != 200:
                raise SystemExit(f"export answered {response.status_code}")

    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    for request in requests:
        send(request)
    print(json.dumps({"spans": len(spans), "seconds": time.perf_counter() - start}), flush=True)


class _Discard:
    """An ingest that counts spans and drops them."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def spans(self, spans: Sequence[ReadableSpan]) -> None:
        with self.lock:
            self.count += len(spans)

    def logs(self, records: Sequence[LogItem]) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        pass

    def queue_depth(self) -> int:
        return 0

    def capacity(self) -> int:
        return 1 << 30


class _Nothing(SpanProcessor):
    pass


def _bare_server() -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _drive(args: argparse.Namespace, endpoint: str, protocol: str) -> tuple[int, float]:
    """Start the senders, let them record, release them together; total spans and the seconds
    from the release until the last one finished."""
    command = [sys.executable, __file__, "--sender", "--endpoint", endpoint]
    command += ["--protocol", protocol, "--runs", str(args.runs)]
    command += ["--spans-per-run", str(args.spans_per_run)]
    procs = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(args.senders)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    total = 0
    for proc in procs:  # the time of the last report, not of the senders' interpreter exits
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"a sender failed ({proc.wait()})")
        total += json.loads(line)["spans"]
    seconds = time.perf_counter() - start
    for proc in procs:
        proc.communicate(timeout=600)
    return total, seconds


def _serve_once(args: argparse.Namespace) -> tuple[int, float]:
    ingest: Any
    tmp = None
    if args.ingest == "discard":
        ingest = _Discard()
    elif args.ingest == "buffered":
        ingest = BufferedIngest(_Nothing())
    else:
        tmp = tempfile.TemporaryDirectory()
        ingest = DuckDBIngest(Path(tmp.name) / "runs.duckdb")
    grpc_port = 0 if args.protocol == "grpc" else None
    server = Server(ingest, port=0, grpc_port=grpc_port, log_interval_s=0).start()
    endpoint = f"127.0.0.1:{server.grpc_port}" if args.protocol == "grpc" else server.url
    try:
        total, seconds = _drive(args, endpoint, args.protocol)  # all accepted
        flush_start = time.perf_counter()
        if not ingest.force_flush(600_000):  # and (duckdb) written
            raise SystemExit("the ingest did not flush")
        if isinstance(ingest, DuckDBIngest):  # queryable: every run, counted in SQL
            con = connect(ingest.path)
            try:
                (row,) = con.execute("SELECT count(*) FROM runs").fetchall()
            finally:
                con.close()
            if row[0] != args.senders * args.runs:
                raise SystemExit(f"{args.senders * args.runs} runs sent, {row[0]} in the file")
        seconds += time.perf_counter() - flush_start
        received = server.receiver.metrics()["spans_received"]
        if received != total:
            raise SystemExit(f"sent {total} spans, the server took {received}")
    finally:
        server.stop(60)
        if tmp is not None:
            tmp.cleanup()
    return total, seconds


def measure(args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Spans/s per round: the bare receiver and ``runtrace serve``, interleaved, so drift on a
    shared machine hits both."""
    bare_rates, serve_rates = [], []
    for _ in range(args.repeat):
        bare, url = _bare_server()
        try:
            total, seconds = _drive(args, url, "http")
        finally:
            bare.shutdown()
            bare.server_close()
        bare_rates.append(total / seconds)
        total, seconds = _serve_once(args)
        serve_rates.append(total / seconds)
    return bare_rates, serve_rates


TARGET_SPANS_PER_S = 10_000
"""Issue 13: spans per second until queryable in SQL, on 2 cores."""


def figures(quick: bool) -> list[Figure]:
    """For ``python -m benchmarks``: OTLP/HTTP and OTLP/gRPC into DuckDB until queryable,
    against the bare receiver (what the exporters can send at), medians of interleaved rounds."""
    senders, runs, repeat = (2, 100, 2) if quick else (3, 300, 3)
    result = []
    for protocol in ("http", "grpc"):
        args = argparse.Namespace(
            senders=senders,
            runs=runs,
            spans_per_run=10,
            protocol=protocol,
            ingest="duckdb",
            repeat=repeat,
        )
        bare_rates, serve_rates = measure(args)
        result.append(
            Figure(
                f"serve: {senders} exporter processes over OTLP/{protocol.upper()} until "
                "queryable in DuckDB",
                statistics.median(serve_rates),
                statistics.median(bare_rates),
                "spans/s",
                "bare OTLP/HTTP receiver",
                lower=False,
                bound=TARGET_SPANS_PER_S,
            )
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--runs", type=int, default=300, help="runs per sender")
    parser.add_argument("--spans-per-run", type=int, default=10)
    parser.add_argument("--protocol", choices=["http", "grpc"], default="http")
    parser.add_argument("--ingest", choices=["discard", "buffered", "duckdb"], default="discard")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.sender:
        sender(args)
        return

    n = args.senders * args.runs * args.spans_per_run
    print(
        f"{args.senders} senders x {args.runs} runs x {args.spans_per_run} spans (5 events each)"
        f" = {n} spans per round, {args.protocol}, ingest {args.ingest}, {os.cpu_count()} cores"
    )
    bare_rates, serve_rates = measure(args)
    bare_rate, serve_rate = statistics.median(bare_rates), statistics.median(serve_rates)
    print(f"bare receiver (exporters alone, OTLP/HTTP): {bare_rate:10,.0f} spans/s (median)")
    print(
        f"runtrace serve ({args.protocol}, {args.ingest}):".ljust(44)
        + f"{serve_rate:10,.0f} spans/s"
    )
    print(f"ratio serve / bare: {serve_rate / bare_rate:.2f}x")
    print("rounds, spans/s: bare " + ", ".join(f"{r:,.0f}" for r in bare_rates))
    print("                 serve " + ", ".join(f"{r:,.0f}" for r in serve_rates))


if __name__ == "__main__":
    main()
