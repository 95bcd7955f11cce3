"""The runtrace DuckDB schema: tables, the typed-column SQL, version checks and migration.

Other modules (queries, CLI, notebooks) read these tables by name, so names never change; a new
schema version may only add tables or columns, which is what makes :func:`migrate` a matter of
creating what is missing.
"""

from __future__ import annotations

from typing import Final

import duckdb
import pyarrow as pa

from ..errors import DatabaseError, SchemaVersionError
from .database import check_path, transaction

SCHEMA_VERSION: Final = 1
"""Version this runtrace writes. Files with a larger one are refused; smaller ones migrated."""

RUN_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("run_id", "VARCHAR PRIMARY KEY"),
    ("session_id", "VARCHAR"),
    ("agent_name", "VARCHAR"),
    ("status", "VARCHAR"),
    ("prompt", "VARCHAR"),
    ("result_text", "VARCHAR"),
    ("error", "VARCHAR"),
    ("event_count", "BIGINT"),
    ("created_at_ms", "BIGINT"),
    ("updated_at_ms", "BIGINT"),
    ("ended_at_ms", "BIGINT"),
    ("duration_ms", "BIGINT"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"),
    ("attributes", "JSON"),
    ("owner_host", "VARCHAR"),
    ("owner_pid", "INTEGER"),
    ("overflow", "JSON"),
)

EVENT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("run_id", "VARCHAR"),
    ("sequence", "BIGINT"),
    ("timestamp_ms", "BIGINT"),
    ("type", "VARCHAR"),
    ("event", "JSON"),
    ("tool_name", "VARCHAR"),
    ("tool_call_id", "VARCHAR"),
    ("exit_code", "BIGINT"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("error_message", "VARCHAR"),
)

RUN_JSON_COLUMNS: Final = frozenset(name for name, decl in RUN_COLUMNS if decl == "JSON")

RUNS_AS_TEXT: Final = (
    "SELECT * REPLACE (attributes::VARCHAR AS attributes, overflow::VARCHAR AS overflow)"
)
"""Select-list prefix reading ``runs`` with JSON columns as text (Arrow-friendly)."""

SEGMENTS_TABLE: Final = "runtrace_segments"
"""Names of segment files already compacted into the file: makes compaction exactly-once."""

TERMINAL_STATUS_VALUES: Final = ("completed", "failed", "cancelled")

_TABLES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "runtrace_meta": (("key", "VARCHAR PRIMARY KEY"), ("value", "VARCHAR")),
    "runs": RUN_COLUMNS,
    "run_events": EVENT_COLUMNS,
    SEGMENTS_TABLE: (("name", "VARCHAR PRIMARY KEY"), ("compacted_at_ms", "BIGINT")),
}


def arrow_schema(columns: tuple[tuple[str, str], ...]) -> pa.Schema:
    """The Arrow schema of rows with these DuckDB columns (JSON travels as text)."""
    types = {"VARCHAR": pa.string(), "JSON": pa.string(), "BIGINT": pa.int64()}
    types["INTEGER"] = pa.int32()
    return pa.schema([(name, types[decl.split()[0]]) for name, decl in columns])


# What the sink hands DuckDB (or a segment file): the runs rows complete, the events rows
# without their typed columns, which DuckDB derives from the JSON in one vectorised pass.
RUN_BATCH_SCHEMA: Final = arrow_schema(RUN_COLUMNS)
EVENT_BATCH_SCHEMA: Final = arrow_schema(EVENT_COLUMNS[:5])
EVENT_ROW_SCHEMA: Final = arrow_schema(EVENT_COLUMNS)
"""All of a ``run_events`` row, typed columns included (what a segment file holds)."""

_TOOL_EVENTS = "('tool_start', 'tool_execution_start', 'tool_output_delta', 'tool_end')"
_TOOL_ID_EVENTS = (
    "('tool_start', 'tool_input_delta', 'tool_execution_start', 'tool_output_delta', 'tool_end')"
)
_TOOL_REF_EVENTS = (
    "('confirmation_required', 'confirmation_received', 'confirmation_timeout', "
    "'permission_denied')"
)
_SUBAGENT_EVENTS = "('subagent_start', 'subagent_progress', 'subagent_end')"
_USAGE_EVENTS = "('turn_end', 'agent_end')"
_TYPED_EVENTS = (
    "('tool_start', 'tool_input_delta', 'tool_execution_start', 'tool_output_delta', "
    "'tool_end', 'confirmation_required', 'confirmation_received', 'confirmation_timeout', "
    "'permission_denied', 'subagent_start', 'subagent_progress', 'subagent_end', 'turn_end', "
    "'agent_end', 'error', 'persistence_failed')"
)
# JSON paths read from events, parsed once per row into one list.
_PATHS = (
    "$.name",
    "$.tool_name",
    "$.agent",
    "$.id",
    "$.tool_id",
    "$.task_id",
    "$.exit_code",
    "$.usage.prompt_tokens",
    "$.usage.completion_tokens",
    "$.message",
    "$.error_kind",
    "$.reason",
    "$.error",
)


def events_select_sql(source: str, *, json_type: str = "JSON") -> str:
    """SELECT producing ``run_events`` rows (table column order) from a batch relation.

    ``source`` is a relation name chosen by runtrace (never user input); the batch has the
    columns of :data:`EVENT_BATCH_SCHEMA`. Typed columns use ``TRY_CAST`` so that an integer
    too big for BIGINT leaves the column NULL instead of failing the batch; the full value stays
    in ``event``. ``json_type`` is ``VARCHAR`` for Parquet segments, whose readers cast back.
    """
    paths = ", ".join(f"'{p}'" for p in _PATHS)
    at = {name: i + 1 for i, name in enumerate(_PATHS)}
    return f"""
SELECT
  b.run_id, b.sequence, b.timestamp_ms, b.type, b.event::{json_type} AS event,
  CASE
    WHEN b.type IN {_TOOL_EVENTS} THEN x[{at["$.name"]}]
    WHEN b.type IN ('confirmation_required', 'permission_denied') THEN x[{at["$.tool_name"]}]
    WHEN b.type IN ('subagent_start', 'subagent_end') THEN x[{at["$.agent"]}]
  END AS tool_name,
  CASE
    WHEN b.type IN {_TOOL_ID_EVENTS} THEN x[{at["$.id"]}]
    WHEN b.type IN {_TOOL_REF_EVENTS} THEN x[{at["$.tool_id"]}]
    WHEN b.type IN {_SUBAGENT_EVENTS} THEN x[{at["$.task_id"]}]
  END AS tool_call_id,
  CASE WHEN b.type = 'tool_end' THEN TRY_CAST(x[{at["$.exit_code"]}] AS BIGINT) END AS exit_code,
  CASE WHEN b.type IN {_USAGE_EVENTS}
    THEN TRY_CAST(x[{at["$.usage.prompt_tokens"]}] AS BIGINT) END AS input_tokens,
  CASE WHEN b.type IN {_USAGE_EVENTS}
    THEN TRY_CAST(x[{at["$.usage.completion_tokens"]}] AS BIGINT) END AS output_tokens,
  CASE
    WHEN b.type = 'error' THEN x[{at["$.message"]}]
    WHEN b.type = 'tool_end' THEN x[{at["$.error_kind"]}]
    WHEN b.type = 'permission_denied' THEN x[{at["$.reason"]}]
    WHEN b.type = 'persistence_failed' THEN x[{at["$.error"]}]
  END AS error_message
FROM (
  SELECT *, CASE WHEN type IN {_TYPED_EVENTS}
    THEN json_extract_string(event, [{paths}]) END AS x
  FROM {source}
) AS b
"""


def runs_select_sql(source: str, *, json_type: str = "JSON") -> str:
    """SELECT producing ``runs`` rows (table column order) from a batch relation."""
    names = [name for name, _ in RUN_COLUMNS]
    cols = [f"{n}::{json_type} AS {n}" if n in RUN_JSON_COLUMNS else n for n in names]
    return f"SELECT {', '.join(cols)} FROM {source}"


def run_version_sql(table: str) -> str:
    """The version of a ``runs`` row, ordered like the sink orders a run's snapshots.

    ``(event_count, updated_at_ms, status is terminal, ended)``: more events first, then the
    later update (the core never moves ``updated_at_ms`` backwards), then, on a tie, the
    snapshot that ended the run. An overflowed (NULL) count or time sorts last.
    """
    big = 2**63 - 1
    return (
        f"(COALESCE({table}.event_count, {big}), COALESCE({table}.updated_at_ms, {big}), "
        f"{table}.status IN {TERMINAL_STATUS_VALUES!r}, {table}.ended_at_ms IS NOT NULL)"
    )


def runs_upsert_sql(select: str) -> str:
    """Upsert ``runs`` rows from ``select``, never replacing a row by an older version of it.

    A row replaces the stored one only when its :func:`run_version_sql` is at least the
    stored one's, so a stale snapshot (a race between agent threads, a late segment) can
    never turn a finished run back into a running one. ``select`` must give each run once.
    """
    names = [name for name, _ in RUN_COLUMNS]
    sets = ", ".join(f"{n} = excluded.{n}" for n in names if n != "run_id")
    return (
        f"INSERT INTO runs {select} ON CONFLICT (run_id) DO UPDATE SET {sets} "
        f"WHERE {run_version_sql('excluded')} >= {run_version_sql('runs')}"
    )


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier: in double quotes, inner double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def _create_sql(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ", ".join(f"{name} {decl}" for name, decl in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body})"


def _existing_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = ? AND table_schema = 'main'",
        [catalog],
    ).fetchall()
    return {name for (name,) in rows}


def read_schema_version(con: duckdb.DuckDBPyConnection, catalog: str) -> int | None:
    """The file's schema version; None when it has no runtrace tables at all (a new file).

    A file with ``runs`` or ``run_events`` but no ``runtrace_meta`` is treated as version 0.
    """
    tables = _existing_tables(con, catalog)
    if "runtrace_meta" not in tables:
        return 0 if tables & {"runs", "run_events"} else None
    row = con.execute(
        f"SELECT value FROM {quote_identifier(catalog)}.main.runtrace_meta "
        "WHERE key = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise DatabaseError(f"unreadable schema_version {row[0]!r} in runtrace_meta") from None


def check_version(version: int | None, path: str) -> None:
    """Refuse a file written by a newer runtrace, before anything touches it."""
    if version is not None and version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has runtrace schema version {version}; this runtrace reads up to "
            f"version {SCHEMA_VERSION}. Upgrade runtrace to open it."
        )


ATTACHED: Final = "db"
"""The catalog name a reader attaches the file under (``db.main.runs`` is the file alone)."""


def attach_read_only(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Attach the file at ``path`` read-only to ``con`` as :data:`ATTACHED`."""
    check_path(path)
    con.execute(f"ATTACH ? AS {ATTACHED} (READ_ONLY)", [path])


def require_current(con: duckdb.DuckDBPyConnection, path: str, outdated: str) -> None:
    """Check the attached file's schema version: too new raises ``SchemaVersionError``; none
    or an older one raises ``DatabaseError`` with ``outdated`` (``{path}``, ``{version}``)."""
    version = read_schema_version(con, ATTACHED)
    check_version(version, path)
    if version is None or version < SCHEMA_VERSION:
        raise DatabaseError(outdated.format(path=path, version=version))


def _complete(con: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    present = set(
        con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = ? AND table_schema = 'main'",
            [catalog],
        ).fetchall()
    )
    return all((t, c) in present for t, cols in _TABLES.items() for c, _ in cols)


def ensure_schema(con: duckdb.DuckDBPyConnection, path: str) -> int | None:
    """Create or migrate the schema on a read-write connection; returns the version found.

    Migration is additive: tables and columns that are missing are created, then the version
    is stamped, all in one transaction so a failure leaves the file as it was.
    """
    catalog = con.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
    version = read_schema_version(con, catalog)
    check_version(version, path)
    if version == SCHEMA_VERSION and _complete(con, catalog):
        return version
    with transaction(con):
        for table, columns in _TABLES.items():
            con.execute(_create_sql(table, columns))
            present = {
                name
                for (name,) in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_catalog = ? AND table_schema = 'main' AND table_name = ?",
                    [catalog, table],
                ).fetchall()
            }
            for name, decl in columns:
                if name not in present:
                    col_type = decl.replace(" PRIMARY KEY", "")
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {col_type}")
        con.execute(
            "INSERT OR REPLACE INTO runtrace_meta VALUES ('schema_version', ?)",
            [str(SCHEMA_VERSION)],
        )
    return version
