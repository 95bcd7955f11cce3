"""The ``runtrace`` argument parser: one subcommand per library call, each with an example."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any

from . import commands

__all__ = ["build_parser"]


_EXAMPLES = """\
examples:
  runtrace demo                                   record the demo workload into runtrace.duckdb
  runtrace runs --status failed --limit 5
  runtrace show run-1f0c...
  runtrace query tool_stats --format csv
  runtrace query session_timeline -p session_id=sess-7-00001
  runtrace forward --endpoint http://localhost:4318 --since 2h
  runtrace serve                                  receive OTLP from agents into runtrace.duckdb
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``runtrace`` argument parser; ``--db`` works before or after the command."""
    db_parent = argparse.ArgumentParser(add_help=False)
    db_parent.add_argument(
        "--db",
        type=path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="the runtrace DuckDB file (default: $RUNTRACE_DB, else runtrace.duckdb)",
    )
    parser = argparse.ArgumentParser(
        prog="runtrace",
        description="Record, query and replay AI agent runs stored in a local DuckDB file.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[db_parent],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str, example: str, handler: Callable[..., int]) -> Any:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[db_parent],
        )
        p.set_defaults(handler=handler)
        return p

    fmt_help = "output format (default: table)"
    p = add(
        "demo",
        "Record a seeded, realistic demo workload and print the outcome summary.",
        "runtrace demo --db demo.duckdb --runs 2000 --seed 42",
        commands.demo,
    )
    p.add_argument("--runs", type=_positive, default=None, help="how many runs (default: 1000)")
    p.add_argument("--seed", type=_integer, default=None, help="random seed (default: 7)")
    p.add_argument("--append", action="store_true", help="add to an existing file")

    p = add(
        "runs",
        "List runs, newest first.",
        "runtrace runs --status cancelled --limit 10",
        commands.runs,
    )
    p.add_argument(
        "--status", type=text, help="only runs with this status (completed, failed, ...)"
    )
    p.add_argument("--session", type=text, help="only runs of this session id")
    p.add_argument("--limit", type=_limit, default=20, help="at most this many runs (default: 20)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help=fmt_help)

    p = add(
        "show",
        "Show one run: its snapshot and event timeline.",
        "runtrace show RUN_ID",
        commands.show,
    )
    p.add_argument("run_id", type=text, metavar="RUN_ID")
    p.add_argument("--limit", type=_limit, default=1000, help="at most this many events")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help=fmt_help)

    p = add(
        "query",
        "Run a named query (see `runtrace queries`) or a .sql file.",
        "runtrace query duration_percentiles -p status=completed --format json",
        commands.query,
    )
    p.add_argument("name", type=_query, metavar="NAME|FILE.sql")
    p.add_argument(
        "-p",
        "--param",
        type=text,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a query parameter; repeat for several",
    )
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help=fmt_help)

    add(
        "queries",
        "List the named queries with what they answer.",
        "runtrace queries",
        commands.queries,
    )

    p = add(
        "export",
        "Export runs and events as Parquet, partitioned by day.",
        "runtrace export --parquet out/",
        commands.export,
    )
    p.add_argument("--parquet", type=path, required=True, metavar="DIR", help="output directory")

    p = add(
        "import",
        "Import a JSON-lines event stream ({run_id, session_id, timestamp_ms, event} a line).",
        "runtrace import events.jsonl",
        commands.import_,
    )
    p.add_argument("file", type=path, metavar="FILE.jsonl")

    p = add(
        "forward",
        "Replay stored runs to an OTLP/HTTP backend as spans with their original ids and times.",
        "runtrace forward --endpoint http://localhost:4318 --since 2026-01-31",
        commands.forward,
    )
    p.add_argument(
        "--endpoint",
        type=text,
        required=True,
        metavar="URL",
        help="OTLP/HTTP base URL or traces URL (/v1/traces is added when the path is empty)",
    )
    p.add_argument(
        "--since", type=text, help="only runs created since: epoch ms, ISO time, or 30m/2h/7d"
    )
    p.add_argument("--run", type=text, metavar="RUN_ID", help="only this run")
    p.add_argument(
        "--header",
        type=text,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an HTTP header",
    )
    p.add_argument("--timeout", type=_seconds, default=10.0, help="seconds per request")

    p = add(
        "serve",
        "Receive OTLP (HTTP and gRPC) from agents in any process or language, as runs in the file.",
        "runtrace serve --db runs.duckdb   (then OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318)",
        commands.serve,
    )
    p.add_argument(
        "--host",
        type=text,
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1; any other address needs a token)",
    )
    p.add_argument(
        "--port", type=_port, default=4318, help="OTLP/HTTP port (default: 4318; 0: a free one)"
    )
    p.add_argument(
        "--grpc-port",
        type=_grpc_port,
        default=4317,
        metavar="PORT|off",
        help="OTLP/gRPC port (default: 4317; 0: a free one; off: no gRPC)",
    )
    p.add_argument(
        "--token",
        type=text,
        help="require 'Authorization: Bearer TOKEN' (default: $RUNTRACE_TOKEN; the variable "
        "keeps it out of the process list)",
    )
    return parser


_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_LIMIT = 2**31 - 1
"""The named queries' ``$limit`` is an INTEGER."""


def text(value: str) -> str:
    """Any text, verbatim (quotes, SQL, NUL included: values are bound, never formatted into
    SQL), but not lone surrogates: bytes the terminal's encoding could not decode, which no
    UTF-8 column or request can hold."""
    bad = _SURROGATE.search(value)
    if bad is not None:
        raise argparse.ArgumentTypeError(
            f"not valid UTF-8: {value!r:.80} has the undecodable byte or lone surrogate "
            f"{bad.group()!r} at character {bad.start()}"
        )
    return value


def path(value: str) -> str:
    """A path DuckDB and Arrow can open: valid UTF-8 with no NUL (DuckDB would cut the path at
    the NUL and open another file)."""
    text(value)
    if "\0" in value:
        raise argparse.ArgumentTypeError(f"a path cannot contain a NUL character: {value!r:.80}")
    if not value:
        raise argparse.ArgumentTypeError("the path is empty")
    return value


def _query(value: str) -> str:
    text(value)
    if "\0" in value or not value:
        raise argparse.ArgumentTypeError(
            f"not a query name or .sql file: {value!r:.80} (see `runtrace queries`)"
        )
    return value


def _integer(value: str, what: str = "an integer") -> int:
    if not re.fullmatch(r"\s*[+-]?[0-9]{1,19}\s*", value):
        raise argparse.ArgumentTypeError(f"not {what}: {value!r:.80}")
    return int(value)


def _positive(value: str) -> int:
    number = _integer(value, "a whole number")
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _limit(value: str) -> int:
    number = _integer(value, "a whole number")
    if not 0 <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_LIMIT}, not {number}")
    return number


def _seconds(value: str) -> float:
    from ..forward import MAX_TIMEOUT_S  # only forward takes seconds, and imports it anyway

    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r:.80}") from None
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds above 0, at most {MAX_TIMEOUT_S}, not {value!r:.80}"
        )
    return seconds


def _port(value: str) -> int:
    try:
        port = _integer(value, "a port number")
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r:.80}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, not {port}")
    return port


def _grpc_port(value: str) -> int | None:
    return None if value.strip().lower() == "off" else _port(value)
