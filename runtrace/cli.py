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
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa

from .errors import RuntraceError

__all__ = [
    "ForwardResult",
    "build_parser",
    "forward_runs",
    "main",
    "run_spans",
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
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
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


@dataclass(frozen=True)
class ForwardResult:
    """What :func:`forward_runs` sent, and where."""

    runs: int
    spans: int
    endpoint: str


_FORWARD_BATCH_RUNS = 100
_FORWARD_BATCH_EVENTS = 20_000
"""Span events per export request at most (unless one run has more): OTLP receivers cap request
sizes at a few MB, and a long run's events are most of a request."""


def _traces_url(endpoint: str) -> str:
    parsed = urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CommandError(f"bad --endpoint {endpoint!r}: use an http:// or https:// URL")
    if parsed.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def _id_from(text: str | None, bits: int, salt: str) -> int:
    """The stored hex id, or a stable one derived from ``salt`` (runs imported without ids)."""
    if text:
        try:
            value = int(text, 16)
        except ValueError:
            value = 0
        if 0 < value < (1 << bits):
            return value
    digest = hashlib.blake2b(salt.encode(), digest_size=bits // 8).digest()
    return int.from_bytes(digest, "big") or 1


def _snapshot_from_row(row: dict[str, Any]) -> Any:
    from .runs import RunSnapshot

    attributes = row.get("attributes")
    if isinstance(attributes, str):
        attributes = json.loads(attributes) if attributes else {}
    return RunSnapshot(
        id=row["run_id"],
        session_id=row["session_id"],
        status=row["status"],
        prompt=row.get("prompt") or "",
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        result_text=row.get("result_text"),
        error=row.get("error"),
        event_count=row.get("event_count") or 0,
        agent_name=row.get("agent_name"),
        trace_id=row.get("trace_id"),
        span_id=row.get("span_id"),
        ended_at_ms=row.get("ended_at_ms"),
        input_tokens=row.get("input_tokens") or 0,
        output_tokens=row.get("output_tokens") or 0,
        attributes=attributes or {},
    )


def run_spans(snapshot: Any, records: Sequence[Any], settings: Any = None) -> list[Any]:
    """A stored run as OpenTelemetry ``ReadableSpan``s: the run span first, then its children.

    The run span keeps the run's trace and span ids and its times; every stored event becomes a
    span event at its own time (all of them: no 128-event limit applies to a replayed span); tool
    calls and subagents become child spans. Attributes, status (cancelled included) and child
    pairing come from :mod:`runtrace.otel.attributes`, the same rules the live processor uses.
    Child span ids are derived from the run id, so forwarding twice sends the same spans.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

    from . import __version__
    from .otel import attributes as otel_attrs

    ms = 1_000_000
    run_id = snapshot.id
    trace_id = _id_from(snapshot.trace_id, 128, f"trace/{run_id}")
    span_id = _id_from(snapshot.span_id, 64, f"span/{run_id}")
    flags = TraceFlags(TraceFlags.SAMPLED)
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)
    resource = Resource.create({"service.name": "runtrace"})
    scope = InstrumentationScope("runtrace.forward", __version__)
    end_ms = snapshot.ended_at_ms or snapshot.updated_at_ms
    status, status_attrs = otel_attrs.run_status(snapshot, settings)
    attrs: dict[str, Any] = otel_attrs.run_start_attributes(
        run_id=run_id,
        session_id=snapshot.session_id,
        agent_name=snapshot.agent_name,
        prompt=snapshot.prompt,
        settings=settings,
        extra={k: v for k, v in snapshot.attributes.items() if _is_attribute_value(v)},
    )
    attrs.update(otel_attrs.run_end_attributes(snapshot, settings))
    attrs.update(status_attrs)
    events = [
        Event(
            record.event.type,
            otel_attrs.event_attributes(record.event, settings, sequence=record.sequence),
            timestamp=record.timestamp_ms * ms,
        )
        for record in records
    ]
    spans = [
        ReadableSpan(
            name=otel_attrs.run_span_name(snapshot.agent_name),
            context=context,
            parent=None,
            resource=resource,
            attributes=attrs,
            events=events,
            kind=SpanKind.INTERNAL,
            status=status,
            start_time=snapshot.created_at_ms * ms,
            end_time=end_ms * ms,
            instrumentation_scope=scope,
        )
    ]
    children = otel_attrs.plan_child_spans(records, run_id, run_end_ms=end_ms, settings=settings)
    for index, child in enumerate(children):
        child_id = _id_from(None, 64, f"child/{run_id}/{index}")
        spans.append(
            ReadableSpan(
                name=child.name,
                context=SpanContext(trace_id, child_id, is_remote=False, trace_flags=flags),
                parent=context,
                resource=resource,
                attributes=child.attributes,
                kind=SpanKind.INTERNAL,
                status=child.status,
                start_time=child.start_ms * ms,
                end_time=child.end_ms * ms,
                instrumentation_scope=scope,
            )
        )
    return spans


def _is_attribute_value(value: Any) -> bool:
    if isinstance(value, (str, bool, int, float)):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value)


def forward_runs(
    db: str | os.PathLike[str],
    endpoint: str,
    *,
    since_ms: int | None = None,
    run_id: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    exporter: Any = None,
) -> ForwardResult:
    """Replay the stored runs of ``db`` to an OTLP/HTTP endpoint, oldest first, in batches.

    ``since_ms`` keeps runs created at or after it; ``run_id`` keeps one run. ``exporter``
    replaces the ``OTLPSpanExporter`` (tests). Raises :class:`CommandError` if the backend
    refuses a batch or cannot be reached.
    """
    from .events import parse_event
    from .runs import RunEventRecord

    url = _traces_url(endpoint)
    if exporter is None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise CommandError(
                "forward needs the OTLP exporter: pip install 'runtrace[otlp]'"
            ) from None
        exporter = OTLPSpanExporter(endpoint=url, headers=headers, timeout=timeout)
    from opentelemetry.sdk.trace.export import SpanExportResult

    con = _connect(os.fspath(db))
    where = (
        "($since_ms IS NULL OR created_at_ms >= $since_ms)"
        " AND ($run_id IS NULL OR run_id = $run_id)"
    )
    params = {"since_ms": since_ms, "run_id": run_id}
    runs_sent = spans_sent = 0
    pending: list[Any] = []
    pending_runs = pending_events = 0
    rows: list[dict[str, Any]] = []

    def send() -> None:
        """Export the pending spans as one request; a refusal stops the replay."""
        nonlocal runs_sent, spans_sent, pending_runs, pending_events
        if exporter.export(pending) is not SpanExportResult.SUCCESS:
            raise CommandError(
                f"the OTLP backend at {url} did not accept the spans or could not be reached "
                f"({runs_sent} of {len(rows)} runs sent before it failed)"
            )
        runs_sent += pending_runs
        spans_sent += len(pending)
        pending.clear()
        pending_runs = pending_events = 0

    try:
        rows = (
            con.sql(
                f"SELECT * FROM runs WHERE {where} ORDER BY created_at_ms, run_id", params=params
            )
            .to_arrow_table()
            .to_pylist()
        )
        for start in range(0, len(rows), _FORWARD_BATCH_RUNS):
            batch = rows[start : start + _FORWARD_BATCH_RUNS]
            ids = [row["run_id"] for row in batch]
            events = (
                con.sql(
                    "SELECT run_id, sequence, timestamp_ms, CAST(event AS VARCHAR) AS event "
                    "FROM run_events WHERE list_contains($ids, run_id) ORDER BY run_id, sequence",
                    params={"ids": ids},
                )
                .to_arrow_table()
                .to_pylist()
            )
            by_run: dict[str, list[Any]] = {}
            for event in events:
                by_run.setdefault(event["run_id"], []).append(
                    RunEventRecord(
                        sequence=event["sequence"],
                        timestamp_ms=event["timestamp_ms"],
                        event=parse_event(event["event"]),
                    )
                )
            for row in batch:
                records = by_run.get(row["run_id"], [])
                if pending_runs and pending_events + len(records) > _FORWARD_BATCH_EVENTS:
                    send()
                pending.extend(run_spans(_snapshot_from_row(row), records))
                pending_runs += 1
                pending_events += len(records)
        if pending_runs:
            send()
    finally:
        con.close()
        exporter.shutdown()
    return ForwardResult(runs=runs_sent, spans=spans_sent, endpoint=url)


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
