"""Looking after a database: repairing what dead processes left, exporting it as Parquet.

(:func:`~runtrace.duckdb.compact`, the third chore, lives with the segments it moves.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from ..runs import RunSnapshot, RunStatus
from .database import HOST, pid_alive
from .read import reading
from .rows import snapshot_from_row
from .schema import RUNS_AS_TEXT
from .segments import compacting_transaction

INTERRUPTED_ERROR: Final = "process exited before the run ended"
"""The error :func:`recover_interrupted` gives the runs a dead process left unfinished."""

EXPORT_BATCH_ROWS: Final = 100_000
"""Rows :func:`export_parquet` reads at a time: bounds memory on a big file."""

_NON_TERMINAL: Final = [s.value for s in RunStatus if not s.is_terminal]


def recover_interrupted(
    path: str | os.PathLike[str] = "runtrace.duckdb",
    *,
    error: str = INTERRUPTED_ERROR,
    lock_timeout: float = 10.0,
) -> list[RunSnapshot]:
    """Mark failed the unfinished runs whose owning process on this host has exited.

    Runs owned by a live process, by another host, or by no process (imported) are left
    alone, as are terminal runs (cancelled ones included). The end time of a recovered run
    is its last update. Returns the recovered snapshots. Segments are compacted first so
    that the dead process's last flushes count.
    """
    path = os.fspath(path)
    recovered: list[RunSnapshot] = []
    with compacting_transaction(path, lock_timeout) as (con, _):
        owners = con.execute(
            "SELECT DISTINCT owner_pid FROM runs WHERE list_contains(?, status) "
            "AND owner_host = ? AND owner_pid IS NOT NULL",
            [_NON_TERMINAL, HOST],
        ).fetchall()
        dead = [pid for (pid,) in owners if not pid_alive(pid)]
        if dead:
            ids = [
                rid
                for (rid,) in con.execute(
                    "SELECT run_id FROM runs WHERE list_contains(?, status) "
                    "AND owner_host = ? AND list_contains(?, owner_pid)",
                    [_NON_TERMINAL, HOST, dead],
                ).fetchall()
            ]
            con.execute(
                "UPDATE runs SET status = 'failed', error = ?, "
                "ended_at_ms = updated_at_ms, duration_ms = updated_at_ms - created_at_ms "
                "WHERE list_contains(?, run_id)",
                [error, ids],
            )
            rows: list[dict[str, Any]] = (
                con.sql(
                    RUNS_AS_TEXT
                    + " FROM runs WHERE list_contains(?, run_id) ORDER BY created_at_ms",
                    params=[ids],
                )
                .to_arrow_table()
                .to_pylist()
            )
            recovered = [snapshot_from_row(r) for r in rows]
    return recovered


def export_parquet(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    lock_timeout: float = 10.0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write ``runs`` and ``run_events`` as Parquet under ``out_dir``, hive-partitioned by day.

    Layout: ``out_dir/runs/day=YYYY-MM-DD/*.parquet`` (day the run was created, UTC) and
    ``out_dir/run_events/day=YYYY-MM-DD/*.parquet`` (day of the event). File names carry the
    host and a unique token, so many machines can export into one bucket without clobbering.
    Returns the row count per table. ``progress(done, total)`` hears the rows of both tables
    read so far, every batch of :data:`EXPORT_BATCH_ROWS`, and last ``done == total``.
    """
    import pyarrow.dataset as pads  # here: loading it costs every process ~40 MB of RSS

    out = Path(out_dir)
    token = f"{HOST}-{os.getpid()}-{time.time_ns()}"
    counts: dict[str, int] = {}
    queries = {
        "runs": RUNS_AS_TEXT + ", strftime(epoch_ms(created_at_ms), '%Y-%m-%d') AS day FROM runs",
        "run_events": "SELECT * REPLACE (event::VARCHAR AS event), "
        "strftime(epoch_ms(timestamp_ms), '%Y-%m-%d') AS day FROM run_events",
    }
    done = 0
    with reading(path, lock_timeout) as con:
        total = 0
        if progress is not None:  # one read: the counts agree with what the export reads
            ((total,),) = con.execute(
                "SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM run_events)"
            ).fetchall()
        for table, sql in queries.items():
            reader = con.sql(sql).to_arrow_reader(EXPORT_BATCH_ROWS)
            count = 0

            def counted(r: pa.RecordBatchReader = reader) -> Iterator[pa.RecordBatch]:
                nonlocal count, done
                for b in r:
                    count += b.num_rows
                    done += b.num_rows
                    if progress is not None:
                        progress(done, max(total, done))
                    yield b

            pads.write_dataset(
                counted(),
                out / table,
                schema=reader.schema,
                format="parquet",
                partitioning=pads.partitioning(pa.schema([("day", pa.string())]), flavor="hive"),
                basename_template=f"{token}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
            )
            counts[table] = count
    if progress is not None:
        progress(done, done)
    return counts
