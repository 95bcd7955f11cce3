"""The CLI's progress bars: drawn on a terminal (a pty here), silent in pipes and CI logs, and
the bars of import, export and forward reach their totals."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tqdm import tqdm

from runtrace.cli import main
from runtrace.cli.output import progress
from runtrace.demo import DemoResult


class Terminal:
    """A pty: ``stream`` is the terminal side a program writes to; ``read()`` what it drew
    since the last read. A thread drains the other side, so a long bar never fills the pty."""

    def __init__(self) -> None:
        self._master, slave = pty.openpty()
        # 24 x 120, as a real terminal reports (a new pty is 0 x 0, which tqdm draws as nothing)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        self.stream = os.fdopen(slave, "w", encoding="utf-8")
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._drain = threading.Thread(target=self._drain_loop, daemon=True)
        self._drain.start()

    def _drain_loop(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # the terminal side closed
                return
            if not chunk:
                return
            with self._lock:
                self._chunks.append(chunk)

    def read(self) -> str:
        """What was drawn: written bytes are waited for with a marker line, no sleeping."""
        marker = f"<end {time.monotonic_ns()}>"
        self.stream.write(marker + "\n")
        self.stream.flush()
        while True:
            with self._lock:
                text = b"".join(self._chunks).decode("utf-8", "replace")
                if marker in text:
                    self._chunks.clear()
                    return text[: text.index(marker)]
            self._drain.join(0.01)

    def close(self) -> None:
        self.stream.close()
        self._drain.join(5)
        os.close(self._master)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    yield term
    term.close()


def test_the_bar_is_drawn_on_a_terminal_and_reaches_its_total(terminal: Terminal) -> None:
    assert terminal.stream.isatty()
    update, close = progress("copying", unit="row", stream=terminal.stream)
    for done in range(0, 101, 20):
        update(done, 100)
    close()
    drawn = terminal.read()
    assert "copying" in drawn
    assert "100/100" in drawn


def test_the_bar_stays_silent_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    update, close = progress("copying", stream=stream)
    for done in range(0, 101, 20):
        update(done, 100)
    close()
    assert stream.getvalue() == ""


def test_the_bar_follows_a_total_that_grows(terminal: Terminal) -> None:
    update, close = progress("reading", unit="B", stream=terminal.stream, scale=True)
    update(10, 10)
    update(30, 30)  # a stream of unknown length: the total is what was read
    close()
    assert "30.0/30.0" in terminal.read()


def _run_on(stream: object, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr(sys, "stderr", stream)
    return main(list(argv))


def test_import_export_and_forward_draw_bars_on_a_terminal(
    terminal: Terminal,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    demo: DemoResult,
    receiver: object,
) -> None:
    src = tmp_path / "events.jsonl"
    src.write_text(
        "".join(
            json.dumps({"run_id": f"r{i}", "session_id": "s", "timestamp_ms": i,
                        "event": {"type": "text_delta", "text": "x"}}) + "\n"
            for i in range(20)
        ),
        encoding="utf-8",
    )  # fmt: skip
    size = src.stat().st_size
    db = str(tmp_path / "imp.duckdb")
    assert _run_on(terminal.stream, monkeypatch, "import", str(src), "--db", db) == 0
    drawn = terminal.read()
    shown = tqdm.format_sizeof(size, divisor=1024)
    assert "importing: 100%" in drawn and f"{shown}/{shown}" in drawn

    assert _run_on(terminal.stream, monkeypatch, "export", "--parquet", str(tmp_path / "p"),
                   "--db", db) == 0  # fmt: skip
    assert (
        "exporting: 100%" in (drawn := terminal.read()) and "40/40" in drawn
    )  # 20 runs, 20 events

    url = receiver.url  # type: ignore[attr-defined]
    runs = demo.workload.expected.runs
    assert _run_on(terminal.stream, monkeypatch, "forward", "--endpoint", url, "--db",
                   demo.path) == 0  # fmt: skip
    assert "forwarding: 100%" in (drawn := terminal.read()) and f"{runs}/{runs}" in drawn
    assert f"Forwarded {runs} runs" in capsys.readouterr().out


def test_commands_print_no_bar_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, demo: DemoResult
) -> None:
    code = main(["export", "--parquet", str(tmp_path / "p"), "--db", demo.path])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.err == ""
    assert captured.out.startswith("Exported")
