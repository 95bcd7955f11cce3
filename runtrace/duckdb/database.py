"""Opening a runtrace DuckDB file: error translation, lock back-off, process identity.

DuckDB reports every file problem as an ``IOException`` with a message; this module turns the
ones runtrace can explain into :class:`~runtrace.errors.DatabaseError` subclasses at open time.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

import duckdb

from ..errors import DatabaseError, DatabaseLocked, NotADuckDBFile

HOST = socket.gethostname()

_LOCK_MARKERS = (
    "could not set lock",
    "conflicting lock",
    "already attached",
    "different configuration",
    "unique file handle conflict",
)

T = TypeVar("T")


def is_lock_conflict(exc: BaseException) -> bool:
    """True when DuckDB refused the file because another connection or process holds it."""
    if not isinstance(exc, duckdb.Error):
        return False
    text = str(exc).lower()
    return any(marker in text for marker in _LOCK_MARKERS)


def translate_open_error(exc: BaseException, path: str) -> BaseException:
    """The RuntraceError that explains ``exc``, or ``exc`` itself when none does."""
    text = str(exc)
    if isinstance(exc, duckdb.Error) and "not a valid DuckDB database file" in text:
        return NotADuckDBFile(f"{path} exists but is not a DuckDB database file")
    if isinstance(exc, duckdb.SerializationException) or "older version of duckdb" in text.lower():
        return DatabaseError(f"{path} cannot be read by this DuckDB version: {text}")
    if isinstance(exc, duckdb.IOException) and not is_lock_conflict(exc):
        return DatabaseError(f"cannot open {path}: {text}")
    return exc


def new_connection(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that prints nothing (in memory unless ``path`` is given).

    DuckDB prints a progress bar to stdout for queries over 2 s, terminal or not: never from
    inside someone else's agent, whose stdout may be a protocol.
    """
    con = duckdb.connect(path)
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET enable_progress_bar_print = false")
    except duckdb.InvalidInputException:
        # Inside Jupyter without ipywidgets DuckDB refuses to change the setting; there its bar
        # goes to the notebook, not to a stream an agent speaks a protocol on.
        pass
    except BaseException:
        con.close()
        raise
    return con


ROW_GROUP_SIZE = 30_720
"""Rows per row group in the file, a quarter of DuckDB's default (122,880). Each flush ends
with a checkpoint that rewrites the row groups it appended to: at the default size one in
every ~250,000 events cost 0.45 s and ~90 MB of RSS, at this size 0.15 s and ~30 MB."""

_WRITE_CATALOG = "rt_file"


def check_path(path: str) -> str:
    """``path``, refused if DuckDB would open another file: it cuts a path at a NUL."""
    if "\x00" in path:
        raise DatabaseError(f"the database path {path!r} holds a NUL character")
    return path


def open_rw(path: str) -> duckdb.DuckDBPyConnection:
    """One attempt to open ``path`` for writing; lock conflicts propagate as duckdb errors.

    The file is attached (with :data:`ROW_GROUP_SIZE`) and made the default catalog, so
    queries name its tables unqualified.
    """
    check_path(path)
    con = new_connection()
    try:
        con.execute(f"ATTACH ? AS {_WRITE_CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})", [path])
        con.execute(f"USE {_WRITE_CATALOG}")
    except duckdb.Error as exc:
        con.close()
        translated = translate_open_error(exc, path)
        if translated is exc:
            raise
        raise translated from exc
    except BaseException:
        con.close()
        raise
    return con


def retry_locked(
    attempt: Callable[[], T], path: str, timeout_s: float, *, max_delay: float = 0.25
) -> T:
    """Call ``attempt`` until it stops failing on a lock conflict, with jittered back-off
    (doubling from 5 ms up to ``max_delay`` seconds).

    Writers hold the file only while they flush (milliseconds), so a short wait usually
    suffices; past ``timeout_s`` the holder is taken to be some other program and
    :class:`DatabaseLocked` is raised.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            return attempt()
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseLocked(
                    f"{path} stayed locked by another program for {timeout_s:g} s: {exc}"
                ) from exc
        time.sleep(min(delay * (0.5 + random.random()), max(deadline - time.monotonic(), 0)))
        delay = min(delay * 2, max_delay)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped by its parent still answers kill(pid, 0)
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[-1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return True


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: commit when the block finishes, roll back on anything that escapes it
    (``BaseException`` included, so an interrupted write never leaves half a batch)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
