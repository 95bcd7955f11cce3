"""Import of JSON-lines event streams recorded elsewhere, in the reference wire format.

One object a line: ``{"run_id": str, "session_id": str, "timestamp_ms": int, "event": {...}}``.
A run's events are put in time order (line order breaks ties: streams merged from several
producers need not be sorted), which gives their ``sequence``; each run's snapshot is rebuilt by
applying the status rules to its events, as the store would have. The import is all or
nothing: the whole stream is validated first, and a bad line raises
:class:`~runtrace.errors.JsonlImportError` naming its line number, with nothing written. Runs
already in the file are skipped and reported, so importing a file twice changes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from pydantic import ValidationError

from .. import runs
from ..errors import JsonlImportError
from ..events import parse_event
from ..runs import MAX_MS, RunEventRecord, RunRecord, RunSnapshot
from .read import reading
from .write import write_records

_FIELDS = {"run_id": str, "session_id": str, "timestamp_ms": int}


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote, and the run ids it skipped as already stored."""

    runs: int
    events: int
    skipped: list[str]


Progress = Callable[[int, int], None]
"""A progress callback: ``(done, total)``, here bytes of the stream read and validated."""

_PROGRESS_EVERY = 1 << 20
"""Bytes between two progress calls: a call per line would cost more than the line."""


def _size(source: object) -> int:
    """The stream's size in bytes from here on, or 0 when it is not a regular file."""
    if isinstance(source, (str, os.PathLike)):
        return os.stat(source).st_size
    try:
        fileno = source.fileno()  # type: ignore[attr-defined]
        size = os.fstat(fileno).st_size
        position = source.tell()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return 0
    return max(0, int(size) - int(position))


def _lines(
    source: str | os.PathLike[str] | IO[str] | IO[bytes] | Iterable[str],
) -> Iterator[str | bytes]:
    """The stream's lines, bytes left undecoded so a bad one is named by its line number."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            yield from fh
    else:
        yield from source


def read_jsonl(
    source: str | os.PathLike[str] | IO[str] | IO[bytes] | Iterable[str],
    *,
    progress: Progress | None = None,
) -> tuple[list[RunRecord], dict[str, int]]:
    """Parse and validate a stream into RunRecords; returns them and each run's first line.

    Blank lines are skipped. Raises :class:`JsonlImportError` on the first bad line.
    ``progress(done, total)`` hears the bytes read so far, about every MiB, and last
    ``done == total``; ``total`` is the file's size (the bytes read, for a stream of unknown
    length).
    """
    records, firsts, done = _read(source, progress)
    if progress is not None:
        progress(done, done)
    return records, firsts


def _read(
    source: str | os.PathLike[str] | IO[str] | IO[bytes] | Iterable[str],
    progress: Progress | None,
) -> tuple[list[RunRecord], dict[str, int], int]:
    lines: dict[str, list[tuple[int, int, Any]]] = {}
    sessions: dict[str, tuple[str, int]] = {}
    total = _size(source) if progress is not None else 0
    done = reported = 0
    for number, line in enumerate(_lines(source), start=1):
        if progress is not None:
            done += len(line) if isinstance(line, bytes) else len(line.encode("utf-8", "replace"))
            if done - reported >= _PROGRESS_EVERY:
                progress(done, max(total, done))
                reported = done
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise JsonlImportError(
                    f"not valid UTF-8 (byte {exc.start + 1} of the line)", line=number
                ) from None
        if not line.strip():
            continue
        try:
            obj: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JsonlImportError(f"not valid JSON: {exc}", line=number) from None
        if not isinstance(obj, dict):
            raise JsonlImportError("expected a JSON object", line=number)
        for name, kind in _FIELDS.items():
            value = obj.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise JsonlImportError(
                    f"field {name!r} must be a {kind.__name__}, got {value!r:.80}", line=number
                )
        if not 0 <= obj["timestamp_ms"] < MAX_MS:
            raise JsonlImportError(
                f"field 'timestamp_ms' must be epoch milliseconds in [0, {MAX_MS}) "
                f"(up to the year 2262), got {obj['timestamp_ms']!r:.80}",
                line=number,
            )
        if not isinstance(obj.get("event"), dict):
            raise JsonlImportError("field 'event' must be a JSON object", line=number)
        try:
            event = parse_event(obj["event"])
        except ValidationError as exc:
            raise JsonlImportError(f"invalid event: {exc}", line=number) from None
        run_id, session_id = obj["run_id"], obj["session_id"]
        known = sessions.setdefault(run_id, (session_id, number))
        if known[0] != session_id:
            raise JsonlImportError(
                f"run {run_id!r:.200} has session_id {known[0]!r:.200} on line {known[1]} "
                f"but {session_id!r:.200} here",
                line=number,
            )
        lines.setdefault(run_id, []).append((obj["timestamp_ms"], number, event))
    records = []
    for run_id, entries in lines.items():
        entries.sort(key=lambda e: (e[0], e[1]))
        first_at = entries[0][0]
        snap = RunSnapshot(
            id=run_id,
            session_id=sessions[run_id][0],
            created_at_ms=first_at,
            updated_at_ms=first_at,
        )
        run_events: list[RunEventRecord] = []
        for at, _, event in entries:
            run_events.append(
                RunEventRecord.model_construct(
                    sequence=len(run_events), timestamp_ms=at, event=event
                )
            )
            snap = runs.apply_event(snap, event, at_ms=at)
        if snap.status.is_terminal:  # ended by its last terminal event
            snap = runs.finish(snap, at_ms=snap.updated_at_ms)
        records.append(RunRecord(snapshot=snap, events=run_events))
    firsts = {run_id: first for run_id, (_, first) in sessions.items()}
    return records, firsts, done


def import_jsonl(
    source: str | os.PathLike[str] | IO[str] | IO[bytes] | Iterable[str],
    path: str | os.PathLike[str] = "runtrace.duckdb",
    *,
    lock_timeout: float = 10.0,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a JSON-lines event stream into the runtrace file at ``path``, all or nothing.

    ``source`` is a path, an open file or an iterable of lines. Runs already in the file are
    skipped (listed in the result). Imported runs have no owning process, so
    :func:`~runtrace.duckdb.recover_interrupted` leaves the unfinished ones alone.
    ``progress(done, total)`` hears the bytes read and validated (about every MiB); the last
    call, ``done == total``, comes once the runs are written.
    """
    records, _, read = _read(source, progress)
    skipped: list[str] = []
    if os.path.exists(path) and records:
        with reading(path, lock_timeout) as con:
            found = con.sql(
                "SELECT run_id FROM runs WHERE list_contains(?, run_id)",
                params=[[r.snapshot.id for r in records]],
            ).fetchall()
        stored = {run_id for (run_id,) in found}
        skipped = sorted(stored)
        records = [r for r in records if r.snapshot.id not in stored]
    written = write_records(path, records, lock_timeout=lock_timeout) if records else 0
    if progress is not None:
        progress(read, read)
    return ImportResult(runs=len(records), events=written, skipped=skipped)
