"""OpenInference (Arize): ``openinference.span.kind`` and no GenAI names.

AGENT is an agent, TOOL a tool call, LLM a model call, CHAIN a wrapper; RETRIEVER, EMBEDDING,
RERANKER, GUARDRAIL and the rest are neither. The kind is often the only attribute set at start.
OpenInference nests AGENT in AGENT (openai-agents' workflow root around the agents that ran), so
an AGENT span ``may_wrap``: it is a run only if it does work of its own (a tool or model child),
else a wrapper. Names: ``agent.name`` (else the span name), ``tool.name``; content
``input.value`` / ``output.value``; usage ``llm.token_count.prompt`` / ``completion`` (a run's
total when on an AGENT span); session ``session.id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from . import names as n
from .content import content_text
from .reading import Role, SpanReading, Tokens, base, text, tokens

__all__ = ["read", "role"]

DIALECT = "openinference"
_ROLES: dict[str, Role] = {
    n.OI_AGENT: "agent",
    n.OI_TOOL: "tool",
    n.OI_LLM: "model",
    n.OI_CHAIN: "wrapper",
}
_CACHE_TOKENS = (n.OI_CACHE_READ_TOKENS, n.OI_CACHE_WRITE_TOKENS)


def read(span: ReadableSpan, attributes: Mapping[str, Any] | None = None) -> SpanReading | None:
    """An OpenInference span's reading, or None if the span has no OpenInference kind."""
    a = attributes if attributes is not None else dict(span.attributes or {})
    role_ = role(span.name, a)
    if role_ is None:
        return None
    if role_ == "agent":
        return base(
            span,
            DIALECT,
            role_,
            a,
            agent_name=text(a, n.OI_AGENT_NAME) or span.name,
            prompt=content_text(a.get(n.OI_INPUT)),
            result=content_text(a.get(n.OI_OUTPUT)),
            tokens=_tokens(a, aggregate=True),
            may_wrap=True,
        )
    if role_ == "tool":
        return base(
            span,
            DIALECT,
            role_,
            a,
            tool_name=text(a, n.OI_TOOL_NAME) or span.name,
            call_id=text(a, n.OI_TOOL_CALL_ID, n.OI_TOOL_ID),
            arguments=text(a, n.OI_INPUT),
            tool_result=text(a, n.OI_OUTPUT),
        )
    if role_ == "model":
        return base(
            span,
            DIALECT,
            role_,
            a,
            model=text(a, n.OI_MODEL_NAME),
            prompt=_last_user_message(a),
            tokens=_tokens(a, aggregate=False),
        )
    return base(
        span,
        DIALECT,
        role_,
        a,
        prompt=content_text(a.get(n.OI_INPUT)),
        result=content_text(a.get(n.OI_OUTPUT)),
    )


def role(name: str, attributes: Mapping[str, Any]) -> Role | None:
    """What a span is by its OpenInference kind, None if it has none."""
    kind = attributes.get(n.OI_SPAN_KIND)
    return _ROLES.get(kind.upper(), "other") if isinstance(kind, str) else None


def _last_user_message(attributes: Mapping[str, Any]) -> str | None:
    """The last user message of an LLM span's flattened ``llm.input_messages.{i}.message.*``."""
    prefix = n.OI_INPUT_MESSAGES + "."
    found: tuple[int, str] | None = None
    for key, value in attributes.items():
        if not key.startswith(prefix) or not key.endswith("." + n.OI_MESSAGE_ROLE):
            continue
        index = key[len(prefix) : -len(n.OI_MESSAGE_ROLE) - 1]
        content = attributes.get(f"{prefix}{index}.{n.OI_MESSAGE_CONTENT}")
        if (
            value == "user"
            and isinstance(content, str)
            and index.isdigit()
            and (found is None or int(index) > found[0])
        ):
            found = (int(index), content)
    return None if found is None else found[1]


def _tokens(attributes: Mapping[str, Any], *, aggregate: bool) -> Tokens | None:
    return tokens(
        attributes,
        (n.OI_PROMPT_TOKENS,),
        (n.OI_COMPLETION_TOKENS,),
        _CACHE_TOKENS,
        aggregate=aggregate,
    )
