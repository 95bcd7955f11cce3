"""Stored runs replayed as OpenTelemetry spans and sent to an OTLP/HTTP backend.

The live :class:`~runtrace.otel.processor.RunSpanProcessor` turns runs into spans as they happen;
this module rebuilds the same spans afterwards from :class:`~runtrace.runs.RunRecord` values, so
a file recorded offline can be looked at in Jaeger, Phoenix, Tempo or a Collector. Attributes,
status and child-span pairing come from the modules the processor uses (``event_attributes``,
``run_span``, ``children``). It takes records rather than a path so it stays an edge over the
core: reading them from a database is :func:`runtrace.forward.forward_runs`'s business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from ..errors import ForwardError
from ..faults import Faults
from ..runs import RunRecord
from ..version import __version__
from .children import plan_child_spans
from .run_span import run_end_attributes, run_span_name, run_start_attributes, run_status
from .settings import SpanSettings, default_settings
from .span_events import event_attributes

__all__ = [
    "MAX_EVENTS_PER_REQUEST",
    "MAX_RUNS_PER_REQUEST",
    "ForwardResult",
    "forward_records",
    "run_spans",
]

MAX_RUNS_PER_REQUEST: Final = 100
"""Runs per export request at most."""
MAX_EVENTS_PER_REQUEST: Final = 20_000
"""Span events per export request at most (unless one run has more): OTLP receivers cap request
sizes at a few MB, and a long run's events are most of a request."""

_MS: Final = 1_000_000  # ns per ms
_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)
_FAULTS: Final = Faults("runtrace.otel")
_RESOURCE: Final = Resource.create({"service.name": "runtrace"})
"""One resource for every replayed span: ``Resource.create`` draws a new random
``service.instance.id`` each time, which would make each run look like its own instance."""


@dataclass(frozen=True)
class ForwardResult:
    """What :func:`forward_records` sent, and where."""

    runs: int
    spans: int
    endpoint: str


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


def run_spans(record: RunRecord, settings: SpanSettings | None = None) -> list[ReadableSpan]:
    """A stored run as OpenTelemetry spans: the run span first, then its child spans.

    The run span keeps the run's trace and span ids and its times (a run not ended yet ends at
    its last update); every stored event becomes a span event at its own time (all of them: no
    128-event limit applies to a replayed span); tool calls and subagents become child spans.
    Ids missing from the record are derived from the run id, as are child span ids, so replaying
    a run twice gives identical spans. Run attributes a span cannot hold stay in the store.
    """
    settings = settings or default_settings()
    snapshot = record.snapshot
    events = record.events
    run_id = snapshot.id
    trace_id = _id_from(snapshot.trace_id, 128, f"trace/{run_id}")
    span_id = _id_from(snapshot.span_id, 64, f"span/{run_id}")
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED)
    resource = _RESOURCE
    scope = InstrumentationScope("runtrace.forward", __version__)
    end_ms = snapshot.ended_at_ms or snapshot.updated_at_ms
    status, status_attrs = run_status(snapshot, settings)
    attrs = run_start_attributes(
        run_id=run_id,
        session_id=snapshot.session_id,
        agent_name=snapshot.agent_name,
        prompt=snapshot.prompt,
        settings=settings,
        extra=snapshot.attributes,
    )
    attrs.update(run_end_attributes(snapshot, settings))
    attrs.update(status_attrs)
    span_events = [
        Event(
            r.event.type,
            event_attributes(r.event, settings, sequence=r.sequence),
            timestamp=r.timestamp_ms * _MS,
        )
        for r in events
    ]
    spans = [
        ReadableSpan(
            name=run_span_name(snapshot.agent_name),
            context=context,
            parent=None,
            resource=resource,
            attributes=attrs,
            events=span_events,
            kind=SpanKind.INTERNAL,
            status=status,
            start_time=snapshot.created_at_ms * _MS,
            end_time=end_ms * _MS,
            instrumentation_scope=scope,
        )
    ]
    if not settings.child_spans:
        return spans
    children = plan_child_spans(events, run_id, run_end_ms=end_ms, settings=settings)
    for index, child in enumerate(children):
        child_id = _id_from(None, 64, f"child/{run_id}/{index}")
        spans.append(
            ReadableSpan(
                name=child.name,
                context=SpanContext(trace_id, child_id, is_remote=False, trace_flags=_SAMPLED),
                parent=context,
                resource=resource,
                attributes=child.attributes,
                kind=SpanKind.INTERNAL,
                status=child.status,
                start_time=child.start_ms * _MS,
                end_time=child.end_ms * _MS,
                instrumentation_scope=scope,
            )
        )
    return spans


def _otlp_exporter(
    endpoint: str, headers: Mapping[str, str] | None, timeout: float
) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ForwardError(
            "replaying runs over OTLP needs the OTLP exporter: pip install 'runtrace[otlp]'"
        ) from None
    return OTLPSpanExporter(
        endpoint=endpoint, headers=dict(headers) if headers else None, timeout=timeout
    )


def forward_records(
    records: Iterable[RunRecord],
    endpoint: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    exporter: SpanExporter | None = None,
    settings: SpanSettings | None = None,
) -> ForwardResult:
    """Send ``records`` as spans (:func:`run_spans`) to the OTLP/HTTP traces URL ``endpoint``.

    ``endpoint`` is used as given, like ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (include
    ``/v1/traces``). ``records`` is consumed lazily, one export request at a time (at most
    :data:`MAX_RUNS_PER_REQUEST` runs and :data:`MAX_EVENTS_PER_REQUEST` span events, unless one
    run has more), so a generator keeps memory bounded on a big file. ``exporter`` replaces the
    ``OTLPSpanExporter`` built from ``endpoint``, ``headers`` and ``timeout``; one passed in stays
    the caller's and is not shut down. Raises :class:`ForwardError` at the first refused request:
    the runs of earlier requests were delivered. A failure to shut the exporter down afterwards
    is reported by the fault policy (logged), never in place of the result or the refusal.
    """
    target = exporter if exporter is not None else _otlp_exporter(endpoint, headers, timeout)
    runs_sent = spans_sent = 0
    pending: list[ReadableSpan] = []
    pending_runs = pending_events = 0

    def send() -> None:
        """Export the pending spans as one request; a refusal stops the replay."""
        nonlocal runs_sent, spans_sent, pending_runs, pending_events
        if target.export(pending) is not SpanExportResult.SUCCESS:
            raise ForwardError(
                f"the OTLP backend at {endpoint} did not accept the spans or could not be "
                f"reached ({runs_sent} runs sent before it failed)",
                runs_sent=runs_sent,
            )
        runs_sent += pending_runs
        spans_sent += len(pending)
        pending.clear()
        pending_runs = pending_events = 0

    try:
        for record in records:
            n_events = len(record.events)
            if pending_runs and (
                pending_runs >= MAX_RUNS_PER_REQUEST
                or pending_events + n_events > MAX_EVENTS_PER_REQUEST
            ):
                send()
            pending.extend(run_spans(record, settings))
            pending_runs += 1
            pending_events += n_events
        if pending_runs:
            send()
    finally:
        if exporter is None:
            _FAULTS.call("shutting down the replay exporter", target.shutdown)
    return ForwardResult(runs=runs_sent, spans=spans_sent, endpoint=endpoint)
