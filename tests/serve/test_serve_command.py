"""``runtrace serve``, the command: it listens where it says, stops cleanly on SIGTERM, and a
SIGKILL mid-ingest followed by a restart on the same file loses only what it had accepted and
not written yet: what the exporters retried is there, nothing twice, live runs not failed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from serve.agent import describe, runtrace_runs
from serve.helpers import StepAgent, wait_for

from runtrace import RunSpanProcessor, Runtrace, connect
from runtrace.cli import main
from runtrace.duckdb import load_records
from runtrace.otel import AnnounceSink


def read_runs(db: Path) -> dict[str, dict[str, Any]]:
    """Every run in the file, as agent.describe has it (the server is another process)."""
    return {r.snapshot.id: describe(r) for r in load_records(db)}


SERVE = (sys.executable, "-m", "runtrace", "serve")
AGENT = str(Path(__file__).with_name("agent.py"))


class Serve:
    """``python -m runtrace serve`` in a subprocess; ``url`` once it said where it listens."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*SERVE, "--db", str(db), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"OTLP/HTTP on (http://[^\s,]+)", line)
        if found is None:
            _, err = self.process.communicate(timeout=60)
            raise AssertionError(f"runtrace serve said {line!r}: {err[-3000:]}")
        self.url = found.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM: it drains, writes and exits; its exit status and output."""
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=60)
        return self.process.returncode, out, err

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=30)


@pytest.fixture
def started() -> Iterator[list[Serve]]:
    servers: list[Serve] = []
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.kill()


def test_serve_listens_where_it_says_and_stops_on_sigterm_with_everything_written(
    tmp_path: Path, started: list[Serve]
) -> None:
    db = tmp_path / "runs.duckdb"
    server = Serve(db, "--port", "0", "--grpc-port", "off", env={"RUNTRACE_TOKEN": ""})
    started.append(server)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{server.url}/v1/traces")))
    sent = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(sent))
    announce = AnnounceSink(provider.get_tracer("announce"))
    rt = Runtrace(provider, RunSpanProcessor(sinks=[announce]))
    runtrace_runs(rt)
    provider.shutdown()
    code, out, err = server.stop()  # right away: it drains before it exits
    assert code == 0, err
    assert f"everything received is in {db}" in out
    spans = len(sent.get_finished_spans())
    assert f"spans {spans} received" in err  # the counters, logged once more at the stop
    assert read_runs(db) == {r.snapshot.id: describe(r) for r in rt.store.records()}


def test_serve_refuses_a_public_address_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNTRACE_TOKEN", raising=False)
    db = tmp_path / "x.duckdb"
    assert main(["serve", "--db", str(db), "--host", "0.0.0.0"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("runtrace serve: error: refusing to listen on 0.0.0.0 without a token")
    assert not db.exists()  # refused before anything was opened


def test_a_sigkill_mid_ingest_then_a_restart_loses_nothing_retried_and_stores_nothing_twice(
    tmp_path: Path, started: list[Serve]
) -> None:
    db = tmp_path / "runs.duckdb"
    first = Serve(db, "--port", "0", "--grpc-port", "off")
    started.append(first)
    live = StepAgent("live", "--protocol", "http", "--endpoint", first.url, "--runtrace-only")
    args = ("--protocol", "http", "--endpoint", first.url, "--batch-size", "16")
    burst = subprocess.Popen(
        [sys.executable, AGENT, "burst", *args, "--runs", "400", "--pause", "0.01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        step = live.step()  # a runtrace run, open in its process, in the file
        (open_run,) = step["records"]

        def both_arriving() -> bool:
            stored = read_runs(db)
            burst_runs = sum(r["agent_name"] == "burst" for r in stored.values())
            return stored.get(open_run["id"]) == open_run and burst_runs >= 20

        wait_for(both_arriving, "the open run and the burst's first runs in the file")
        assert burst.poll() is None  # still sending
        first.kill()  # SIGKILL, mid-ingest
        time.sleep(1.0)  # the exporters meet a closed port and back off
        second = Serve(db, "--port", str(first.port), "--grpc-port", "off")
        started.append(second)
        restarted_at = time.time()
        stored = read_runs(db)
        assert stored[open_run["id"]]["status"] == "executing"  # not failed by the restart
        live.go()
        (ended,) = live.step()["records"]
        live.go()
        live.result()
        out, err = burst.communicate(timeout=180)
        assert burst.returncode == 0, err[-3000:]
    finally:
        live.close()
        if burst.poll() is None:
            burst.kill()
            burst.communicate(timeout=30)
    code, _, server_err = second.stop()
    assert code == 0, server_err

    report = json.loads(out.splitlines()[-1])
    assert "retrying" in err  # the exporter did meet the dead server, and retried
    sent = {r["id"]: r for r in report["runs"]}
    after = {run for t, result, runs in report["exports"] if t > restarted_at for run in runs}
    assert after and all(result == "SUCCESS" for _, result, _ in report["exports"])
    stored = read_runs(db)
    assert stored[ended["id"]] == ended  # the live run: continued, ended, every event once
    for run_id in after:  # what reached the restarted server, retried or new, is all there
        assert stored[run_id] == sent[run_id]
    for run_id, run in stored.items():
        if run_id in sent and run != sent[run_id]:  # accepted by the killed server, unwritten
            events = sent[run_id]["events"]
            assert not run["ended"] and run["events"] == events[: len(run["events"])]
    assert set(stored) <= {*sent, ended["id"]}
    con = connect(db)  # the file opens, and nothing in it is there twice
    try:
        rows = con.execute("SELECT run_id, sequence FROM run_events").fetchall()
    finally:
        con.close()
    assert len(rows) == len(set(rows))
