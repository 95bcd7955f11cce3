"""The schema: typed columns derived from the events, versions refused or migrated."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from duckdb_helpers import EVENTS, record_run

from runtrace import DuckDBSink, RunStore, connect
from runtrace.duckdb import load_records
from runtrace.errors import SchemaVersionError
from runtrace.events import parse_event


def test_typed_columns_are_derived_from_the_events(db: Path) -> None:
    store = RunStore()
    with DuckDBSink(db) as sink:
        run_id = record_run(store, sink, EVENTS)
    con = connect(db)
    rows = con.execute(
        "SELECT type, tool_name, tool_call_id, exit_code, input_tokens, output_tokens, "
        "error_message FROM run_events WHERE run_id = ? ORDER BY sequence",
        [run_id],
    ).fetchall()
    assert rows[2] == ("tool_start", "bash", "t1", None, None, None, None)
    assert rows[3] == ("tool_end", "bash", "t1", 2, None, None, "nonzero_exit")
    assert rows[4] == ("turn_end", None, None, None, 11, 7, None)
    assert rows[5] == ("permission_denied", "rm", "t2", None, None, None, "no")
    assert rows[7] == ("agent_end", None, None, None, 20, 9, None)
    run = con.execute(
        "SELECT status, result_text, event_count, input_tokens, output_tokens, owner_pid "
        "FROM runs WHERE run_id = ?",
        [run_id],
    ).fetchone()
    assert run is not None
    assert run[:5] == ("completed", "done", len(EVENTS), 20, 9)
    assert run[5] > 0
    event_json = con.execute(
        "SELECT event FROM run_events WHERE run_id = ? AND sequence = 3", [run_id]
    ).fetchone()
    assert event_json is not None
    assert parse_event(event_json[0]) == store.events(run_id)[3].event
    con.close()


def test_opening_a_newer_schema_fails_clearly(db: Path) -> None:
    DuckDBSink(db).shutdown()
    con = duckdb.connect(str(db))
    con.execute("UPDATE runtrace_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaVersionError, match="version 99"):
        DuckDBSink(db)
    with pytest.raises(SchemaVersionError):
        load_records(db)


def test_an_older_schema_is_migrated_on_open(db: Path) -> None:
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, session_id VARCHAR)")
    con.execute("INSERT INTO runs VALUES ('old', 's')")
    con.execute("CREATE TABLE run_events (run_id VARCHAR, sequence BIGINT, event JSON)")
    con.close()
    DuckDBSink(db).shutdown()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT value FROM runtrace_meta").fetchone() == ("1",)
    columns = {r[0] for r in con.execute("DESCRIBE runs").fetchall()}
    assert {"owner_pid", "attributes", "duration_ms"} <= columns
    assert con.execute("SELECT run_id FROM runs").fetchall() == [("old",)]
    con.close()
