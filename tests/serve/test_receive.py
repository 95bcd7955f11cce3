"""Receiver: the transport-independent core counts what it took and rejected, turns an ingest's
refusal into a rejection the sender is told about, and shows what the ingest knows."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.sdk.trace import ReadableSpan
from serve.helpers import NOW_NS, pb_span, traces_request

from runtrace.serve import IngestRejected, Limits, LogItem, QueueFull, Receiver


class _RunsIngest:
    """An in-memory ingest that counts a run per root span it took, reports a flush lag, and
    refuses log records, as an ingest without a log path does."""

    def __init__(self) -> None:
        self.spans_taken: list[ReadableSpan] = []
        self.full = False

    def spans(self, spans: Sequence[ReadableSpan]) -> None:
        self.spans_taken.extend(spans)

    def logs(self, records: Sequence[LogItem]) -> None:
        raise IngestRejected("log records are not wired yet")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        pass

    def queue_depth(self) -> int:
        return 0

    def capacity(self) -> int:
        return 0 if self.full else 100

    def runs_open(self) -> int:
        return sum(1 for s in self.spans_taken if s.parent is None)

    def flush_lag_ms(self) -> float:
        return 12.34


def test_counts_and_what_the_ingest_knows_show_in_metrics_and_the_log_line() -> None:
    ingest = _RunsIngest()
    receiver = Receiver(ingest, Limits())
    outcome = receiver.traces(traces_request(pb_span(1), pb_span(2, trace_id=b"")), "peer")
    assert (outcome.accepted, outcome.rejected) == (1, 1)
    assert (
        outcome.message == "rejected 1 spans: 1 spans with trace_id missing, zero or not 16 bytes"
    )
    metrics = receiver.metrics()
    assert metrics["spans_received"] == 1 and metrics["spans_rejected"] == 1
    assert metrics["runs_open"] == 1 and metrics["flush_lag_ms"] == 12.3
    assert metrics["queue_capacity"] == 100
    line = receiver.log_line()
    assert "spans 1 received, 1 rejected" in line and "runs open 1" in line


def test_an_ingest_refusal_rejects_the_batch_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = Receiver(_RunsIngest(), Limits())
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    records.append(LogRecord(time_unix_nano=NOW_NS, body=None))
    records.append(LogRecord(time_unix_nano=1))
    with caplog.at_level(logging.WARNING, "runtrace.serve"):
        outcome = receiver.logs(request, "127.0.0.1:5")
    assert (outcome.accepted, outcome.rejected) == (0, 2)
    assert "1 log records with time_unix_nano" in outcome.message
    assert "rejected 1 log records: log records are not wired yet" in outcome.message
    assert receiver.metrics()["log_records_rejected"] == 2
    assert "from 127.0.0.1:5" in caplog.text and "not wired yet" in caplog.text


def test_a_refused_request_is_counted_and_logged_by_transport_and_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = Receiver(_RunsIngest(), Limits())
    with caplog.at_level(logging.WARNING, "runtrace.serve"):
        receiver.refused("http", "413", "the body is over the limit", "10.1.2.3:9")
        receiver.refused("http", "413", "the body is over the limit", "10.1.2.3:9")
    assert receiver.metrics()["requests_refused"] == {"http 413": 2}
    assert "refused a http request from 10.1.2.3:9: 413 the body is over the limit" in caplog.text


def test_a_full_queue_is_refused_before_any_decoding() -> None:
    ingest = _RunsIngest()
    ingest.full = True
    receiver = Receiver(ingest, Limits())
    with pytest.raises(QueueFull, match="queue holds 0 of 0"):
        receiver.traces(traces_request(pb_span(1), pb_span(2, trace_id=b"")), "peer")
    assert receiver.metrics()["spans_rejected"] == 0 and ingest.spans_taken == []
