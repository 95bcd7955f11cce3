"""Shared pieces of the receiver's tests: a collecting span processor that can be made slow,
the sender subprocess, and waiting for a condition (bounded, never a timed assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from runtrace.serve import LogItem

SENDER = Path(__file__).with_name("sender.py")


class Collector(SpanProcessor):
    """Keeps every span and log record handed to it. Clearing ``gate`` makes it stall (a slow
    ingest) until set again; ``entered`` is set once a span arrived."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.logs: list[LogItem] = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.flushed = 0
        self.shut_down = False

    def on_end(self, span: ReadableSpan) -> None:
        self.entered.set()
        self.gate.wait(60)
        with self.lock:
            self.spans.append(span)

    def on_logs(self, records: Sequence[LogItem]) -> None:
        with self.lock:
            self.logs.extend(records)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.flushed += 1
        return True

    def shutdown(self) -> None:
        self.shut_down = True

    def span_ids(self) -> list[int]:
        with self.lock:
            return [s.context.span_id for s in self.spans if s.context is not None]


def run_sender(*args: str, check: bool = True) -> dict[str, Any]:
    """Run sender.py in another process; its JSON report."""
    done = subprocess.run(
        [sys.executable, str(SENDER), *args], capture_output=True, text=True, timeout=180
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout) if done.returncode == 0 else {"stderr": done.stderr}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll until ``condition()``; fail naming ``what`` if it never happens."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def as_json(value: Any) -> Any:
    """What ``value`` looks like after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(value))
