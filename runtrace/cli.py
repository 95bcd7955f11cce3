"""The ``runtrace`` command: a thin layer over the library, one subcommand per task.

Every command takes ``--db PATH`` (default ``$RUNTRACE_DB``, else ``runtrace.duckdb``). Read
commands open the file read-only through :func:`runtrace.sinks.duckdb.connect`, so they work while
agents are recording into it. Expected failures (a missing file, an unknown run, bad SQL, a bad
parameter) print one line to stderr and exit with status 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa

from .errors import RuntraceError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from .otel.replay import ForwardResult

__all__ = [
    "build_parser",
    "forward_runs",
    "main",
    "write_table",
]

DEFAULT_DB = "runtrace.duckdb"


class CommandError(RuntraceError):
    """An expected failure of a command: printed as one line, exit status 1."""


def _default_db() -> str:
    return os.environ.get("RUNTRACE_DB") or DEFAULT_DB


# --- output -------------------------------------------------------------------------------------


def _cell(value: Any, width: int | None = None) -> str:
    if value is None:
        text = ""
    elif isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ", timespec="milliseconds")
    elif isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1_000 else f"{value:.0f}"  # no 5.177e+04
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    text = text.replace("\n", " ")
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def write_table(table: pa.Table, out: TextIO, fmt: str = "table", max_width: int = 60) -> None:
    """Print ``table`` as aligned text, CSV, or JSON (an array of objects)."""
    rows = table.to_pylist()
    names = table.column_names
    if fmt == "json":
        json.dump(rows, out, default=_json_value, ensure_ascii=False, indent=1)
        out.write("\n")
        return
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(row[n]) for n in names])
        return
    cells = [[_cell(row[n], max_width) for n in names] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in table.schema.types]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out.write(line(names) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


class Progress:
    """A one-line progress bar on stderr, redrawn in place on a terminal, quiet otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self._last = -1.0

    def __call__(self, done: int, total: int) -> None:
        if not self.tty:
            return
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = now - self.started
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total} {elapsed:5.1f}s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


# --- helpers ------------------------------------------------------------------------------------


def _existing_db(path: str) -> str:
    if not Path(path).exists():
        raise CommandError(f"no runtrace database at {path} (run `runtrace demo` to make one)")
    return path


def _connect(path: str) -> Any:
    from .sinks.duckdb import connect

    return connect(_existing_db(path))


def _parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lstrip("$")
        if not sep or not key:
            raise CommandError(f"bad parameter {pair!r}: use -p name=value")
        params[key] = value
    return params


def _parse_since(text: str) -> int:
    """``--since``: epoch ms, an ISO date/time (UTC unless it says), or an age like ``2h``."""
    text = text.strip()
    units = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    if text[-1:] in units and text[:-1].isdigit():
        return int(time.time() * 1000) - int(text[:-1]) * units[text[-1]]
    if text.isdigit():
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"bad --since {text!r}: use epoch ms, an ISO time like 2026-01-31T12:00, or 30m/2h/7d"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


# --- forward ------------------------------------------------------------------------------------

_FORWARD_LOAD_RUNS = 500
"""Runs read from the file at a time: bounds memory on a big file; each read scans the events."""


def _traces_url(endpoint: str) -> str:
    parsed = urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CommandError(f"bad --endpoint {endpoint!r}: use an http:// or https:// URL")
    if parsed.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def forward_runs(
    db: str | os.PathLike[str],
    endpoint: str,
    *,
    since_ms: int | None = None,
    run_id: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    exporter: SpanExporter | None = None,
) -> ForwardResult:
    """Replay the runs of ``db`` (created since ``since_ms``; only ``run_id``) to ``endpoint``.

    Reads the file a slice of runs at a time and streams them to
    :func:`runtrace.otel.forward_records`, so a big file is never in memory at once.
    """
    from .otel.replay import forward_records
    from .sinks.duckdb import list_run_ids, load_records

    url = _traces_url(endpoint)
    ids = [run_id] if run_id is not None else list_run_ids(db, since_ms=since_ms)
    slices = (ids[i : i + _FORWARD_LOAD_RUNS] for i in range(0, len(ids), _FORWARD_LOAD_RUNS))
    records = (r for chunk in slices for r in load_records(db, run_ids=chunk, since_ms=since_ms))
    return forward_records(records, url, headers=headers, timeout=timeout, exporter=exporter)


# --- commands -----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from .demo import run_demo
    from .queries import run_query

    if args.runs < 1:
        raise CommandError("--runs must be at least 1")
    if Path(args.db).exists() and not args.append:
        raise CommandError(f"{args.db} already exists; remove it or pass --append")
    started = time.perf_counter()
    result = run_demo(args.db, runs=args.runs, seed=args.seed, progress=Progress("recording"))
    elapsed = time.perf_counter() - started
    expected = result.workload.expected
    out.write(
        f"Recorded {expected.runs} runs ({expected.events} events, {expected.sessions} sessions)"
        f" into {args.db} in {elapsed:.1f}s\n\nOutcomes of every run in {args.db}:\n"
    )
    con = _connect(args.db)
    try:
        write_table(run_query(con, "outcome_summary"), out)
    finally:
        con.close()
    db_flag = "" if args.db == _default_db() else f" --db {args.db}"
    out.write(f"\nNext: runtrace{db_flag} query outcomes_by_agent  (all: runtrace queries)\n")
    return 0


def cmd_runs(args: argparse.Namespace, out: TextIO) -> int:
    from .queries import run_query

    params = {"status": args.status, "session_id": args.session, "limit": args.limit}
    con = _connect(args.db)
    try:
        write_table(run_query(con, "list_runs", params), out, args.format)
    finally:
        con.close()
    return 0


_JSON_RUN_COLUMNS = ("attributes", "overflow")


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    from .queries import run_query

    con = _connect(args.db)
    try:
        run = con.sql("SELECT * FROM runs WHERE run_id = $run_id", params={"run_id": args.run_id})
        rows = run.to_arrow_table().to_pylist()
        if not rows:
            raise CommandError(f"no run with id {args.run_id!r} in {args.db}")
        timeline = run_query(con, "run_timeline", {"run_id": args.run_id, "limit": args.limit})
    finally:
        con.close()
    snapshot = rows[0]
    for key in _JSON_RUN_COLUMNS:  # JSON text in DuckDB; objects in the JSON output
        value = snapshot.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                snapshot[key] = json.loads(value)
    if args.format == "json":
        json.dump(
            {"run": snapshot, "events": timeline.to_pylist()},
            out,
            default=_json_value,
            ensure_ascii=False,
            indent=1,
        )
        out.write("\n")
        return 0
    for key, value in snapshot.items():
        if value is not None and value != "":
            out.write(f"{key:>14}: {_cell(value, 200)}\n")
    out.write("\n")
    write_table(timeline, out, args.format)
    total = snapshot.get("event_count") or 0
    if timeline.num_rows < total:
        out.write(f"(the first {timeline.num_rows} of {total} events; raise --limit for more)\n")
    return 0


def cmd_query(args: argparse.Namespace, out: TextIO) -> int:
    from .queries import run_query

    params = _parse_params(args.param)
    con = _connect(args.db)
    try:
        table = run_query(con, args.name, params)
    finally:
        con.close()
    write_table(table, out, args.format)
    return 0


def cmd_queries(args: argparse.Namespace, out: TextIO) -> int:
    from .queries import list_queries

    for query in list_queries():
        out.write(f"{query.name}\n    {query.summary}\n")
        for param in query.params:
            if param.required:
                default = "required"
            else:
                default = "default " + ("NULL" if param.default is None else repr(param.default))
            out.write(f"    ${param.name} {param.type} ({default}): {param.description}\n")
    return 0


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    from .sinks.duckdb import export_parquet

    _existing_db(args.db)
    counts = export_parquet(args.db, args.parquet)
    out.write(
        f"Exported {counts.get('runs', 0)} runs and {counts.get('run_events', 0)} events"
        f" from {args.db} to {args.parquet} (Parquet, partitioned by day)\n"
    )
    return 0


def cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    from .errors import JsonlImportError
    from .sinks.jsonl import import_jsonl

    if not Path(args.file).is_file():
        raise CommandError(f"no such file: {args.file}")
    try:
        result = import_jsonl(args.file, args.db)
    except JsonlImportError as exc:
        raise CommandError(f"{args.file}, {exc}") from exc
    out.write(
        f"Imported {result.runs} runs ({result.events} events) from {args.file} into {args.db}"
    )
    if result.skipped:
        out.write(f"; skipped {len(result.skipped)} runs already in the file")
    out.write("\n")
    return 0


def cmd_forward(args: argparse.Namespace, out: TextIO) -> int:
    since = _parse_since(args.since) if args.since else None
    _existing_db(args.db)
    # The exporter logs its own retries and failures; the command reports them in one line.
    logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL)
    sent = forward_runs(
        args.db,
        args.endpoint,
        since_ms=since,
        run_id=args.run,
        headers=_parse_params(args.header) if args.header else None,
        timeout=args.timeout,
    )
    if args.run and sent.runs == 0:
        raise CommandError(f"no run with id {args.run!r} in {args.db}")
    out.write(f"Forwarded {sent.runs} runs ({sent.spans} spans) to {sent.endpoint}\n")
    return 0


# --- parser -------------------------------------------------------------------------------------

_EXAMPLES = """\
examples:
  runtrace demo                                   record the demo workload into runtrace.duckdb
  runtrace runs --status failed --limit 5
  runtrace show run-1f0c...
  runtrace query tool_stats --format csv
  runtrace query session_timeline -p session_id=sess-7-00001
  runtrace forward --endpoint http://localhost:4318 --since 2h
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``runtrace`` argument parser; ``--db`` works before or after the command."""
    db_parent = argparse.ArgumentParser(add_help=False)
    db_parent.add_argument(
        "--db",
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
        cmd_demo,
    )
    p.add_argument("--runs", type=int, default=None, help="how many runs (default: 1000)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 7)")
    p.add_argument("--append", action="store_true", help="add to an existing file")

    p = add(
        "runs",
        "List runs, newest first.",
        "runtrace runs --status cancelled --limit 10",
        cmd_runs,
    )
    p.add_argument("--status", help="only runs with this status (completed, failed, ...)")
    p.add_argument("--session", help="only runs of this session id")
    p.add_argument("--limit", type=int, default=20, help="at most this many runs (default: 20)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help=fmt_help)

    p = add(
        "show", "Show one run: its snapshot and event timeline.", "runtrace show RUN_ID", cmd_show
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--limit", type=int, default=1000, help="at most this many events")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help=fmt_help)

    p = add(
        "query",
        "Run a named query (see `runtrace queries`) or a .sql file.",
        "runtrace query duration_percentiles -p status=completed --format json",
        cmd_query,
    )
    p.add_argument("name", metavar="NAME|FILE.sql")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a query parameter; repeat for several",
    )
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help=fmt_help)

    add("queries", "List the named queries with what they answer.", "runtrace queries", cmd_queries)

    p = add(
        "export",
        "Export runs and events as Parquet, partitioned by day.",
        "runtrace export --parquet out/",
        cmd_export,
    )
    p.add_argument("--parquet", required=True, metavar="DIR", help="output directory")

    p = add(
        "import",
        "Import a JSON-lines event stream ({run_id, session_id, timestamp_ms, event} a line).",
        "runtrace import events.jsonl",
        cmd_import,
    )
    p.add_argument("file", metavar="FILE.jsonl")

    p = add(
        "forward",
        "Replay stored runs to an OTLP/HTTP backend as spans with their original ids and times.",
        "runtrace forward --endpoint http://localhost:4318 --since 2026-01-31",
        cmd_forward,
    )
    p.add_argument(
        "--endpoint",
        required=True,
        metavar="URL",
        help="OTLP/HTTP base URL or traces URL (/v1/traces is added when the path is empty)",
    )
    p.add_argument("--since", help="only runs created since: epoch ms, ISO time, or 30m/2h/7d")
    p.add_argument("--run", metavar="RUN_ID", help="only this run")
    p.add_argument(
        "--header", action="append", default=[], metavar="KEY=VALUE", help="an HTTP header"
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``runtrace`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "db"):
        args.db = _default_db()
    if args.command == "demo":
        from .demo import DEFAULT_RUNS, DEFAULT_SEED

        args.runs = DEFAULT_RUNS if args.runs is None else args.runs
        args.seed = DEFAULT_SEED if args.seed is None else args.seed
    try:
        return int(args.handler(args, sys.stdout))
    except BrokenPipeError:  # `runtrace runs | head`
        return 0
    except (RuntraceError, OSError, ValueError, duckdb.Error) as exc:
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        print(f"runtrace {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
