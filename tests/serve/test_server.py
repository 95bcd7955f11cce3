"""The receiver end to end: real OpenTelemetry exporters in another process (OTLP/HTTP protobuf,
OTLP/gRPC, OTLP/JSON posted by hand) -> Server -> BufferedIngest -> the spans and log records
equal what the sender recorded; back-pressure with the exporters' own retries; SIGTERM drains."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from serve.helpers import Collector, as_json, run_sender, wait_for
from serve.sender import RESOURCE, describe

from runtrace.serve import (
    BufferedIngest,
    Limits,
    LogItem,
    ServeConfigError,
    Server,
)


def _describe_log(item: LogItem) -> dict[str, Any]:
    return {
        "trace_id": item.trace_id,
        "span_id": item.span_id,
        "event_name": item.event_name,
        "attributes": dict(item.attributes),
        "body": item.body,
        "at_ns": item.at_ns,
        "severity_number": item.severity_number,
        "severity_text": item.severity_text,
        "resource": dict(item.resource_attributes),
    }


def _endpoint(server: Server, protocol: str) -> str:
    return f"http://127.0.0.1:{server.grpc_port}" if protocol == "grpc" else server.url


@pytest.mark.parametrize("protocol", ["http", "grpc", "json"])
def test_spans_and_logs_from_another_process_arrive_as_recorded(
    protocol: str, start_server: Callable[..., Server], collector: Collector
) -> None:
    server = start_server()
    sent = run_sender("scenario", "--protocol", protocol, "--endpoint", _endpoint(server, protocol))
    assert server.ingest.force_flush(10_000)

    received = sorted((as_json(describe(s)) for s in collector.spans), key=lambda d: d["span_id"])
    expected = sorted(sent["spans"], key=lambda d: d["span_id"])
    assert len(expected) == 4
    assert received == expected
    run = next(d for d in received if d["name"] == "invoke_agent demo")
    assert run["parent_is_remote"] is True and run["parent_id"] == 0x5678
    assert run["attributes"]["names"] == ["a", "b"] and run["attributes"]["flags"] == [True, False]
    assert run["resource"]["service.name"] == RESOURCE["service.name"]
    tool = next(d for d in received if d["name"] == "execute_tool search")
    assert tool["status"] == ["ERROR", "no results"]
    assert tool["events"][0][0] == "exception" and tool["links"][0][2] == {"why": "spawned"}
    assert all(s.instrumentation_scope.name == "sender" for s in collector.spans)

    logs = sorted((as_json(_describe_log(item)) for item in collector.logs), key=str)
    assert logs == sorted(sent["logs"], key=str) and len(logs) == 2
    details = next(item for item in collector.logs if item.event_name.startswith("gen_ai."))
    assert details.span_id == tool["span_id"] and details.body["parts"][0]["content"] == "hi"
    note = next(item for item in collector.logs if item.event_name == "note")
    assert note.span_id == run["span_id"]

    metrics = server.receiver.metrics()
    assert metrics["spans_received"] == 4 and metrics["log_records_received"] == 2
    assert metrics["spans_rejected"] == 0 and metrics["requests_refused"] == {}


@pytest.mark.parametrize("protocol", ["http", "grpc", "json"])
def test_a_real_pydantic_ai_run_in_another_process_arrives_as_recorded(
    protocol: str, start_server: Callable[..., Server], collector: Collector
) -> None:
    server = start_server()
    endpoint = _endpoint(server, protocol)
    sent = run_sender("pydantic-ai", "--protocol", protocol, "--endpoint", endpoint)
    assert server.ingest.force_flush(10_000)
    received = sorted((as_json(describe(s)) for s in collector.spans), key=lambda d: d["span_id"])
    assert received == sorted(sent["spans"], key=lambda d: d["span_id"])
    names = sorted(d["name"] for d in received)
    assert "invoke_agent helper" in names and "execute_tool lookup" in names
    run = next(d for d in received if d["name"] == "invoke_agent helper")
    assert run["attributes"]["gen_ai.agent.name"] == "helper"
    assert isinstance(run["attributes"]["pydantic_ai.all_messages"], str)  # a JSON string


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_full_queue_pushes_back_and_the_exporters_retries_deliver_everything_once(
    protocol: str, start_server: Callable[..., Server], collector: Collector
) -> None:
    server = start_server(capacity=10, limits=Limits(retry_after_s=1))
    collector.gate.clear()  # the ingest stalls on the first span: the queue fills
    sender = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("sender.py")),
            "burst",
            "--protocol",
            protocol,
            "--endpoint",
            _endpoint(server, protocol),
            "--batches",
            "6",
            "--batch-size",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        refused = "http 429" if protocol == "http" else "grpc RESOURCE_EXHAUSTED"
        wait_for(
            lambda: server.receiver.metrics()["requests_refused"].get(refused, 0) >= 1,
            f"a {refused} while the queue is full",
        )
        assert server.ingest.queue_depth() == 10
        collector.gate.set()
        out, err = sender.communicate(timeout=120)
    finally:
        collector.gate.set()
        if sender.poll() is None:
            sender.kill()
    assert sender.returncode == 0, err[-3000:]
    sent = json.loads(out)["sent"]
    assert server.ingest.force_flush(10_000)
    assert len(sent) == 60
    assert sorted(collector.span_ids()) == sorted(sent)  # nothing lost, nothing twice
    assert server.receiver.metrics()["spans_received"] == 60


def test_a_token_is_required_from_exporters_once_set(
    start_server: Callable[..., Server], collector: Collector
) -> None:
    server = start_server(token="s3cret")
    for protocol in ("http", "grpc", "json"):
        run_sender(
            "scenario",
            "--protocol",
            protocol,
            "--endpoint",
            _endpoint(server, protocol),
            "--token",
            "s3cret",
        )
    assert server.ingest.force_flush(10_000)
    assert len(collector.spans) == 12
    for protocol in ("http", "grpc"):
        failed = run_sender(
            "scenario",
            "--protocol",
            protocol,
            "--endpoint",
            _endpoint(server, protocol),
            "--token",
            "wrong",
            check=False,
        )
        assert "export failed" in failed["stderr"]
    assert server.ingest.force_flush(10_000)
    assert len(collector.spans) == 12
    refused = server.receiver.metrics()["requests_refused"]
    assert refused == {"http 401": 1, "grpc UNAUTHENTICATED": 1}


def test_a_public_address_without_a_token_is_refused_before_binding() -> None:
    ingest = BufferedIngest(Collector())
    with pytest.raises(ServeConfigError, match=r"0\.0\.0\.0 without a token"):
        Server(ingest, host="0.0.0.0", port=0)
    ingest.shutdown()


def test_a_port_in_use_is_a_clear_error(start_server: Callable[..., Server]) -> None:
    first = start_server()
    ingest = BufferedIngest(Collector())
    with pytest.raises(OSError, match="cannot listen for OTLP/HTTP"):
        Server(ingest, port=first.port or 0, grpc_port=None).start()
    with pytest.raises(OSError, match="cannot listen for gRPC"):
        Server(ingest, port=0, grpc_port=first.grpc_port).start()
    ingest.shutdown()


def test_stop_drains_the_queue_flushes_and_shuts_the_ingest_down(
    start_server: Callable[..., Server], collector: Collector
) -> None:
    server = start_server()
    run_sender("scenario", "--protocol", "http", "--endpoint", server.url)
    assert server.stop(10) is True
    assert len(collector.spans) == 4 and collector.flushed >= 1 and collector.shut_down
    assert server.stop(10) is True  # once only


_SERVE_MAIN = textwrap.dedent(
    """
    import json, sys, time
    from opentelemetry.sdk.trace import SpanProcessor
    from runtrace.serve import BufferedIngest, ServeSettings, serve_forever

    class SlowFile(SpanProcessor):
        def __init__(self, path):
            self.path, self.ids = path, []
        def on_end(self, span):
            time.sleep(0.002)
            self.ids.append(span.context.span_id)
        def shutdown(self):
            with open(self.path, "w") as f:
                json.dump(self.ids, f)

    def started(server):
        print(server.port, flush=True)

    ok = serve_forever(
        BufferedIngest(SlowFile(sys.argv[1])),
        ServeSettings(port=0, grpc_port=None, log_interval_s=0),
        on_started=started,
    )
    sys.exit(0 if ok else 3)
    """
)


def test_sigterm_drains_the_queue_and_flushes_before_exit(tmp_path: Path) -> None:
    out = tmp_path / "ids.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE_MAIN, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        sent = run_sender(
            "burst",
            "--protocol",
            "http",
            "--endpoint",
            f"http://127.0.0.1:{port}",
            "--batches",
            "2",
            "--batch-size",
            "200",
        )["sent"]
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, err[-3000:]
    assert sorted(json.loads(out.read_text())) == sorted(sent) and len(sent) == 400


def test_the_embedding_example_in_the_docs_runs_and_prints_what_it_says(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "serve.md"
    [example] = re.findall(r"```python\n(.*?)```", docs.read_text(encoding="utf-8"), re.S)[:1]
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "invoke_agent demo"


def test_the_counters_go_to_the_log_periodically(
    start_server: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "runtrace.serve"):
        start_server(log_interval_s=0.05)
        wait_for(lambda: "spans 0 received, 0 rejected" in caplog.text, "a counters log line")
    assert "queue 0/65536" in caplog.text
