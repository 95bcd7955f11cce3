"""Hostile values through every named query's parameters (runtrace.duckdb.run_query).

Strings (SQL-like, placeholders, NUL, newlines, huge, unicode) are bound verbatim: a run, session
or tool stored under that very string is found by it and nothing else is. Lone surrogates, values
of the wrong type and numbers out of range raise QueryError. The file is a real DuckDB file
written once for the module; no query changes its bytes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtrace import connect
from runtrace.duckdb import list_queries, run_query, write_records
from runtrace.errors import QueryError
from runtrace.events import parse_event
from runtrace.runs import RunEventRecord, RunRecord, RunSnapshot, RunStatus

STORED = [
    "'; DROP TABLE runs; --",
    "' OR '1'='1",
    '"; DELETE FROM run_events; --',
    "%s",
    "%(name)s",
    "?",
    "$1",
    "$run_id",
    "a\x00b",
    "line\nbreak",
    "back\\slash",
    "é日本語🙂",
    "\u202eright-to-left",
    "",
    " ",
    "NULL",
    "%",
    "_",
    "x" * 100_000,
]
"""Each is a run id, its session id, and the name of a tool that failed in it."""

QUERIES = {q.name: q for q in list_queries()}
TEXT_PARAMS = sorted(
    (q.name, p.name) for q in QUERIES.values() for p in q.params if p.type == "VARCHAR"
)
NUMBER_PARAMS = sorted(
    (q.name, p.name, p.type) for q in QUERIES.values() for p in q.params if p.type != "VARCHAR"
)
REQUIRED = {
    name: {p.name: ("x" if p.type == "VARCHAR" else 1) for p in q.params if p.required}
    for name, q in QUERIES.items()
}

strings = st.one_of(
    st.sampled_from(STORED),
    st.text(max_size=40),
    st.lists(st.sampled_from([*STORED[:12], "x"]), max_size=4).map("".join),
)
common = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("hostile") / "queries.duckdb"
    records = []
    for i, value in enumerate(STORED):
        at = 1_000_000 + i * 10
        events = [
            {"type": "agent_start", "prompt": value},
            {"type": "tool_start", "id": "c", "name": value},
            {"type": "tool_end", "id": "c", "name": value, "output": value, "exit_code": 1},
            {"type": "error", "message": value},
        ]
        records.append(
            RunRecord(
                snapshot=RunSnapshot(
                    id=value,
                    session_id=value,
                    agent_name=value,
                    status=RunStatus.FAILED,
                    error=value,
                    event_count=len(events),
                    created_at_ms=at,
                    updated_at_ms=at + 3,
                    ended_at_ms=at + 3,
                    duration_ms=3,
                ),
                events=[
                    RunEventRecord(sequence=n, timestamp_ms=at + n, event=parse_event(e))
                    for n, e in enumerate(events)
                ],
            )
        )
    write_records(path, records)
    digest = _digest(path)
    yield path
    assert _digest(path) == digest, "a query changed the file"


@pytest.fixture(autouse=True)
def unchanged(hostile_db: Path) -> Iterator[None]:
    before = _digest(hostile_db)
    yield
    assert _digest(hostile_db) == before, "a query changed the file"


@pytest.fixture(scope="module")
def con(hostile_db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The read-only view the CLI and notebooks use, opened once (each open costs ~50 ms)."""
    connection = connect(hostile_db)
    yield connection
    connection.close()


@common
@given(value=strings)
def test_run_and_session_parameters_find_exactly_the_run_stored_under_that_string(
    hostile_db: Path, value: str
) -> None:
    stored = value in STORED
    timeline = run_query(hostile_db, "run_timeline", {"run_id": value})
    assert timeline.num_rows == (4 if stored else 0)
    session = run_query(hostile_db, "session_timeline", {"session_id": value})
    assert set(session.column("run_id").to_pylist()) == ({value} if stored else set())
    listed = run_query(hostile_db, "list_runs", {"session_id": value, "limit": 100})
    assert listed.column("run_id").to_pylist() == ([value] if stored else [])
    failures = run_query(hostile_db, "tool_failures", {"tool_name": value})
    assert failures.column("tool_name").to_pylist() == ([value] if stored else [])


@common
@given(value=strings)
def test_every_text_parameter_of_every_query_binds_any_string(
    con: duckdb.DuckDBPyConnection, value: str
) -> None:
    for query, param in TEXT_PARAMS:
        params = {**REQUIRED[query], param: value}
        try:
            table = run_query(con, query, params)
        except QueryError as exc:  # only $bucket is parsed (as an interval), by DuckDB: named
            assert param == "bucket", (query, exc)
            assert str(exc).startswith("parameter $bucket must be INTERVAL: Conversion Error"), exc
        else:
            assert table.num_rows >= 0


def test_a_bad_interval_is_refused_naming_the_bucket_parameter(
    con: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(QueryError, match=r"\$bucket"):
        run_query(con, "outcome_rates_over_time", {"bucket": "line\nbreak"})


@pytest.mark.parametrize(("query", "param"), TEXT_PARAMS)
@pytest.mark.parametrize("value", ["\udcff", "run-\ud800", "\udc80\udcfe"])
def test_a_lone_surrogate_is_a_query_error(
    con: duckdb.DuckDBPyConnection, query: str, param: str, value: str
) -> None:
    with pytest.raises(QueryError, match="surrogate"):
        run_query(con, query, {**REQUIRED[query], param: value})


ints = st.one_of(
    st.integers(min_value=0, max_value=2**31 - 1),  # every number parameter's range
    st.sampled_from([0, 1, 2**31 - 1]),
)
junk = st.one_of(
    st.text(max_size=20).filter(lambda t: not _is_int(t)),
    st.sampled_from(["1e3", "0x10", "1.5", "", " ", "'; DROP TABLE runs; --", "NULL"]),
    st.sampled_from([True, False, math.nan]),
)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


@common
@given(value=ints)
def test_numbers_in_range_are_accepted_by_every_number_parameter(
    con: duckdb.DuckDBPyConnection, value: int
) -> None:
    for query, param, _ in NUMBER_PARAMS:
        for given_value in (value, str(value)):
            table = run_query(con, query, {**REQUIRED[query], param: given_value})
            assert table.num_rows >= 0


@common
@given(value=junk)
def test_what_is_not_a_number_is_refused_naming_the_parameter(
    con: duckdb.DuckDBPyConnection, value: Any
) -> None:
    for query, param, _ in NUMBER_PARAMS:
        with pytest.raises(QueryError, match=rf"\${param}\b"):
            run_query(con, query, {**REQUIRED[query], param: value})


def test_an_unknown_parameter_name_is_refused_naming_it(con: duckdb.DuckDBPyConnection) -> None:
    for name in ["'; DROP TABLE runs; --", "$1", "a\x00b", "limit ", "x" * 1000]:
        for query in QUERIES:
            with pytest.raises(QueryError, match="has no parameter"):
                run_query(con, query, {**REQUIRED[query], name: "1"})


OUT_OF_RANGE = [
    pytest.param("list_runs", "limit", 2**70, id="limit-2**70"),
    pytest.param("list_runs", "limit", -1, id="limit-negative"),
    pytest.param("stuck_runs", "now_ms", -(2**63), id="now_ms-int64-min"),
    pytest.param("outcome_summary", "since_ms", 2**64, id="since_ms-2**64"),
    pytest.param("list_runs", "status", ["completed"], id="status-a-list"),
    pytest.param("list_runs", "status", b"failed", id="status-bytes"),
]


@pytest.mark.parametrize(("query", "param", "value"), OUT_OF_RANGE)
def test_out_of_range_numbers_and_non_text_values_are_refused_naming_the_parameter(
    con: duckdb.DuckDBPyConnection, query: str, param: str, value: Any
) -> None:
    with pytest.raises(QueryError, match=rf"\${param}\b"):
        run_query(con, query, {**REQUIRED[query], param: value})


def test_an_infinite_time_is_a_query_error(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(QueryError, match=r"\$since_ms"):
        run_query(con, "outcome_summary", {"since_ms": math.inf})
