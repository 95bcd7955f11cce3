"""A run span: which spans are runs, its name, its attributes at start and end, its status.

Pure functions of a snapshot or an attribute mapping, shared by the live processor and replay so
that both produce the same spans, and usable on a finished span as well as a starting one (the
translator of foreign spans decides at the end, when late attributes have arrived).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Status, StatusCode

from ..runs import RunSnapshot, RunStatus
from . import semconv as sc
from .settings import SpanSettings, default_settings, truncate
from .values import AttributeValue, attribute_int, span_attributes

__all__ = [
    "is_own_span",
    "is_run_span",
    "run_end_attributes",
    "run_span_name",
    "run_start_attributes",
    "run_status",
]


def run_span_name(agent_name: str | None) -> str:
    """``invoke_agent {agent_name}``, or ``invoke_agent`` for a run without an agent name."""
    return f"{sc.OP_INVOKE_AGENT} {agent_name}" if agent_name else sc.OP_INVOKE_AGENT


def is_run_span(attributes: Mapping[str, Any] | None) -> bool:
    """A span is a live run of the processor when runtrace started it as one, or it is a GenAI
    ``invoke_agent`` span at its start that is not one of runtrace's own child spans. Other
    spans go to the translator (``runtrace.otel.translate``), which also decides at a span's end
    (attributes set after the start) whether it is a run.

    Only attributes decide, so the answer is the same at a span's start and at its end."""
    if not attributes:
        return False
    kind = attributes.get(sc.SPAN_KIND)
    if kind is not None:
        return bool(kind == sc.KIND_RUN)
    return bool(attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT)


def is_own_span(attributes: Mapping[str, Any] | None) -> bool:
    """Whether runtrace made the span (a run span it started or adopted, or one of its child
    spans): such spans are never handed to the translator of foreign spans."""
    return attributes is not None and sc.SPAN_KIND in attributes


def run_start_attributes(
    *,
    run_id: str,
    session_id: str,
    agent_name: str | None = None,
    prompt: str = "",
    settings: SpanSettings | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, AttributeValue]:
    """A run span's attributes at start. ``extra`` (the caller's own) are added as far as a
    span can carry them (:func:`~runtrace.otel.values.span_attributes`: ``None`` and dicts left
    out, integers beyond int64 as decimal strings); the store keeps them as given."""
    settings = settings or default_settings()
    attrs: dict[str, AttributeValue] = {
        sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
        sc.GEN_AI_CONVERSATION_ID: session_id,
        sc.RUN_ID: run_id,
        sc.SPAN_KIND: sc.KIND_RUN,
    }
    if agent_name:
        attrs[sc.GEN_AI_AGENT_NAME] = agent_name
    if prompt and settings.capture_content:
        attrs[sc.RUN_PROMPT] = truncate(prompt, settings.max_value_length)
    if extra:
        attrs.update(span_attributes(extra))
    return attrs


def run_end_attributes(
    snapshot: RunSnapshot,
    settings: SpanSettings | None = None,
    *,
    span_dropped_events: int | None = None,
) -> dict[str, AttributeValue]:
    """What a run span learns at its end: token totals, true event count, the span's drops.

    Status-related attributes come from :func:`run_status`.
    """
    settings = settings or default_settings()
    attrs: dict[str, AttributeValue] = {
        sc.RUN_EVENT_COUNT: snapshot.event_count,
        sc.GEN_AI_USAGE_INPUT_TOKENS: attribute_int(snapshot.input_tokens),
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: attribute_int(snapshot.output_tokens),
    }
    if span_dropped_events is not None:
        attrs[sc.RUN_SPAN_DROPPED_EVENTS] = span_dropped_events
    if settings.capture_content and snapshot.result_text:
        attrs[sc.RUN_RESULT] = truncate(snapshot.result_text, settings.max_value_length)
    return attrs


def run_status(
    snapshot: RunSnapshot,
    settings: SpanSettings | None = None,
    *,
    error_type: str | None = None,
) -> tuple[Status, dict[str, AttributeValue]]:
    """The span status of a run and the attributes that go with it.

    completed -> OK; failed -> ERROR with the error message and ``error.type`` (``error_type``,
    e.g. an exception's class, or ``agent_error``); cancelled -> ERROR (or UNSET, per
    ``settings.cancelled_status``) described ``cancelled: <reason>``, with ``error.type =
    "cancelled"``. A cancelled snapshot keeps its reason in ``error``. Runs not ended yet: UNSET.
    ``runtrace.run.status`` always says the status.
    """
    settings = settings or default_settings()
    status = snapshot.status
    attrs: dict[str, AttributeValue] = {sc.RUN_STATUS: status.value}
    if status is RunStatus.COMPLETED:
        return Status(StatusCode.OK), attrs
    if status is RunStatus.FAILED:
        attrs[sc.ERROR_TYPE] = error_type or sc.ERROR_TYPE_AGENT
        return Status(StatusCode.ERROR, snapshot.error or "failed"), attrs
    if status is RunStatus.CANCELLED:
        attrs[sc.ERROR_TYPE] = sc.ERROR_TYPE_CANCELLED
        if settings.cancelled_status == "unset":
            return Status(StatusCode.UNSET), attrs
        return Status(StatusCode.ERROR, f"cancelled: {snapshot.error or 'cancelled'}"), attrs
    return Status(StatusCode.UNSET), attrs
