"""OpenLLMetry (Traceloop): ``traceloop.span.kind`` on the spans its decorators and framework
instrumentations (LangGraph, CrewAI...) open.

``agent`` is an agent, ``tool`` a tool call, ``workflow`` a wrapper, ``task`` and ``unknown``
neither. Names come from ``traceloop.entity.name``; content is ``traceloop.entity.input`` /
``output`` (JSON of the call's ``args`` / ``kwargs`` and its return value). Its model spans carry
no kind: the GenAI dialect reads them (``llm.request.type``, ``gen_ai.usage.prompt_tokens``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from . import names as n
from .content import content_text, json_value
from .reading import Role, SpanReading, base, text, tokens

__all__ = ["read", "role"]

DIALECT = "openllmetry"
_ROLES: dict[str, Role] = {
    n.TL_AGENT: "agent",
    n.TL_TOOL: "tool",
    n.TL_WORKFLOW: "wrapper",
    n.TL_TASK: "other",
}
_PROMPT_KWARGS = ("input", "prompt", "query", "question", "message", "messages", "task")


def read(span: ReadableSpan, attributes: Mapping[str, Any] | None = None) -> SpanReading | None:
    """An OpenLLMetry span's reading, or None if the span has no Traceloop kind."""
    a = attributes if attributes is not None else dict(span.attributes or {})
    role_ = role(span.name, a)
    if role_ is None:
        return None
    name = text(a, n.TL_ENTITY_NAME)
    if role_ == "tool":
        return base(
            span,
            DIALECT,
            role_,
            a,
            tool_name=text(a, n.TOOL_NAME) or name or span.name,
            call_id=text(a, n.TOOL_CALL_ID),
            arguments=text(a, n.TL_ENTITY_INPUT),
            tool_result=text(a, n.TL_ENTITY_OUTPUT),
        )
    return base(
        span,
        DIALECT,
        role_,
        a,
        agent_name=text(a, n.AGENT_NAME) or name or text(a, n.TL_WORKFLOW_NAME),
        prompt=_entity_prompt(a.get(n.TL_ENTITY_INPUT)),
        result=content_text(json_value(text(a, n.TL_ENTITY_OUTPUT))),
        tokens=tokens(
            a,
            (n.INPUT_TOKENS, n.PROMPT_TOKENS),
            (n.OUTPUT_TOKENS, n.COMPLETION_TOKENS),
            (n.CACHE_READ_TOKENS, n.CACHE_WRITE_TOKENS),
            aggregate=True,
        ),
    )


def role(name: str, attributes: Mapping[str, Any]) -> Role | None:
    """What a span is by its Traceloop kind, None if it has none."""
    kind = attributes.get(n.TL_SPAN_KIND)
    return _ROLES.get(kind.lower(), "other") if isinstance(kind, str) else None


def _entity_prompt(value: Any) -> str | None:
    """The prompt in ``traceloop.entity.input``: the first string argument, or a keyword such as
    ``input`` / ``messages``; the raw text when neither is there."""
    parsed = json_value(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict) or not ({"args", "kwargs"} & parsed.keys()):
        return content_text(parsed)
    args = parsed.get("args")
    if isinstance(args, list):
        for arg in args:
            if isinstance(arg, str):
                return arg
    kwargs = parsed.get("kwargs")
    if isinstance(kwargs, dict):
        for key in _PROMPT_KWARGS:
            if key in kwargs:
                return content_text(kwargs[key])
    return value if isinstance(value, str) else None
