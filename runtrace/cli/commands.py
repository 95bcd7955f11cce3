"""The commands: each parses its arguments, makes one library call and prints the result."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import duckdb

from ..errors import ForwardError, JsonlImportError, RuntraceError
from ..runs import MAX_MS
from .output import cell, json_value, progress, write_table

__all__ = ["CommandError", "default_db"]

DEFAULT_DB = "runtrace.duckdb"


class CommandError(RuntraceError):
    """An expected failure of a command: printed as one line, exit status 1."""


def default_db() -> str:
    return os.environ.get("RUNTRACE_DB") or DEFAULT_DB


def _existing_db(path: str) -> str:
    if not Path(path).exists():
        raise CommandError(f"no runtrace database at {path} (run `runtrace demo` to make one)")
    return path


def _connect(path: str) -> duckdb.DuckDBPyConnection:
    from .. import connect

    return connect(_existing_db(path))


def _parse_params(pairs: Sequence[str], option: str = "-p") -> dict[str, str]:
    """``name=value`` pairs; the value is kept verbatim (it is bound, never formatted)."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lstrip("$") if option == "-p" else key.strip()
        if not sep or not key:
            raise CommandError(f"bad {option} {pair!r:.80}: use {option} name=value")
        if key in params:
            raise CommandError(f"{option} {key!r:.80} is given twice")
        params[key] = value
    return params


_AGE = re.compile(r"([0-9]{1,12})([smhd])")
_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _parse_since(text: str) -> int:
    """``--since``: epoch ms, an ISO date/time (UTC unless it says), or an age like ``2h``."""
    text = text.strip()
    bad = f"bad --since {text!r:.80}: use epoch ms, an ISO time like 2026-01-31T12:00, or 30m/2h/7d"
    age = _AGE.fullmatch(text)
    if age:
        since = int(time.time() * 1000) - int(age.group(1)) * _UNITS[age.group(2)]
    elif re.fullmatch(r"[0-9]{1,19}", text):
        since = int(text)
    else:
        try:
            when = dt.datetime.fromisoformat(text)
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            since = int(when.timestamp() * 1000)
        except (ValueError, OverflowError):
            raise CommandError(bad) from None
    if not 0 <= since < MAX_MS:
        raise CommandError(f"{bad} (from 1970 to 2262)")
    return since


def demo(args: argparse.Namespace, out: TextIO) -> int:
    from ..demo import run_demo
    from ..duckdb import run_query

    if args.runs < 1:
        raise CommandError("--runs must be at least 1")
    if Path(args.db).exists() and not args.append:
        raise CommandError(f"{args.db} already exists; remove it or pass --append")
    started = time.perf_counter()
    update, close = progress("recording")
    try:
        result = run_demo(args.db, runs=args.runs, seed=args.seed, progress=update)
    finally:
        close()
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
    db_flag = "" if args.db == default_db() else f" --db {args.db}"
    out.write(f"\nNext: runtrace{db_flag} query outcomes_by_agent  (all: runtrace queries)\n")
    return 0


def runs(args: argparse.Namespace, out: TextIO) -> int:
    from ..duckdb import run_query

    params = {"status": args.status, "session_id": args.session, "limit": args.limit}
    con = _connect(args.db)
    try:
        write_table(run_query(con, "list_runs", params), out, args.format)
    finally:
        con.close()
    return 0


_JSON_RUN_COLUMNS = ("attributes", "overflow")


def show(args: argparse.Namespace, out: TextIO) -> int:
    from ..duckdb import run_query

    con = _connect(args.db)
    try:
        run = con.sql("SELECT * FROM runs WHERE run_id = $run_id", params={"run_id": args.run_id})
        rows = run.to_arrow_table().to_pylist()
        if not rows:
            raise CommandError(f"no run with id {args.run_id!r:.200} in {args.db}")
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
            default=json_value,
            ensure_ascii=False,
            indent=1,
        )
        out.write("\n")
        return 0
    for key, value in snapshot.items():
        if value is not None and value != "":
            out.write(f"{key:>14}: {cell(value, 200)}\n")
    out.write("\n")
    write_table(timeline, out, args.format)
    total = snapshot.get("event_count") or 0
    if timeline.num_rows < total:
        out.write(f"(the first {timeline.num_rows} of {total} events; raise --limit for more)\n")
    return 0


def query(args: argparse.Namespace, out: TextIO) -> int:
    from ..duckdb import run_query

    params = _parse_params(args.param)
    con = _connect(args.db)
    try:
        table = run_query(con, args.name, params)
    except OSError as exc:  # a name the file system refuses (too long...): not a query
        raise CommandError(
            f"no query named {args.name!r:.80} ({exc.strerror or exc}; see `runtrace queries`)"
        ) from None
    finally:
        con.close()
    write_table(table, out, args.format)
    return 0


def queries(args: argparse.Namespace, out: TextIO) -> int:
    from ..duckdb import list_queries

    for query in list_queries():
        out.write(f"{query.name}\n    {query.summary}\n")
        for param in query.params:
            if param.required:
                default = "required"
            else:
                default = "default " + ("NULL" if param.default is None else repr(param.default))
            out.write(f"    ${param.name} {param.type} ({default}): {param.description}\n")
    return 0


def export(args: argparse.Namespace, out: TextIO) -> int:
    from ..duckdb import export_parquet

    _existing_db(args.db)
    try:  # a directory the file system refuses is named with its reason, before any reading
        Path(args.parquet).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        shown = args.parquet if len(args.parquet) <= 80 else args.parquet[:77] + "..."
        raise CommandError(f"--parquet {shown!r}: {exc.strerror or exc}") from None
    update, close = progress("exporting", unit="row")
    try:
        counts = export_parquet(args.db, args.parquet, progress=update)
    finally:
        close()
    out.write(
        f"Exported {counts.get('runs', 0)} runs and {counts.get('run_events', 0)} events"
        f" from {args.db} to {args.parquet} (Parquet, partitioned by day)\n"
    )
    return 0


def import_(args: argparse.Namespace, out: TextIO) -> int:
    from ..duckdb import import_jsonl

    if not Path(args.file).is_file():
        raise CommandError(f"no such file: {args.file}")
    update, close = progress("importing", unit="B", scale=True)
    try:
        result = import_jsonl(args.file, args.db, progress=update)
    except JsonlImportError as exc:
        raise CommandError(f"{args.file}, {exc}") from exc
    finally:
        close()
    out.write(
        f"Imported {result.runs} runs ({result.events} events) from {args.file} into {args.db}"
    )
    if result.skipped:
        out.write(f"; skipped {len(result.skipped)} runs already in the file")
    out.write("\n")
    return 0


def forward(args: argparse.Namespace, out: TextIO) -> int:
    from ..forward import check_headers, forward_runs, traces_url

    try:
        url = traces_url(args.endpoint)
    except ForwardError as exc:
        raise CommandError(str(exc).replace("bad endpoint", "bad --endpoint", 1)) from None
    headers = _parse_params(args.header, "--header") if args.header else None
    try:
        check_headers(headers or {})
    except ForwardError as exc:
        raise CommandError(f"--header: {exc}") from None  # names the header
    since = _parse_since(args.since) if args.since is not None else None
    _existing_db(args.db)
    # The exporter logs its own retries and failures; the command reports them in one line.
    logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL)
    update, close = progress("forwarding")
    try:
        sent = forward_runs(
            args.db,
            url,
            since_ms=since,
            run_id=args.run,
            headers=headers,
            timeout=args.timeout,
            progress=update,
        )
    finally:
        close()
    if args.run is not None and sent.runs == 0:
        where = f"{args.db} created since --since {args.since}" if since is not None else args.db
        raise CommandError(f"no run with id {args.run!r:.200} in {where}")
    out.write(f"Forwarded {sent.runs} runs ({sent.spans} spans) to {sent.endpoint}\n")
    return 0


def serve(args: argparse.Namespace, out: TextIO) -> int:
    """Serve until SIGTERM or SIGINT; exit 0 if everything accepted was written."""
    try:
        from ..serve import DuckDBIngest, ServeSettings, serve_forever
    except ImportError as exc:
        raise CommandError(
            f"runtrace serve needs the serve extra: pip install 'runtrace[serve]' ({exc})"
        ) from None
    token = args.token or os.environ.get("RUNTRACE_TOKEN") or None
    settings = ServeSettings(host=args.host, port=args.port, grpc_port=args.grpc_port, token=token)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("runtrace.serve").setLevel(logging.INFO)
    ingest = DuckDBIngest(args.db)

    def started(server: Any) -> None:
        grpc = f", OTLP/gRPC on {server.settings.host}:{server.grpc_port}"
        out.write(
            f"runtrace serve: writing {args.db}; OTLP/HTTP on {server.url}"
            f"{grpc if server.grpc_port else ''}\n"
            f"  agents: OTEL_EXPORTER_OTLP_ENDPOINT={server.url}\n"
        )
        out.flush()

    try:
        flushed = serve_forever(ingest, settings, on_started=started)
    except BaseException:
        ingest.shutdown(10_000)  # the server never started: release the file
        raise
    if flushed:
        out.write(f"runtrace serve: stopped; everything received is in {args.db}\n")
    return 0 if flushed else 1
