"""Per-process segment files: where a flush goes when another process holds the DuckDB file.

A writer that cannot get the file's write lock at once (a reader has it open, or another
writer is flushing) writes its batch as two Parquet files next to it, in ``<file>.segments/``,
and moves on. Readers union them with the file (:func:`runtrace.connect`); the next writer that
gets the lock compacts them into the file in the same transaction as its own batch, recording
their names in ``runtrace_segments`` so that a crash between commit and delete never counts a
segment twice.

Names start with a zero-padded nanosecond clock (monotonic per process), so sorting names
sorts one process's flushes in order; a run is written by one process only, so the latest
segment row of a run is its latest snapshot. Files appear by atomic rename: a reader never
sees half a file.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .database import HOST, open_rw, pid_alive, retry_locked, transaction
from .schema import (
    EVENT_ROW_SCHEMA,
    RUN_BATCH_SCHEMA,
    SEGMENTS_TABLE,
    ensure_schema,
    events_select_sql,
    run_version_sql,
    runs_select_sql,
    runs_upsert_sql,
)

EVENTS_SUFFIX: Final = ".events.parquet"
RUNS_SUFFIX: Final = ".runs.parquet"
_PLACEHOLDER: Final = "_empty"
_TMP_SUFFIX: Final = ".tmp"
_SAFE_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", HOST)[:64]

_clock_lock = threading.Lock()
_last_ns = 0
_seq = 0


def _reset_after_fork() -> None:
    global _clock_lock
    _clock_lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_reset_after_fork)


def segment_dir(path: str | os.PathLike[str]) -> Path:
    """The directory holding ``path``'s segment files."""
    return Path(f"{os.fspath(path)}.segments")


def ensure_segment_dir(path: str | os.PathLike[str]) -> Path:
    """Create the segment directory with its two empty placeholder files.

    The placeholders keep the readers' globs from ever matching nothing (which DuckDB treats
    as an error) and give the views their column types.
    """
    directory = segment_dir(path)
    directory.mkdir(parents=True, exist_ok=True)
    for suffix, schema in (
        (EVENTS_SUFFIX, EVENT_ROW_SCHEMA),
        (RUNS_SUFFIX, RUN_BATCH_SCHEMA),
    ):
        target = directory / f"{_PLACEHOLDER}{suffix}"
        if not target.exists():
            _atomic_write(schema.empty_table(), target)
    return directory


def _atomic_write(table: pa.Table, target: Path) -> None:
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}{_TMP_SUFFIX}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, target)


def _next_stem() -> str:
    global _last_ns, _seq
    with _clock_lock:
        now = max(time.time_ns(), _last_ns + 1)
        _last_ns = now
        _seq += 1
        return f"{now:020d}-{os.getpid()}-{_seq:06d}-{_SAFE_HOST}"


def write_segment(
    path: str | os.PathLike[str],
    events: pa.Table | None,
    runs: pa.Table | None,
    scratch: duckdb.DuckDBPyConnection,
) -> str:
    """Write one flush as segment files; returns the segment's stem.

    ``events`` has the batch columns; ``scratch`` (an in-memory DuckDB) derives the typed
    columns with the same SQL the file uses. The runs rows go first: a reader may briefly see
    a run's new row before the events it counts, never events without their run's row.
    """
    directory = ensure_segment_dir(path)
    stem = _next_stem()
    if runs is not None and runs.num_rows:
        _atomic_write(runs.cast(RUN_BATCH_SCHEMA), directory / f"{stem}{RUNS_SUFFIX}")
    if events is not None and events.num_rows:
        scratch.register("_rt_seg_events", events)
        try:
            typed = scratch.sql(
                events_select_sql("_rt_seg_events", json_type="VARCHAR")
            ).to_arrow_table()
        finally:
            scratch.unregister("_rt_seg_events")
        _atomic_write(typed.cast(EVENT_ROW_SCHEMA), directory / f"{stem}{EVENTS_SUFFIX}")
    return stem


def list_segments(path: str | os.PathLike[str]) -> tuple[list[Path], list[Path]]:
    """The (events, runs) segment files present now, oldest first, placeholders excluded."""
    directory = segment_dir(path)
    if not directory.is_dir():
        return [], []
    events: list[Path] = []
    runs: list[Path] = []
    for entry in sorted(directory.iterdir()):
        name = entry.name
        if name.startswith(_PLACEHOLDER):
            continue
        if name.endswith(EVENTS_SUFFIX):
            events.append(entry)
        elif name.endswith(RUNS_SUFFIX):
            runs.append(entry)
        elif name.endswith(_TMP_SUFFIX):
            _remove_orphan_tmp(entry)
    return events, runs


def left_by_gone_writers(path: str | os.PathLike[str]) -> bool:
    """Whether a segment present was written by a process of this host that is gone (its
    segments wait for the next writer, or a reader, to compact them); live writers compact
    their own at their next flush."""
    events, runs = list_segments(path)
    for entry in events + runs:
        parts = entry.name.split("-", 3)  # clock, pid, counter, host + suffix
        if len(parts) < 4 or not parts[3].startswith(f"{_SAFE_HOST}."):
            continue
        try:
            pid = int(parts[1])
        except ValueError:
            continue
        if not pid_alive(pid):
            return True
    return False


def _remove_orphan_tmp(entry: Path) -> None:
    """A ``.tmp`` file whose writer died mid-write is garbage; a live writer's is not."""
    parts = entry.name.rsplit(".", 3)
    try:
        pid = int(parts[-3])
    except (ValueError, IndexError):
        return
    if not pid_alive(pid):
        entry.unlink(missing_ok=True)


def compact_segments(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str]) -> list[Path]:
    """Move every segment present into the file, inside the caller's open transaction.

    Returns the files to delete once the caller has committed. Files already recorded in
    ``runtrace_segments`` (a crash after commit, before delete) are only deleted.
    """
    events, runs = list_segments(path)
    files = events + runs
    if not files:
        return []
    names = [f.name for f in files]
    # Names are only needed while their file exists (a crash between commit and delete);
    # forget the rest, so the table does not grow with every flush ever compacted.
    con.execute(f"DELETE FROM {SEGMENTS_TABLE} WHERE NOT list_contains(?, name)", [names])
    done = {
        name
        for (name,) in con.execute(
            f"SELECT name FROM {SEGMENTS_TABLE} WHERE list_contains(?, name)", [names]
        ).fetchall()
    }
    new_events = [str(f) for f in events if f.name not in done]
    new_runs = [str(f) for f in runs if f.name not in done]
    if new_events:
        con.execute(
            "INSERT INTO run_events SELECT * REPLACE (event::JSON AS event) FROM read_parquet(?)",
            [new_events],
        )
    if new_runs:
        # Each run's newest row across the segments, and only if it is not older than the
        # file's row (a stale snapshot never turns a finished run back into a running one).
        con.execute(
            runs_upsert_sql(
                runs_select_sql(
                    "(SELECT * FROM read_parquet(?, filename = true) AS seg "
                    "QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY "
                    f"{run_version_sql('seg')} DESC, filename DESC) = 1)"
                )
            ),
            [new_runs],
        )
    fresh = [Path(p).name for p in new_events + new_runs]
    if fresh:
        now_ms = time.time_ns() // 1_000_000
        con.execute(
            f"INSERT INTO {SEGMENTS_TABLE} SELECT unnest(?), ?",
            [fresh, now_ms],
        )
    return files


def delete_files(files: list[Path]) -> None:
    """Remove compacted segment files; a file already gone is fine."""
    for f in files:
        f.unlink(missing_ok=True)


@contextmanager
def compacting_transaction(
    path: str, lock_timeout: float
) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[Path]]]:
    """The file open for writing, its segments compacted in, in one transaction around the
    block; yields the connection and the segment files compacted.

    Waits up to ``lock_timeout`` for the write lock (:class:`~runtrace.errors.DatabaseLocked`
    past that) and creates or migrates the schema first. The compacted segment files are
    deleted once the transaction has committed, before the lock is let go; on an error nothing
    changes.
    """
    con = retry_locked(lambda: open_rw(path), path, lock_timeout)
    try:
        ensure_schema(con, path)
        with transaction(con):
            files = compact_segments(con, path)
            yield con, files
        # Deleted while the write lock is held: a reader that attached in between would list
        # them (its views skip them by name, but still open them) and fail on a missing file.
        delete_files(files)
    finally:
        con.close()


def compact(path: str | os.PathLike[str], *, lock_timeout: float = 0.0) -> int:
    """Move every segment into the file, if its write lock is free within ``lock_timeout``.

    Returns the number of segment files compacted. Raises :class:`~runtrace.errors.DatabaseLocked`
    when the lock stays taken (a reader has the file open).
    """
    path = os.fspath(path)
    events, runs = list_segments(path)
    if not events and not runs:
        return 0
    with compacting_transaction(path, lock_timeout) as (_, files):
        pass
    return len(files)
