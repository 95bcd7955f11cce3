"""Forwarding a runtrace database to a tracing backend: the DuckDB readers feeding OTLP replay.

It composes the two edges (``duckdb/`` reads, ``otel/`` replays), which never import each other,
so it lives beside them, as the CLI and the demo do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import SpanExporter

from .duckdb import list_run_ids, load_records
from .errors import ForwardError
from .otel import ForwardResult, forward_records
from .runs import RunRecord

__all__ = ["forward_runs"]

LOAD_RUNS = 500
MAX_TIMEOUT_S = 86_400
"""The longest timeout per request, a day: beyond what threads and sockets accept, the
exporter would fail on it instead of refusing it up front."""
"""Runs read from the file at a time: bounds memory on a big file; each read scans the events."""


_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP field name is a token (RFC 9110 section 5.1)."""
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
"""No CR, LF, NUL or other control characters (the request would be split or refused)."""


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: ``/v1/traces`` is added to a base URL with an empty path."""
    bad = f"bad endpoint {endpoint!r:.200}: use an http:// or https:// URL"
    if _CONTROL.search(endpoint):
        raise ForwardError(bad + " (it has a space or a control character)")
    try:
        parsed = urlsplit(endpoint)
        parsed.port  # noqa: B018 - raises ValueError on a port that is not a number
        endpoint.encode("ascii")
    except UnicodeEncodeError:
        raise ForwardError(bad + " (non-ASCII: percent-encode it)") from None
    except ValueError as exc:
        raise ForwardError(f"{bad} ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ForwardError(bad)
    if parsed.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def forward_runs(
    db: str | os.PathLike[str],
    endpoint: str,
    *,
    since_ms: int | None = None,
    run_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    exporter: SpanExporter | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ForwardResult:
    """Replay the runs of ``db`` (created since ``since_ms``; only ``run_id``) to ``endpoint``.

    Reads the file a slice of runs at a time and streams them to
    :func:`runtrace.otel.forward_records`, so a big file is never in memory at once.
    ``progress(done, total)`` hears the runs read and turned into spans so far out of the runs
    selected, and last ``done == total`` once every request was accepted. Raises
    :class:`ForwardError` for a bad endpoint, header or timeout before anything is read.
    """
    url = traces_url(endpoint)
    check_headers(headers or {})
    if not (isinstance(timeout, (int, float)) and 0 < timeout <= MAX_TIMEOUT_S):
        raise ForwardError(
            f"bad timeout {timeout!r}: use a number of seconds above 0, at most {MAX_TIMEOUT_S}"
        )
    ids = [run_id] if run_id is not None else list_run_ids(db, since_ms=since_ms)
    slices = (ids[i : i + LOAD_RUNS] for i in range(0, len(ids), LOAD_RUNS))
    records: Iterator[RunRecord] = (
        r for chunk in slices for r in load_records(db, run_ids=chunk, since_ms=since_ms)
    )
    if progress is not None:
        records = _counted(records, len(ids), progress)
    result = forward_records(records, url, headers=headers, timeout=timeout, exporter=exporter)
    if progress is not None:
        progress(result.runs, result.runs)
    return result


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header names that are not HTTP tokens and values with line breaks or controls."""
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ForwardError(
                f"bad header name {name!r:.200}: letters, digits and !#$%&'*+-.^_`|~ only"
            )
        if not _HEADER_VALUE.match(value):
            raise ForwardError(
                f"bad value for header {name!r:.200}: {value!r:.200} has a line break, NUL or "
                "another control character, or is not Latin-1"
            )


def _counted(
    records: Iterator[RunRecord], total: int, progress: Callable[[int, int], None]
) -> Iterator[RunRecord]:
    for done, record in enumerate(records, start=1):
        yield record
        progress(done, max(total, done))
