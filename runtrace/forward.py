"""Forwarding a runtrace database to a tracing backend: the DuckDB readers feeding OTLP replay.

It composes the two edges (``duckdb/`` reads, ``otel/`` replays), which never import each other,
so it lives beside them, as the CLI and the demo do.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import SpanExporter

from .duckdb import list_run_ids, load_records
from .errors import ForwardError
from .otel import ForwardResult, forward_records

__all__ = ["forward_runs"]

LOAD_RUNS = 500
"""Runs read from the file at a time: bounds memory on a big file; each read scans the events."""


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: ``/v1/traces`` is added to a base URL with an empty path."""
    parsed = urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ForwardError(f"bad endpoint {endpoint!r}: use an http:// or https:// URL")
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
    url = traces_url(endpoint)
    ids = [run_id] if run_id is not None else list_run_ids(db, since_ms=since_ms)
    slices = (ids[i : i + LOAD_RUNS] for i in range(0, len(ids), LOAD_RUNS))
    records = (r for chunk in slices for r in load_records(db, run_ids=chunk, since_ms=since_ms))
    return forward_records(records, url, headers=headers, timeout=timeout, exporter=exporter)
