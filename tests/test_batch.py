"""The generic batch processor: batches in order, a bounded queue (block, spill, counted), one
deadline per flush and shutdown, faults surfaced, and a fresh queue and thread after fork."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from runtrace.batch import BatchProcessor, QueueStats, WhenFull
from runtrace.faults import Faults

WAIT = 30.0
"""Seconds a test waits for something that happens at once; only a hang takes this long."""


class ListExporter:
    """A real exporter into a list: every batch it is given, in order.

    ``gate``, while clear, holds an export before it takes anything off the queue.
    """

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.exporting = threading.Event()
        self.closed_with: float | None = None
        self.forked = False
        self.at_fork: list[int] | None = None
        self.fail_next = 0

    @property
    def items(self) -> list[int]:
        return [item for batch in self.batches for item in batch]

    def export(self, batches: Iterator[list[int]]) -> None:
        self.exporting.set()
        assert self.gate.wait(WAIT)
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("a bug in the exporter")
        self.batches.extend(batches)

    def pending(self) -> bool:
        return False

    def stalled(self) -> bool:
        return False

    def close(self, deadline: float) -> None:
        self.closed_with = deadline

    def after_fork_in_child(self) -> None:
        self.forked = True
        self.at_fork = self.items  # what the parent had exported when it forked
        self.batches = []


def processor(exporter: ListExporter, **kwargs: Any) -> BatchProcessor[int]:
    kwargs.setdefault("schedule_delay", 60.0)  # exports only when asked, in most tests
    kwargs.setdefault("faults", Faults("runtrace.test", raise_errors=False))
    return BatchProcessor(exporter, name="test-batch", **kwargs)


def held(exporter: ListExporter, p: BatchProcessor[int]) -> None:
    """Close the gate and let the background thread start an export that waits at it."""
    exporter.gate.clear()
    exporter.exporting.clear()
    p.submit(-1)
    p._wake.set()
    assert exporter.exporting.wait(WAIT)


def until(condition: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


def test_items_reach_the_exporter_in_order_in_batches_of_at_most_the_batch_size() -> None:
    exporter = ListExporter()
    p = processor(exporter, max_export_batch_size=3)
    for i in range(10):
        p.submit(i)
    assert p.force_flush()
    assert exporter.batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    p.shutdown()


def test_the_background_thread_exports_without_being_asked() -> None:
    exporter = ListExporter()
    p = processor(exporter, schedule_delay=0.01)
    p.submit(1)
    until(lambda: exporter.items == [1])
    assert p.worker_alive
    p.shutdown()
    assert not p.worker_alive


def test_a_full_queue_wakes_the_thread_without_waiting_for_the_schedule() -> None:
    exporter = ListExporter()
    p = processor(exporter, max_export_batch_size=2)
    p.submit(1)
    p.submit(2)
    until(lambda: exporter.items == [1, 2])
    p.shutdown()


class CountingEvent(threading.Event):
    """A real event that counts the calls to ``set``."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


@pytest.mark.parametrize("width", [1, 2])
def test_a_producer_outrunning_a_busy_writer_wakes_it_once_not_per_item(width: int) -> None:
    exporter = ListExporter()
    exporter.gate.clear()  # the writer will be busy: it takes nothing off the queue
    p = processor(exporter, max_export_batch_size=10, max_queue_size=10_000, width=width)
    submit = p.submit if width == 1 else lambda i: p.submit_pair(i, -i)
    submit(0)
    wake, first = CountingEvent(), p._wake
    p._wake = wake
    first.set()  # the thread wakes from the event it waits on, then waits on ours
    assert exporter.exporting.wait(WAIT)  # held in an export, before taking anything
    for i in range(1, 1_000):
        submit(i)
    assert wake.sets == 1  # once past the batch size, then left set (it was 990 times)
    exporter.gate.set()
    assert p.force_flush()
    assert len(exporter.items) == 1_000 * width
    p.shutdown()


def test_a_full_queue_blocks_the_producer_until_an_export_makes_room() -> None:
    exporter = ListExporter()
    p = processor(exporter, max_queue_size=2, block_timeout=WAIT)
    held(exporter, p)  # the export waits; -1 is taken only once the gate opens
    p.submit(0)
    producer = threading.Thread(target=p.submit, args=(1,))
    producer.start()
    until(lambda: p.stats.blocked == 1)
    assert producer.is_alive()
    assert p.stats.queued == 2
    exporter.gate.set()
    producer.join(WAIT)
    assert not producer.is_alive()
    assert p.force_flush()
    assert exporter.items == [-1, 0, 1]
    assert p.stats == QueueStats(
        queued=0, blocked=1, spilled=0, spill_failures=0, dropped=0, received_after_shutdown=0
    )
    p.shutdown()


def test_a_producer_blocked_past_the_timeout_spills_the_oldest_batch() -> None:
    exporter = ListExporter()
    spilled: list[list[int]] = []
    p = processor(
        exporter, max_queue_size=3, max_export_batch_size=2, block_timeout=0.01,
        spill=spilled.append,
    )  # fmt: skip
    held(exporter, p)
    for i in range(3):
        p.submit(i)
    assert spilled == [[-1, 0]]
    assert (p.stats.blocked, p.stats.spilled, p.stats.queued) == (1, 2, 2)
    exporter.gate.set()
    assert p.force_flush()
    assert exporter.items == [1, 2]
    p.shutdown()


def test_without_a_spill_a_timed_out_item_is_dropped_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = ListExporter()
    p = processor(exporter, max_queue_size=1, block_timeout=0.01)
    held(exporter, p)
    with caplog.at_level(logging.WARNING, logger="runtrace.batch"):
        p.submit(0)
    assert p.stats.dropped == 1
    assert any("dropped" in r.getMessage() for r in caplog.records)
    exporter.gate.set()
    assert p.force_flush()
    assert exporter.items == [-1]
    p.shutdown()


def test_the_spill_policy_hands_the_oldest_batch_over_at_once() -> None:
    exporter = ListExporter()
    spilled: list[list[int]] = []
    p = processor(
        exporter, max_queue_size=4, max_export_batch_size=2, when_full="spill",
        spill=spilled.append,
    )  # fmt: skip
    held(exporter, p)
    for i in range(5):
        p.submit(i)
    assert spilled == [[-1, 0]]
    assert (p.stats.spilled, p.stats.blocked, p.stats.queued) == (2, 0, 4)
    exporter.gate.set()
    assert p.force_flush()
    assert exporter.items == [1, 2, 3, 4]
    p.shutdown()


def test_a_spill_that_fails_puts_its_items_back_in_order_and_is_counted() -> None:
    exporter = ListExporter()

    def broken(items: list[int]) -> None:
        raise OSError("disk full")

    p = processor(exporter, max_queue_size=2, when_full=WhenFull.SPILL, spill=broken)
    held(exporter, p)
    for i in range(3):
        p.submit(i)
    # Each full submission tried to spill; the queue grew past its bound instead of losing.
    assert (p.stats.spill_failures, p.stats.spilled, p.stats.queued) == (2, 0, 4)
    exporter.gate.set()
    assert p.force_flush()
    assert exporter.items == [-1, 0, 1, 2]  # nothing lost, nothing reordered
    p.shutdown()


def test_a_failing_spill_is_reported_by_the_fault_policy() -> None:
    def broken(items: list[int]) -> None:
        raise OSError("disk full")

    exporter = ListExporter()
    p = processor(
        exporter, max_queue_size=1, when_full="spill", spill=broken,
        faults=Faults("runtrace.test", raise_errors=True),
    )  # fmt: skip
    held(exporter, p)
    with pytest.raises(OSError, match="disk full"):
        p.submit(0)
    exporter.gate.set()
    assert p.force_flush()
    assert exporter.items == [-1, 0]  # the item came back before the error was raised
    p.shutdown()


def test_force_flush_gives_up_at_its_deadline_behind_a_hung_export() -> None:
    exporter = ListExporter()
    p = processor(exporter)
    held(exporter, p)
    p.submit(0)
    assert p.force_flush(timeout_millis=20) is False
    exporter.gate.set()
    assert p.force_flush()
    p.shutdown()


def test_force_flush_keeps_one_deadline_while_the_queue_keeps_filling() -> None:
    p: BatchProcessor[int]

    class Refilling(ListExporter):
        def export(self, batches: Iterator[list[int]]) -> None:
            super().export(batches)
            p.submit(len(self.batches))  # never empty: only the deadline ends the flush

    exporter = Refilling()
    p = processor(exporter)
    p.submit(0)
    assert p.force_flush(timeout_millis=50) is False
    assert len(exporter.batches) >= 1
    p.shutdown(timeout_millis=50)


def test_shutdown_keeps_one_deadline_and_gives_the_exporter_what_is_left_of_it() -> None:
    exporter = ListExporter()
    p = processor(exporter)
    p.submit(1)
    before = time.monotonic()
    assert p.shutdown(timeout_millis=5_000)
    after = time.monotonic()
    assert exporter.items == [1]
    assert exporter.closed_with is not None
    assert before + 5.0 <= exporter.closed_with <= after + 5.0
    assert p.shutdown() is True  # later calls do nothing
    p.submit(2)
    assert p.stats.received_after_shutdown == 1


def test_shutdown_behind_a_hung_export_returns_at_its_deadline() -> None:
    exporter = ListExporter()
    p = processor(exporter)
    held(exporter, p)
    p.submit(0)
    assert p.shutdown(timeout_millis=20) is False
    assert exporter.closed_with is None  # never closed under a running export
    exporter.gate.set()


def test_exclusive_exports_what_was_queued_and_holds_off_every_other_export() -> None:
    exporter = ListExporter()
    p = processor(exporter)
    p.submit(1)
    with p.exclusive():
        assert exporter.items == [1]
        p.submit(2)
        result: list[bool] = []
        other = threading.Thread(target=lambda: result.append(p.force_flush(timeout_millis=10)))
        other.start()
        other.join(WAIT)
        assert result == [False]
    assert p.force_flush()
    assert exporter.items == [1, 2]
    p.shutdown()


def test_a_fault_in_the_background_export_is_raised_to_the_next_caller() -> None:
    exporter = ListExporter()
    exporter.fail_next = 1
    p = processor(exporter, schedule_delay=0.01, faults=Faults("runtrace.test", raise_errors=True))
    p.submit(1)
    until(lambda: p._thread_error is not None)
    with pytest.raises(RuntimeError, match="a bug in the exporter"):
        p.force_flush()
    assert p.worker_alive  # the thread lives on
    assert p.force_flush()
    p.shutdown()


def test_a_fault_outside_tests_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    exporter = ListExporter()
    exporter.fail_next = 1
    faults = Faults("runtrace.test", raise_errors=False)
    p = processor(exporter, faults=faults)
    p.submit(1)
    with caplog.at_level(logging.ERROR, logger="runtrace.test"):
        p.force_flush()
    assert faults.counts == {"test-batch: export": 1}
    assert any(r.exc_info for r in caplog.records)
    p.shutdown()


def test_pairs_stay_whole_in_batches_and_sizes_count_pairs() -> None:
    exporter = ListExporter()
    p = processor(exporter, max_export_batch_size=2, width=2)
    for i in range(1, 6):
        p.submit_pair(i, -i)
    assert p.stats.queued == 5
    assert p.force_flush()
    assert exporter.batches == [[1, -1, 2, -2], [3, -3, 4, -4], [5, -5]]
    p.shutdown()


def test_a_full_queue_of_pairs_spills_whole_pairs_and_counts_pairs() -> None:
    exporter = ListExporter()
    spilled: list[list[int]] = []
    p = processor(
        exporter, max_queue_size=2, max_export_batch_size=1, when_full="spill",
        spill=spilled.append, width=2,
    )  # fmt: skip
    with p.exclusive():  # the writer is busy: the queue can only fill up
        for i in range(1, 5):
            p.submit_pair(i, -i)
        assert spilled == [[1, -1], [2, -2]]
        assert (p.stats.spilled, p.stats.queued) == (2, 2)
    assert p.force_flush()
    assert exporter.items == [3, -3, 4, -4]
    p.shutdown()


def test_queuing_a_pair_leaves_no_object_behind_for_the_cyclic_gc() -> None:
    p = processor(ListExporter(), width=2)
    payload = [[i] for i in range(1_000)]  # GC-tracked objects, like snapshots and records
    with p.exclusive():
        gc.collect()
        before = len(gc.get_objects())
        for item in payload:
            p.submit_pair(item, item)
        after = len(gc.get_objects())
    assert p.stats.queued == 1_000
    assert after - before < 50  # a tuple per item would be 1,000
    p.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 3}, "width must be 1 or 2"),
        ({"schedule_delay": 0}, "schedule_delay"),
        ({"max_export_batch_size": 0}, "max_export_batch_size"),
        ({"max_queue_size": 0}, "max_queue_size"),
        ({"block_timeout": -1}, "block_timeout"),
        ({"when_full": "drop"}, "when_full must be one of 'block', 'spill', not 'drop'"),
        ({"when_full": "spill"}, "needs a spill callback"),
    ],
)
def test_bad_settings_are_refused_naming_them(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        processor(ListExporter(), **kwargs)


@pytest.mark.skipif(sys.platform == "win32", reason="uses fork")
def test_a_forked_child_gets_a_fresh_queue_thread_and_exporter_state() -> None:
    exporter = ListExporter()
    p = processor(exporter)
    p.submit(1)  # queued before the fork: the parent's to export

    def child() -> None:
        ok = exporter.forked and p.stats.queued == 0 and p.worker_alive
        p.submit(2)
        ok = ok and p.force_flush() and exporter.items == [2]
        sys.exit(0 if ok else 3)

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(WAIT)
    assert proc.exitcode == 0
    assert not exporter.forked
    assert p.force_flush()
    assert exporter.items == [1]
    p.shutdown()


_fork_test: dict[str, ListExporter] = {}


def _open_the_gate_soon() -> None:  # runs in the forking thread, before runtrace's handler
    exporter = _fork_test.get("exporter")
    if exporter is not None:
        threading.Timer(0.05, exporter.gate.set).start()


os.register_at_fork(before=_open_the_gate_soon)


@pytest.mark.skipif(sys.platform == "win32", reason="uses fork")
def test_a_fork_waits_for_the_export_in_progress() -> None:
    exporter = ListExporter()
    p = processor(exporter)
    held(exporter, p)  # an export is under way when the fork starts
    _fork_test["exporter"] = exporter
    try:
        pid = os.fork()
        if pid == 0:  # the child: the export had finished before the fork, none of it is here
            os._exit(0 if exporter.at_fork == [-1] and p.stats.queued == 0 else 3)
    finally:
        _fork_test.clear()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    p.shutdown()
