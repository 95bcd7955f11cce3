"""pydantic-ai's spans: the GenAI conventions plus what pydantic-ai adds.

Recognised by ``gen_ai.agent.call.id`` (on the run span and, through baggage, its children), any
``pydantic_ai.*`` attribute, or the span names of instrumentation version 2 (``agent run``,
``running tool``). The run span's ``gen_ai.agent.call.id`` is the run id. Its usage is
``gen_ai.aggregated_usage.*``, the run's own total (nested runs excluded), so it never double
counts with the ``chat`` spans' ``gen_ai.usage.*``. The prompt is the first new user message of
``pydantic_ai.all_messages``, the result ``final_result`` (both only with content on). Version 2
names tool content ``tool_arguments`` / ``tool_response``. A tool call with
``pydantic_ai.tool.deferral.name`` was deferred or needs approval: not a failure, whatever its
status (versions before 5 mark it ERROR).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from . import genai
from . import names as n
from .content import messages_text
from .reading import Role, SpanReading, base, number, text, tokens

__all__ = ["read", "role"]

DIALECT = "pydantic_ai"


def read(span: ReadableSpan, attributes: Mapping[str, Any] | None = None) -> SpanReading | None:
    """A pydantic-ai span's reading, or None if pydantic-ai did not write the span."""
    a = attributes if attributes is not None else dict(span.attributes or {})
    role_ = role(span.name, a)
    if role_ is None:
        return None
    events = span.events  # the SDK copies them on every access: once per reading
    found = genai.fields(span, role_, a, events)
    if role_ == "agent":
        start = number(a, n.PAI_NEW_MESSAGE_INDEX) or 0
        aggregate = tokens(
            a,
            (n.PAI_AGGREGATED_INPUT,),
            (n.PAI_AGGREGATED_OUTPUT,),
            (n.PAI_AGGREGATED_CACHE_READ, n.PAI_AGGREGATED_CACHE_WRITE),
            aggregate=True,
        )
        found["run_id"] = text(a, n.PAI_RUN_ID)
        found["agent_name"] = text(a, n.AGENT_NAME, n.PAI_V2_AGENT_NAME) or found["agent_name"]
        found["prompt"] = (
            messages_text(a.get(n.PAI_ALL_MESSAGES), "user", last=False, start=start)
            or found["prompt"]
        )
        found["result"] = text(a, n.PAI_FINAL_RESULT) or found["result"]
        found["tokens"] = aggregate or found["tokens"]
    elif role_ == "tool":
        found["arguments"] = found["arguments"] or text(a, n.PAI_V2_TOOL_ARGUMENTS)
        found["tool_result"] = found["tool_result"] or text(a, n.PAI_V2_TOOL_RESULT)
        deferred = text(a, n.PAI_DEFERRAL)
        if deferred is not None:
            found.update(deferred=deferred, error=None, error_type=None)
    return base(span, DIALECT, role_, a, span_events=events, **found)


def role(name: str, attributes: Mapping[str, Any]) -> Role | None:
    """What a pydantic-ai span is (by the GenAI conventions), None if pydantic-ai did not write
    it."""
    if not _is_pydantic_ai(name, attributes):
        return None
    return genai.role_of(name, attributes) or "other"


def _is_pydantic_ai(name: str, attributes: Mapping[str, Any]) -> bool:
    return (
        n.PAI_RUN_ID in attributes
        or name in n.PAI_V2_SPAN_NAMES
        or n.PAI_AGGREGATED_INPUT in attributes
        or any(key.startswith(n.PAI_PREFIX) for key in attributes)
    )
