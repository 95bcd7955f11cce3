"""Reading a runtrace database: a read-only view of everything recorded, and the fast reload.

:func:`connect` attaches the file read-only and unions it with the segment files of processes
still recording, so readers never wait for writers nor miss what they flushed.
:func:`load_records` rebuilds :class:`~runtrace.runs.RunRecord` objects from it without
validating every stored event again (see :mod:`runtrace.duckdb.fastload`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from ..errors import DatabaseError, DatabaseNotFound
from ..runs import RunRecord, RunStatus
from .database import new_connection, retry_locked, translate_open_error
from .fastload import build_event_records, gc_paused
from .rows import snapshot_from_row
from .schema import (
    ATTACHED,
    EVENT_COLUMNS,
    RUN_COLUMNS,
    RUNS_AS_TEXT,
    SEGMENTS_TABLE,
    attach_read_only,
    require_current,
    run_version_sql,
    runs_select_sql,
)
from .segments import (
    EVENTS_SUFFIX,
    RUNS_SUFFIX,
    compact,
    ensure_segment_dir,
    left_by_gone_writers,
    segment_dir,
)

_log = logging.getLogger("runtrace.duckdb")

_READ_RETRY_S = 0.02
"""The longest pause between a reader's attempts to attach a file a writer is flushing:
flushes hold it for tens of milliseconds, so polling often keeps reads short."""


def connect(
    path: str | os.PathLike[str] = "runtrace.duckdb", *, lock_timeout: float = 10.0
) -> duckdb.DuckDBPyConnection:
    """A read-only view of everything recorded, including by processes still recording.

    Returns an in-memory DuckDB connection with the file attached read-only as ``db`` and
    views ``runs``, ``run_events`` and ``runtrace_meta`` that union the file with the segment
    files of live writers, so they show everything up to one flush interval ago. While this
    connection is open, writers cannot write the file itself and keep writing segments;
    close it when done so they can be compacted. Segments that writers now gone left behind
    are compacted first when the file is free at once; a live writer's are left to its next
    flush, so reading never waits for that work.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DatabaseNotFound(f"no runtrace database at {path}")
    if left_by_gone_writers(path):
        _compact_leftovers(path)
    con = new_connection()
    try:
        retry_locked(
            lambda: attach_read_only(con, path), path, lock_timeout, max_delay=_READ_RETRY_S
        )
        require_current(
            con,
            path,
            "{path} is not an up-to-date runtrace database (schema version {version}); "
            "open it once with DuckDBSink or write_records to create or migrate it",
        )
        _create_views(con, path)
    except duckdb.Error as exc:
        con.close()
        translated = translate_open_error(exc, path)
        if translated is exc:
            raise DatabaseError(f"cannot read {path}: {exc}") from exc
        raise translated from exc
    except BaseException:
        con.close()
        raise
    return con


def _compact_leftovers(path: str) -> None:
    """Housekeeping a reader may skip: the views show the segments all the same. It fails
    when someone holds the file, and on a full disk (DuckDB's ``TransactionException`` at
    commit): never a reason to refuse a read."""
    try:
        compact(path, lock_timeout=0.0)
    except (DatabaseError, duckdb.Error, OSError) as exc:
        _log.debug("runtrace: segments of %s left for the next writer: %s", path, exc)


def _create_views(con: duckdb.DuckDBPyConnection, path: str) -> None:
    try:
        directory = ensure_segment_dir(path)
    except OSError:
        directory = segment_dir(path)
    run_cols = ", ".join(name for name, _ in RUN_COLUMNS)
    event_cols = ", ".join(name for name, _ in EVENT_COLUMNS)
    file = f"{ATTACHED}.main"
    con.execute(f"CREATE VIEW runtrace_meta AS SELECT * FROM {file}.runtrace_meta")
    if not (directory / f"_empty{EVENTS_SUFFIX}").exists():
        con.execute(f"CREATE VIEW runs AS SELECT {run_cols} FROM {file}.runs")
        con.execute(f"CREATE VIEW run_events AS SELECT {event_cols} FROM {file}.run_events")
        return
    con.execute("SET VARIABLE runtrace_events_glob = ?", [str(directory / f"*{EVENTS_SUFFIX}")])
    con.execute("SET VARIABLE runtrace_runs_glob = ?", [str(directory / f"*{RUNS_SUFFIX}")])
    not_compacted = f"parse_filename(filename) NOT IN (SELECT name FROM {file}.{SEGMENTS_TABLE})"
    # A run's newest row among the segments: by version, as compaction picks it (a flush
    # and a spill of one process may finish writing out of order), then the latest file.
    seg_runs = (
        "SELECT * FROM read_parquet(getvariable('runtrace_runs_glob'), filename = true) AS s "
        f"WHERE {not_compacted} QUALIFY row_number() OVER "
        f"(PARTITION BY run_id ORDER BY {run_version_sql('s')} DESC, filename DESC) = 1"
    )
    run_select = runs_select_sql("seg").removeprefix("SELECT ").removesuffix(" FROM seg")
    con.execute(
        f"CREATE VIEW runs AS "
        f"WITH seg AS ({seg_runs}) "
        f"SELECT {run_cols} FROM {file}.runs WHERE run_id NOT IN (SELECT run_id FROM seg) "
        f"UNION ALL SELECT {run_select} FROM seg"
    )
    event_select = event_cols.replace("event,", "event::JSON AS event,")
    con.execute(
        f"CREATE VIEW run_events AS "
        f"SELECT {event_cols} FROM {file}.run_events "
        f"UNION ALL SELECT {event_select} "
        "FROM read_parquet(getvariable('runtrace_events_glob'), filename = true) "
        f"WHERE {not_compacted}"
    )


@contextmanager
def reading(
    path: str | os.PathLike[str], lock_timeout: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`connect`, closed when the block ends."""
    con = connect(path, lock_timeout=lock_timeout)
    try:
        yield con
    finally:
        con.close()


def load_records(
    path: str | os.PathLike[str] = "runtrace.duckdb",
    *,
    session_id: str | None = None,
    status: RunStatus | str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    run_ids: Sequence[str] | None = None,
    lock_timeout: float = 10.0,
) -> list[RunRecord]:
    """Runs with all their events, ready for :meth:`RunStore.replace_records`, oldest first.

    Filters: ``session_id``; ``status``; runs created at or after ``since_ms`` and before
    ``until_ms``; ``run_ids`` (ids not stored are skipped; the order stays oldest first). With
    :func:`list_run_ids`, ``run_ids`` reads a big file a batch of runs at a time. Reads through
    :func:`connect`, so live writers' segments are included.
    """
    where = ["1 = 1"]
    params: list[object] = []
    if run_ids is not None:
        where.append("list_contains(?::VARCHAR[], run_id)")
        params.append(list(run_ids))
    if session_id is not None:
        where.append("session_id = ?")
        params.append(session_id)
    if status is not None:
        where.append("status = ?")
        params.append(RunStatus(status).value)
    if since_ms is not None:
        where.append("created_at_ms >= ?")
        params.append(since_ms)
    if until_ms is not None:
        where.append("created_at_ms < ?")
        params.append(until_ms)
    run_sql = RUNS_AS_TEXT + " FROM runs WHERE " + " AND ".join(where)
    with reading(path, lock_timeout) as con:
        con.execute(f"CREATE TEMP TABLE _rt_sel AS {run_sql}", params)
        run_rows = con.sql("SELECT * FROM _rt_sel ORDER BY created_at_ms, run_id").to_arrow_table()
        # Every run selected: no join to find their events (a fifth of a full reload's query).
        # An event whose run has no row is then read too, and left out below, as the join would.
        join = "SEMI JOIN _rt_sel s ON e.run_id = s.run_id " if params else ""
        events = con.sql(
            "SELECT e.run_id, e.sequence, e.timestamp_ms, e.type, e.event::VARCHAR AS event "
            f"FROM run_events e {join}ORDER BY e.run_id, e.sequence"
        ).to_arrow_table()
        rows: list[dict[str, Any]] = run_rows.to_pylist()
        snapshots = [snapshot_from_row(r) for r in rows]
        with gc_paused(promote=True):
            by_run = build_event_records(events)
            out: list[RunRecord] = []
            for snap in snapshots:
                evs = by_run.get(snap.id, [])
                if snap.event_count != len(evs):
                    snap = snap.model_copy(update={"event_count": len(evs)})
                out.append(RunRecord.model_construct(snapshot=snap, events=evs))
    return out


def list_run_ids(
    path: str | os.PathLike[str] = "runtrace.duckdb",
    *,
    since_ms: int | None = None,
    lock_timeout: float = 10.0,
) -> list[str]:
    """The ids of the stored runs, oldest first (:func:`load_records`' order), without events.

    ``since_ms`` keeps runs created at or after it. Cheap even for a big file, so a reader can
    hand slices of it to ``load_records(path, run_ids=...)`` instead of loading every event.
    """
    with reading(path, lock_timeout) as con:
        rows = con.execute(
            "SELECT run_id FROM runs WHERE ($1::BIGINT IS NULL OR created_at_ms >= $1) "
            "ORDER BY created_at_ms, run_id",
            [since_ms],
        ).fetchall()
    return [run_id for (run_id,) in rows]
