"""Hostile strings through every parameter of the ``runtrace`` command.

SQL-like text, format placeholders, NUL, lone surrogates (what a terminal's undecodable bytes
become), newlines, huge and unusual unicode go into run ids, session ids, statuses, query names,
query parameters (names and values), paths, --since, --endpoint, --header and every number. Each
either gives a clear error naming what was wrong (exit 1 or 2, a message, no traceback) or is
matched verbatim: a run stored under that very id or session is found by it. No read command
changes the file. The file is a real DuckDB file, written once for the module with runs whose
ids are the hostile strings themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otlp_receiver import Receiver

from runtrace.cli import main
from runtrace.cli.parser import MAX_LIMIT
from runtrace.duckdb import write_records
from runtrace.events import parse_event
from runtrace.runs import RunEventRecord, RunRecord, RunSnapshot

STORED = [
    "'; DROP TABLE runs; --",
    "' OR '1'='1",
    '"; DELETE FROM run_events; --',
    "%s",
    "%(run_id)s",
    "{run_id}",
    "?",
    "$1",
    "$run_id",
    "a\x00b",
    "\x00",
    "line\nbreak",
    "\r\n",
    "tab\there",
    "back\\slash",
    "é日本語🙂",
    "\u202eright-to-left",
    "\ufeffbom",
    " ",
    "-",
    "--",
    "-x",
    "=",
    "a=b",
    "NULL",
    "*",
    "%",
    "_",
    "x" * 100_000,
]
"""Run ids stored in the file (each run's session id is the same string): found verbatim."""

SURROGATES = ["\udcff", "run-\ud800", "\udc80\udcfe"]
"""Lone surrogates: how Python hands undecodable command-line bytes to a program."""

hostile = st.one_of(
    st.sampled_from(STORED),
    st.sampled_from(SURROGATES),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8", exclude_categories=[]), max_size=20),
    st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.lists(st.sampled_from([*STORED[:12], *SURROGATES, "x"]), max_size=4).map("".join),
)


@dataclass(frozen=True)
class Db:
    path: str
    digest: str


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    """The hostile runs, written once; every test leaves the bytes of the file as they were."""
    path = str(tmp_path_factory.mktemp("hostile") / "hostile.duckdb")
    records = [
        RunRecord(
            snapshot=RunSnapshot(
                id=value, session_id=value, created_at_ms=1_000 + i, updated_at_ms=1_000 + i
            ),
            events=[
                RunEventRecord(
                    sequence=0,
                    timestamp_ms=1_000 + i,
                    event=parse_event({"type": "agent_start", "prompt": value}),
                ),
                RunEventRecord(
                    sequence=1,
                    timestamp_ms=1_001 + i,
                    event=parse_event({"type": "tool_start", "id": value, "name": value}),
                ),
            ],
        )
        for i, value in enumerate(STORED)
    ]
    assert write_records(path, records) == 2 * len(STORED)
    result = Db(path, _digest(path))
    yield result
    assert _digest(path) == result.digest, "a read command changed the file"


@pytest.fixture(scope="module")
def cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Relative hostile paths land in a scratch directory."""
    here = tmp_path_factory.mktemp("cwd")
    before = os.getcwd()
    os.chdir(here)
    yield here
    os.chdir(before)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def unchanged(db: Db) -> Iterator[None]:
    """After every test, the file's bytes are what they were: reads never write."""
    yield
    assert _digest(db.path) == db.digest, "a read command changed the file"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def cli(*argv: str) -> Result:
    """``runtrace ARGV`` in this process: any exception but SystemExit fails the test (a
    traceback is what a user would see)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return Result(code, out.getvalue(), err.getvalue())


def refused(result: Result, *names: str) -> bool:
    """A clear refusal: exit 1 (one line) or 2 (argparse's usage and one error line), naming
    one of ``names`` (an option, or what the value is) in the error line."""
    if result.code not in (1, 2) or result.out:
        return False
    lines = result.err.strip().splitlines()
    error = lines[-1] if lines else ""
    if result.code == 1 and len(lines) != 1:
        return False
    return error.startswith("runtrace") and ": error: " in error and any(n in error for n in names)


def is_integer(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def has_surrogate(value: str) -> bool:
    """Text no UTF-8 column can hold."""
    return re.search("[\ud800-\udfff]", value) is not None


def unusable(value: str) -> bool:
    """What ``--option=VALUE`` refuses with the option named: lone surrogates, and ``--``,
    which argparse (3.11, 3.12) drops from ``--option=--``."""
    return value == "--" or has_surrogate(value)


common = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip


@common
@given(run_id=hostile)
def test_show_finds_a_stored_run_by_its_very_id_or_names_the_problem(db: Db, run_id: str) -> None:
    result = cli("show", "--db", db.path, "--format", "json", "--", run_id)
    if has_surrogate(run_id):
        assert refused(result, "RUN_ID", "not valid UTF-8"), result
    elif run_id in STORED:
        assert result.code == 0, result
        shown = json.loads(result.out)
        assert shown["run"]["run_id"] == run_id
        assert [e["type"] for e in shown["events"]] == ["agent_start", "tool_start"]
    else:
        assert refused(result, "no run with id"), result


@common
@given(session=hostile, status=hostile)
def test_runs_filters_match_verbatim_or_name_the_problem(db: Db, session: str, status: str) -> None:
    result = cli("runs", "--db", db.path, "--format", "json", f"--session={session}")
    if unusable(session):
        assert refused(result, "--session"), result
    else:
        assert result.code == 0, result
        rows = json.loads(result.out)
        assert [r["run_id"] for r in rows] == ([session] if session in STORED else [])
    result = cli("runs", "--db", db.path, "--format", "json", f"--status={status}")
    if unusable(status):
        assert refused(result, "--status"), result
    else:
        assert result.code == 0, result
        expected = len(STORED) if status == "created" else 0
        assert len(json.loads(result.out)) == min(expected, 20)


@common
@given(value=hostile)
def test_numbers_are_whole_numbers_in_range_or_are_refused(db: Db, value: str) -> None:
    options = ["--db", db.path, "--format", "json", f"--limit={value}"]
    for argv, option in (
        (["runs", *options], "--limit"),
        (["show", *options, "--", STORED[0]], "--limit"),  # after `--`: only the run id
    ):
        result = cli(*argv)
        if re.fullmatch(r"\s*[+-]?[0-9]{1,19}\s*", value) and 0 <= int(value) <= MAX_LIMIT:
            assert result.code == 0, result
        else:
            assert refused(result, option), result


@common
@given(name=hostile)
def test_a_hostile_query_name_is_refused_by_name(db: Db, cwd: Path, name: str) -> None:
    result = cli("query", "--db", db.path, "--", name)
    assert refused(result, "NAME|FILE.sql", "no query named", "cannot read query file", "failed"), (
        result
    )


@common
@given(key=hostile, value=hostile)
def test_query_parameters_bind_verbatim_or_are_refused(db: Db, key: str, value: str) -> None:
    result = cli("query", "--db", db.path, "run_timeline", "--format", "json",
                 "-p", f"run_id={value}")  # fmt: skip
    if has_surrogate(value):
        assert refused(result, "-p/--param"), result
    else:
        assert result.code == 0, result
        assert len(json.loads(result.out)) == (2 if value in STORED else 0)
    result = cli("query", "--db", db.path, "tool_failures", "--format", "json",
                 "-p", f"tool_name={value}")  # fmt: skip
    if not has_surrogate(value):
        assert result.code == 0, result  # no tool_end: nothing failed, whatever the name
    # `--param=` form: a separate "-x=1" would be read as an option by argparse
    result = cli("query", "--db", db.path, "list_runs", f"--param={key}=1")
    name, _, given = f"{key}=1".partition("=")  # the first "=" ends the name
    name = name.strip().lstrip("$")
    if has_surrogate(key):
        assert refused(result, "-p/--param"), result
    elif not name:
        assert refused(result, "use -p name=value"), result
    elif name in ("status", "session_id") or (name == "limit" and is_integer(given)):
        assert result.code == 0, result
    elif name == "limit":
        assert refused(result, "$limit"), result
    else:
        assert refused(result, "has no parameter"), result
    result = cli("query", "--db", db.path, "list_runs", "-p", f"limit={value}")
    if not has_surrogate(value):
        assert result.code == 0 or refused(result, "$limit"), result


@common
@given(path=hostile)
def test_hostile_paths_are_refused_or_opened_as_given(db: Db, cwd: Path, path: str) -> None:
    """--db, --parquet and FILE.jsonl, relative to a scratch directory."""
    result = cli("runs", "--db", path)
    assert refused(result, "--db", "no runtrace database", "cannot open", path[:20]), result
    result = cli("import", "--db", path, "--", path)
    assert refused(result, "--db", "FILE.jsonl", "no such file", path[:20]), result
    leaf = path.replace("/", "_")
    if leaf in ("", ".", ".."):
        return
    result = cli("export", "--db", db.path, f"--parquet={leaf}")
    if unusable(leaf) or "\x00" in leaf:
        assert refused(result, "--parquet"), result
    elif len(leaf.encode()) > 255:
        assert refused(result, "too long"), result
    else:
        assert result.code == 0, result
        assert (cwd / leaf / "run_events").is_dir()
        assert f"Exported {len(STORED)} runs and {2 * len(STORED)} events" in result.out


@common
@given(value=hostile)
def test_forward_options_are_refused_by_name_or_used_verbatim(
    db: Db, receiver: Receiver, value: str
) -> None:
    # A hostile endpoint with an unknown run: nothing can be sent anywhere.
    result = cli("forward", "--db", db.path, f"--endpoint={value}", "--run", "no-such-run")
    assert refused(result, "--endpoint", "no run with id"), result
    result = cli("forward", "--db", db.path, "--endpoint", receiver.url, f"--run={value}")
    if unusable(value):
        assert refused(result, "--run"), result
    elif value in STORED:
        assert result.code == 0 and "Forwarded 1 runs (" in result.out, result
    else:
        assert refused(result, "no run with id"), result
    for option in ("--since", "--header", "--timeout"):
        result = cli("forward", "--db", db.path, "--endpoint", receiver.url,
                     f"{option}={value}", "--run", STORED[0])  # fmt: skip
        assert result.code == 0 or refused(result, option), (option, result)


@common
@given(value=hostile)
def test_serve_ports_hosts_and_tokens_are_checked_before_anything_listens(
    db: Db, value: str
) -> None:
    from runtrace.cli.parser import _port

    try:
        _port(value)
    except Exception:
        for option in ("--port", "--grpc-port"):
            if option == "--grpc-port" and value.strip().lower() == "off":
                continue
            assert refused(cli("serve", "--db", db.path, f"{option}={value}"), option)
    if unusable(value):
        for option in ("--host", "--token"):
            assert refused(cli("serve", "--db", db.path, f"{option}={value}"), option)


def test_undecodable_bytes_on_a_real_command_line_are_named_without_a_traceback(
    db: Db, tmp_path: Path
) -> None:
    """What a shell passes: raw bytes, decoded by Python with surrogateescape."""
    for argv in (
        [b"show", b"--db", db.path.encode(), b"run-\xff"],
        [b"runs", b"--db", db.path.encode(), b"--session", b"\xfe\xff"],
        [b"runs", b"--db", str(tmp_path).encode() + b"/\xff.duckdb"],
    ):
        proc = subprocess.run(
            [sys.executable.encode(), b"-m", b"runtrace", *argv],
            capture_output=True,
            check=False,
        )
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 2, err
        assert "Traceback" not in err
        assert "not valid UTF-8" in err


@common
@given(value=hostile)
def test_demo_numbers_and_formats_are_refused_by_name_before_anything_is_written(
    cwd: Path, value: str
) -> None:
    target = cwd / "never-written.duckdb"
    if not re.fullmatch(r"\s*\+?[0-9]{1,19}\s*", value) or int(value) < 1:
        assert refused(cli("demo", "--db", str(target), f"--runs={value}"), "--runs")
    if not re.fullmatch(r"\s*[+-]?[0-9]{1,19}\s*", value):
        assert refused(cli("demo", "--db", str(target), f"--seed={value}"), "--seed")
    if value not in ("table", "csv", "json"):
        assert refused(cli("runs", "--db", str(target), f"--format={value}"), "--format")
    assert not target.exists()
