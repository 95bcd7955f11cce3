"""The OpenTelemetry GenAI conventions, with their older spellings.

``gen_ai.operation.name`` says what a span is: ``invoke_agent`` an agent (a run), ``execute_tool``
a tool call, ``chat`` / ``text_completion`` / ``generate_content`` a model call, ``invoke_workflow``
a wrapper; ``create_agent`` and anything else is neither. Spans started before their attributes
are set (strands) are recognised by their convention names (``invoke_agent {name}``,
``execute_tool {name}``) until the attributes arrive. Usage on an agent span is the run's total.
Content comes from the opt-in attributes (``gen_ai.input.messages``...), the older span events
(``gen_ai.user.message``, ``gen_ai.choice``, ``gen_ai.tool.message``) or the operation-details
event. strands' ``strands.cancellation.type`` marks a cancelled run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan

from . import names as n
from .content import event_text, messages_text
from .reading import Role, SpanReading, base, plain_events, text, tokens

__all__ = ["fields", "read", "role_of"]

DIALECT = "genai"
_INPUT_TOKENS = (n.INPUT_TOKENS, n.PROMPT_TOKENS)
_OUTPUT_TOKENS = (n.OUTPUT_TOKENS, n.COMPLETION_TOKENS)
_CACHE_TOKENS = (n.CACHE_READ_TOKENS, n.CACHE_WRITE_TOKENS)


def read(span: ReadableSpan, attributes: Mapping[str, Any] | None = None) -> SpanReading | None:
    """A GenAI span's reading, or None if the span follows none of the GenAI conventions.
    ``attributes``: the span's, when the caller has them as a plain dict already."""
    a = attributes if attributes is not None else dict(span.attributes or {})
    role = role_of(span.name, a)
    if role is None:
        return None
    events = span.events  # the SDK copies them on every access: once per reading
    return base(span, DIALECT, role, a, span_events=events, **fields(span, role, a, events))


def role_of(name: str, attributes: Mapping[str, Any]) -> Role | None:
    """What a span is by the GenAI conventions, or None if it says nothing in their terms."""
    operation = attributes.get(n.OPERATION)
    if isinstance(operation, str):
        if operation == n.OP_INVOKE_AGENT:
            return "agent"
        if operation == n.OP_EXECUTE_TOOL:
            return "tool"
        if operation in n.MODEL_OPERATIONS:
            return "model"
        return "wrapper" if operation == n.OP_INVOKE_WORKFLOW else "other"
    if attributes.get(n.TL_REQUEST_TYPE) in n.MODEL_OPERATIONS:
        return "model"  # OpenLLMetry's model spans before gen_ai.operation.name
    if _suffix(name, n.OP_INVOKE_AGENT) is not None:
        return "agent"
    if _suffix(name, n.OP_EXECUTE_TOOL) is not None:
        return "tool"
    if any(key.startswith(n.GEN_AI_PREFIX) for key in attributes):
        usage = any(key in attributes for key in (*_INPUT_TOKENS, *_OUTPUT_TOKENS))
        return "model" if usage else "other"
    return None


def fields(
    span: ReadableSpan, role: Role, a: Mapping[str, Any], events: Sequence[Event] | None = None
) -> dict[str, Any]:
    """The reading's fields by the GenAI conventions, for a span whose role is known; other
    dialects build on them. ``events``: ``span.events``, if the caller has them."""
    if events is None:
        events = span.events
    if role == "agent":
        return {
            "agent_name": text(a, n.AGENT_NAME)
            or _suffix(span.name, n.OP_INVOKE_AGENT)
            or text(a, n.AGENT_ID),
            "description": text(a, n.AGENT_DESCRIPTION),
            "prompt": prompt(events, a),
            "result": result(events, a),
            "model": text(a, n.RESPONSE_MODEL, n.REQUEST_MODEL),
            "tokens": tokens(a, _INPUT_TOKENS, _OUTPUT_TOKENS, _CACHE_TOKENS, aggregate=True),
            "events": plain_events(events),
        }
    if role == "tool":
        found = {
            "tool_name": text(a, n.TOOL_NAME) or _suffix(span.name, n.OP_EXECUTE_TOOL),
            "call_id": text(a, n.TOOL_CALL_ID),
            "arguments": text(a, n.TOOL_ARGUMENTS)
            or event_text(events, n.EVENT_TOOL_MESSAGE, n.EVENT_FIELD_CONTENT),
            "tool_result": text(a, n.TOOL_RESULT)
            or event_text(events, n.EVENT_CHOICE, n.EVENT_FIELD_MESSAGE),
        }
        if a.get(n.TOOL_STATUS) == n.TOOL_STATUS_ERROR:  # strands, whatever the status says
            found["failed"] = found["tool_result"] or "tool returned an error"
        return found
    if role == "model":
        return {
            "model": text(a, n.RESPONSE_MODEL, n.REQUEST_MODEL),
            "prompt": prompt(events, a),  # the run's prompt when its own span has none
            "tokens": tokens(a, _INPUT_TOKENS, _OUTPUT_TOKENS, _CACHE_TOKENS, aggregate=False),
        }
    return {"agent_name": text(a, n.AGENT_NAME)}


def prompt(events: Sequence[Event], attributes: Mapping[str, Any]) -> str | None:
    """The user's latest message: from ``gen_ai.input.messages``, else the content events."""
    return (
        messages_text(attributes.get(n.INPUT_MESSAGES), "user", last=True)
        or _details(events, n.INPUT_MESSAGES, "user")
        or event_text(events, n.EVENT_USER_MESSAGE, n.EVENT_FIELD_CONTENT)
    )


def result(events: Sequence[Event], attributes: Mapping[str, Any]) -> str | None:
    """The model's final answer: from ``gen_ai.output.messages``, else the content events."""
    text_ = (
        messages_text(attributes.get(n.OUTPUT_MESSAGES), "assistant", last=True)
        or _details(events, n.OUTPUT_MESSAGES, "assistant")
        or event_text(events, n.EVENT_CHOICE, n.EVENT_FIELD_MESSAGE)
    )
    return None if text_ is None else text_.strip()


def _details(events: Sequence[Event], key: str, role: str) -> str | None:
    for event in events:
        if event.name == n.EVENT_OPERATION_DETAILS:
            found = messages_text((event.attributes or {}).get(key), role, last=True)
            if found is not None:
                return found
    return None


def _suffix(name: str, operation: str) -> str | None:
    """``name`` minus the ``{operation} `` prefix GenAI span names carry ("" for the bare name)."""
    if name == operation:
        return ""
    if name.startswith(operation + " "):
        return name[len(operation) + 1 :]
    return None
