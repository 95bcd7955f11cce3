"""BufferedIngest: arrival order, whole-batch back-pressure, flushing, shutdown that says what it
lost, and a failing processor that costs only its span."""

from __future__ import annotations

import logging
import threading

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanContext
from serve.helpers import Collector, wait_for

from runtrace.serve import (
    BufferedIngest,
    IngestClosed,
    IngestRejected,
    LogItem,
    QueueFull,
    ReportsFlushLag,
)


def _spans(*ids: int) -> list[ReadableSpan]:
    return [ReadableSpan(f"s{i}", SpanContext(1, i, is_remote=False)) for i in ids]


def _log(n: int) -> LogItem:
    return LogItem(1, n, "e", {}, None, 1, {})


def test_spans_reach_the_processor_in_arrival_order() -> None:
    collector = Collector()
    ingest = BufferedIngest(collector, on_logs=collector.on_logs)
    ingest.spans(_spans(1, 2))
    ingest.logs([_log(7)])
    ingest.spans(_spans(3))
    assert ingest.force_flush(10_000)
    assert collector.span_ids() == [1, 2, 3] and [r.span_id for r in collector.logs] == [7]
    assert collector.flushed == 1 and ingest.queue_depth() == 0
    ingest.shutdown()
    assert collector.shut_down


def test_a_batch_that_does_not_fit_is_refused_whole_and_a_big_one_waits_for_an_empty_queue() -> (
    None
):
    collector = Collector()
    collector.gate.clear()
    ingest = BufferedIngest(collector, capacity=3)
    ingest.spans(_spans(1, 2))
    wait_for(collector.entered.is_set, "the worker to take the first batch")
    with pytest.raises(QueueFull, match="queue holds 2 of 3; 2 more do not fit"):
        ingest.spans(_spans(3, 4))
    ingest.spans(_spans(5))  # fits exactly
    assert ingest.queue_depth() == 3 and ingest.capacity() == 3
    assert isinstance(ingest, ReportsFlushLag) and ingest.flush_lag_ms() >= 0
    collector.gate.set()
    assert ingest.force_flush(10_000)
    ingest.spans(_spans(*range(10, 20)))  # larger than the capacity, taken into an empty queue
    assert ingest.force_flush(10_000)
    assert collector.span_ids() == [1, 2, 5, *range(10, 20)]
    assert ingest.flush_lag_ms() == 0
    ingest.shutdown()


def test_without_a_log_handler_log_records_are_rejected_not_dropped() -> None:
    ingest = BufferedIngest(Collector())
    with pytest.raises(IngestRejected, match="does not ingest log records"):
        ingest.logs([_log(1)])
    ingest.shutdown()


def test_shutdown_processes_what_is_queued_then_takes_nothing() -> None:
    collector = Collector()
    ingest = BufferedIngest(collector)
    ingest.spans(_spans(*range(1, 101)))
    ingest.shutdown()
    assert collector.span_ids() == list(range(1, 101)) and ingest.lost == 0
    with pytest.raises(IngestClosed):
        ingest.spans(_spans(200))
    ingest.shutdown()  # a second time does nothing


def test_shutdown_past_its_timeout_logs_and_counts_what_it_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = Collector()
    collector.gate.clear()
    ingest = BufferedIngest(collector)
    ingest.spans(_spans(1))
    wait_for(collector.entered.is_set, "the worker to hold the first span")
    ingest.spans(_spans(2, 3))
    assert ingest.force_flush(50) is False
    releaser = threading.Timer(0.5, collector.gate.set)  # lets the stalled worker go afterwards
    releaser.start()
    with caplog.at_level(logging.ERROR, "runtrace.serve"):
        ingest.shutdown(timeout_millis=50)
    releaser.join()
    assert ingest.lost == 2
    assert "2 queued spans/log records lost" in caplog.text


class _Failing(SpanProcessor):
    def __init__(self) -> None:
        self.ok: list[int] = []

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        if span.context.span_id == 2:
            raise RuntimeError("processor bug")
        self.ok.append(span.context.span_id)


def test_a_failing_processor_costs_only_the_span_it_failed_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor = _Failing()
    ingest = BufferedIngest(processor, raise_errors=False)
    with caplog.at_level(logging.ERROR, "runtrace.serve"):
        ingest.spans(_spans(1, 2, 3))
        assert ingest.force_flush(10_000)
    assert processor.ok == [1, 3]
    assert ingest.faults.counts == {"a span processor's on_end": 1}
    assert "processor bug" in caplog.text
    ingest.shutdown()


def test_capacity_must_be_a_positive_integer() -> None:
    with pytest.raises(ValueError, match="capacity must be a positive integer, got 0"):
        BufferedIngest(Collector(), capacity=0)


def test_under_raise_errors_a_processor_fault_reaches_the_next_flush_and_the_worker_goes_on() -> (
    None
):
    processor = _Failing()
    ingest = BufferedIngest(processor, raise_errors=True)
    ingest.spans(_spans(1, 2, 3))
    with pytest.raises(RuntimeError, match="processor bug"):
        ingest.force_flush(10_000)
    ingest.spans(_spans(4))
    assert ingest.force_flush(10_000)
    assert processor.ok == [1, 3, 4]  # the fault cost only its span; the worker went on
    ingest.shutdown()


def test_on_batch_end_follows_each_request_on_the_worker_before_a_flush_returns() -> None:
    collector = Collector()
    seen: list[tuple[list[int], str]] = []

    def batch_end() -> None:
        seen.append((collector.span_ids(), threading.current_thread().name))

    ingest = BufferedIngest(collector, on_logs=collector.on_logs, on_batch_end=batch_end)
    ingest.spans(_spans(1, 2))
    ingest.logs([_log(7)])
    ingest.spans(_spans(3))
    assert ingest.force_flush(10_000)
    assert [ids for ids, _ in seen] == [[1, 2], [1, 2], [1, 2, 3]]  # spans, logs, spans
    assert {thread for _, thread in seen} == {"runtrace-ingest"}
    ingest.shutdown()


def test_periodic_runs_on_the_worker_while_no_request_comes() -> None:
    calls: list[str] = []
    ingest = BufferedIngest(
        Collector(), periodic=lambda: calls.append(threading.current_thread().name), period_s=0.01
    )
    wait_for(lambda: len(calls) >= 3, "three periodic calls with an idle queue")
    ingest.spans(_spans(1))
    assert ingest.force_flush(10_000)
    ingest.shutdown()
    assert set(calls) == {"runtrace-ingest"}


@pytest.mark.parametrize("period", [0, -1, float("inf"), "1"])
def test_period_must_be_a_positive_number_of_seconds(period: object) -> None:
    with pytest.raises(ValueError, match="period_s must be a positive number of seconds"):
        BufferedIngest(Collector(), period_s=period)  # type: ignore[arg-type]
