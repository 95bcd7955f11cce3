"""Rows: snapshots and event records as Arrow tables, and back; the order of a run's snapshots.

Everything that turns runtrace objects into the columns of ``runs`` and ``run_events`` (and a
``runs`` row back into a :class:`~runtrace.runs.RunSnapshot`) is here, so the writer, the bulk
write, the readers and recovery agree on one mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

import pyarrow as pa
import pydantic_core

from ..runs import RunEventRecord, RunSnapshot, RunStatus
from .fastload import gc_paused
from .schema import EVENT_BATCH_SCHEMA, RUN_BATCH_SCHEMA

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_INT_FIELDS: Final = (
    "event_count",
    "created_at_ms",
    "updated_at_ms",
    "ended_at_ms",
    "duration_ms",
    "input_tokens",
    "output_tokens",
)

Owner = tuple[str, int]
"""(host, pid) of the process that records a run: what recovery checks."""

EventColumns = tuple[list[str], list[int], list[int], list[str], list[bytes]]
"""run ids, sequences, timestamps, types and wire JSON of a batch's events, column by column."""


def new_event_columns() -> EventColumns:
    return [], [], [], [], []


_RUN_ATTRS: Final = (
    "id",
    "session_id",
    "agent_name",
    "status",
    "prompt",
    "result_text",
    "error",
    "event_count",
    "created_at_ms",
    "updated_at_ms",
    "ended_at_ms",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "trace_id",
    "span_id",
    "attributes",
)
"""The snapshot attributes behind the ``runs`` columns, in table order (``id`` is run_id)."""
_get_run_attrs = attrgetter(*_RUN_ATTRS)


def runs_table(snapshots: Iterable[RunSnapshot], *, owner: Owner | None) -> pa.Table:
    """Arrow rows for ``runs`` (attributes as JSON text); ``owner`` is (host, pid) or None.

    Built column by column. An integer the store accepted but BIGINT cannot hold is NULL in
    its column and kept exact in ``overflow``.
    """
    rows = list(map(_get_run_attrs, snapshots))
    n = len(rows)
    columns: dict[str, list[Any]] = {name: [] for name in _RUN_ATTRS}
    if rows:
        by_column = zip(*rows, strict=True)
        columns = {name: list(col) for name, col in zip(_RUN_ATTRS, by_column, strict=True)}
    columns["run_id"] = columns.pop("id")
    columns["status"] = [status.value for status in columns["status"]]
    columns["attributes"] = [pydantic_core.to_json(dict(a)) for a in columns["attributes"]]
    big: dict[int, dict[str, str]] = {}
    for name in _INT_FIELDS:
        values = columns[name]
        for i, v in enumerate(values):
            if v is not None and not INT64_MIN <= v <= INT64_MAX:
                big.setdefault(i, {})[name] = str(v)
                values[i] = None
    overflow: list[bytes | None] = [None] * n
    for i, kept in big.items():
        overflow[i] = pydantic_core.to_json(kept)
    columns["overflow"] = overflow
    host, pid = owner if owner is not None else (None, None)
    columns["owner_host"] = [host] * n
    columns["owner_pid"] = [pid] * n
    arrays = [
        pa.array(columns[f.name], pa.binary()).view(pa.string())  # pydantic's JSON: UTF-8
        if f.name in ("attributes", "overflow")
        else pa.array(columns[f.name], f.type)
        for f in RUN_BATCH_SCHEMA
    ]
    return pa.table(arrays, schema=RUN_BATCH_SCHEMA)


def events_table(run_ids: Sequence[str], records: Sequence[RunEventRecord]) -> pa.Table:
    """Arrow rows for ``run_events`` minus the typed columns, which DuckDB derives.

    Each event is serialised once, to its wire JSON.
    """
    columns = new_event_columns()
    ids, seqs, stamps, types, texts = columns
    ids.extend(run_ids)
    add_seq, add_stamp, add_type, add_text = seqs.append, stamps.append, types.append, texts.append
    with gc_paused():
        for rec in records:
            event = rec.event
            add_seq(rec.sequence)
            add_stamp(rec.timestamp_ms)
            add_type(event.type)
            add_text(event.__pydantic_serializer__.to_json(event))
    return events_arrow(columns)


def events_arrow(columns: EventColumns) -> pa.Table:
    """The batch table of :data:`~runtrace.duckdb.schema.EVENT_BATCH_SCHEMA` from columns."""
    ids, seqs, stamps, types, texts = columns
    return pa.table(
        [
            pa.array(ids, pa.string()),
            pa.array(seqs, pa.int64()),
            pa.array(stamps, pa.int64()),
            pa.array(types, pa.string()),
            # pydantic's JSON is UTF-8 (it refuses lone surrogates): no second validation.
            pa.array(texts, pa.binary()).view(pa.string()),
        ],
        schema=EVENT_BATCH_SCHEMA,
    )


def snapshot_from_row(row: dict[str, Any]) -> RunSnapshot:
    """The snapshot a ``runs`` row (read with ``RUNS_AS_TEXT``) stores."""
    attrs = row["attributes"]
    if row.get("overflow"):
        row.update({k: int(v) for k, v in pydantic_core.from_json(row["overflow"]).items()})
    return RunSnapshot(
        id=row["run_id"],
        session_id=row["session_id"],
        status=RunStatus(row["status"]),
        prompt=row["prompt"] or "",
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        result_text=row["result_text"],
        error=row["error"],
        event_count=row["event_count"] or 0,
        agent_name=row["agent_name"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        ended_at_ms=row["ended_at_ms"],
        input_tokens=row["input_tokens"] or 0,
        output_tokens=row["output_tokens"] or 0,
        attributes=pydantic_core.from_json(attrs) if attrs else {},
    )


def latest_runs(runs: pa.Table) -> pa.Table:
    """Keep each run's last row: the batches are in order, so the last is the newest."""
    if runs.num_rows <= 1:
        return runs
    ids = runs.column("run_id").to_pylist()
    last = {run_id: i for i, run_id in enumerate(ids)}
    if len(last) == len(ids):
        return runs
    return runs.take(sorted(last.values()))


Version = tuple[int, int, bool, bool]


def version(s: RunSnapshot) -> Version:
    """The order of a run's snapshots: more events, later update, then the one that ended it.

    The core never moves ``updated_at_ms`` backwards, so a cancel or end that happened at the
    same millisecond as an event wins the tie. Same order as
    :func:`~runtrace.duckdb.schema.run_version_sql`.
    """
    return (s.event_count, s.updated_at_ms, s.status.is_terminal, s.ended_at_ms is not None)


def newer(a: RunSnapshot, b: RunSnapshot) -> bool:
    return version(a) > version(b)


@dataclass
class Batch:
    """One unit of writing: new ``run_events`` rows and the ``runs`` rows to upsert."""

    events: pa.Table | None
    runs: pa.Table | None
    attempts: int = 0
    replaces: list[str] | None = None
    """Run ids whose stored rows and events this batch replaces whole (``write_records``)."""
    ended: list[str] | None = None
    """Run ids whose final snapshot (ended) this batch's ``runs`` rows carry."""

    @property
    def event_rows(self) -> int:
        return 0 if self.events is None else int(self.events.num_rows)

    @property
    def run_rows(self) -> int:
        return 0 if self.runs is None else int(self.runs.num_rows)
