"""The agent's cost per event while the OTLP backend is down, hanging or answering 503, against
the same workload with a healthy backend, and the DuckDB file complete in every case.

Run: python benchmarks/bench_faults.py [--runs 200] [--rounds 3]

The workload is bench_agent's (runs of 62 events with 5 tool calls) through ``Runtrace`` with a
``DuckDBSink`` and a ``BatchSpanProcessor`` + OTLP/HTTP exporter on the same provider. The backend
is a loopback server that answers 200 (healthy), 503 (failing), or holds every request for 5 s
(hanging); "down" is a port nobody listens on. Target: every fault within 2x of healthy.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

sys.path.insert(0, os.path.dirname(__file__))
from bench_agent import workload
from report import Figure, table

from runtrace import DuckDBSink, RunSpanProcessor, Runtrace, connect


def backend(mode: str) -> tuple[str, ThreadingHTTPServer | None]:
    if mode == "down":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again: nobody listens there
        return f"http://127.0.0.1:{port}/v1/traces", None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if mode == "hanging":
                time.sleep(5)
            self.send_response(503 if mode == "failing" else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1/traces", server


def one_round(mode: str, runs: int, events: list[dict[str, Any]]) -> float:
    """µs per event for ``runs`` runs with the backend in ``mode``; checks the file."""
    url, server = backend(mode)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "faults.duckdb")
        provider = TracerProvider()
        exporter = OTLPSpanExporter(endpoint=url, timeout=1)
        provider.add_span_processor(BatchSpanProcessor(exporter, export_timeout_millis=1000))
        sink = DuckDBSink(path)
        rt = Runtrace(provider, RunSpanProcessor(sinks=[sink]))
        start = time.perf_counter()
        for i in range(runs):
            with rt.start_run(f"s-{i}", agent_name="bench") as run:
                for event in events:
                    run.record(event)
        took = time.perf_counter() - start
        rt.shutdown()
        con = connect(path)
        try:
            count = con.execute("SELECT count(*) FROM run_events").fetchone()[0]  # type: ignore[index]
        finally:
            con.close()
        if count != runs * len(events):
            raise SystemExit(f"{mode}: the file holds {count} of {runs * len(events)} events")
        threading.Thread(target=provider.shutdown, daemon=True).start()  # a hanging one waits
    if server is not None:
        server.shutdown()
    return took * 1e6 / (runs * len(events))


_EXPORT_LOGGERS = ("opentelemetry.exporter.otlp", "opentelemetry.sdk.trace.export")
"""The exporter logs every failed batch: expected here, and they would bury the table."""


def measure(runs: int = 200, rounds: int = 3) -> list[Figure]:
    events = workload(False)
    modes = ("healthy", "down", "failing", "hanging")
    results: dict[str, list[float]] = {m: [] for m in modes}
    loggers = [logging.getLogger(name) for name in _EXPORT_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        for _ in range(rounds):
            for mode in modes:
                results[mode].append(one_round(mode, runs, events))
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    healthy = statistics.median(results["healthy"])
    command = f"python benchmarks/bench_faults.py --runs {runs} --rounds {rounds}"
    return [
        Figure(
            f"OTLP backend {mode}: agent cost per event (DuckDB complete)",
            statistics.median(results[mode]),
            healthy,
            "µs/event",
            baseline_name="healthy backend",
            target=2.0,
            command=command,
        )
        for mode in modes[1:]
    ]


def figures(quick: bool) -> list[Figure]:
    """For ``python -m benchmarks``."""
    return measure(100, 2) if quick else measure(200, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(table(measure(args.runs, args.rounds)))


if __name__ == "__main__":
    main()
