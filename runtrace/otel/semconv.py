"""Every attribute name and fixed value runtrace puts on spans, in one place.

The OpenTelemetry GenAI semantic-convention names where one exists (as in
opentelemetry-semantic-conventions 0.5x-0.6x, still "Development"), runtrace's own under
``runtrace.*``. Nothing else in the package spells an attribute name, so a rename happens here
once, and the translator of foreign spans reads the same constants the processor writes.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ERROR_MESSAGE",
    "ERROR_TYPE",
    "ERROR_TYPE_AGENT",
    "ERROR_TYPE_CANCELLED",
    "ERROR_TYPE_SUBAGENT",
    "ERROR_TYPE_TOOL",
    "EVENT_JSON",
    "EVENT_OMITTED",
    "EVENT_PREFIX",
    "EVENT_SEQUENCE",
    "EVENT_TRUNCATED",
    "EXCEPTION_EVENT",
    "GEN_AI_AGENT_DESCRIPTION",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_TOOL_CALL_ARGUMENTS",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_CALL_RESULT",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "KIND_RUN",
    "KIND_SUBAGENT",
    "KIND_TOOL",
    "OP_EXECUTE_TOOL",
    "OP_INVOKE_AGENT",
    "RUN_EVENT_COUNT",
    "RUN_ID",
    "RUN_PROMPT",
    "RUN_RESULT",
    "RUN_SPAN_DROPPED_EVENTS",
    "RUN_STATUS",
    "SPAN_KIND",
    "SPAN_UNFINISHED",
    "SUBAGENT_PARENT_SESSION_ID",
    "SUBAGENT_SUCCESS",
    "SUBAGENT_TASK_ID",
    "TOOL_EXIT_CODE",
]

# --- GenAI semantic conventions ------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_DESCRIPTION: Final = "gen_ai.agent.description"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
ERROR_TYPE: Final = "error.type"
ERROR_MESSAGE: Final = "error.message"

OP_INVOKE_AGENT: Final = "invoke_agent"
"""``gen_ai.operation.name`` of an agent invocation: a run span, or a subagent child span."""
OP_EXECUTE_TOOL: Final = "execute_tool"
"""``gen_ai.operation.name`` of a tool call's child span."""

EXCEPTION_EVENT: Final = "exception"
"""The span event OpenTelemetry's ``record_exception`` adds (its message is the run's error)."""

# --- runtrace's own ------------------------------------------------------------------------------
RUN_ID: Final = "runtrace.run.id"
RUN_STATUS: Final = "runtrace.run.status"
RUN_EVENT_COUNT: Final = "runtrace.run.event_count"
RUN_SPAN_DROPPED_EVENTS: Final = "runtrace.run.span_dropped_events"
RUN_PROMPT: Final = "runtrace.run.prompt"
RUN_RESULT: Final = "runtrace.run.result"

SPAN_KIND: Final = "runtrace.span.kind"
"""Marks runtrace's own spans: :data:`KIND_RUN` on run spans, :data:`KIND_TOOL` /
:data:`KIND_SUBAGENT` on its child spans (which are not runs). A span without it is foreign."""
KIND_RUN: Final = "run"
KIND_TOOL: Final = "tool"
KIND_SUBAGENT: Final = "subagent"
SPAN_UNFINISHED: Final = "runtrace.span.unfinished"
"""On a child span that ended with its run, before its closing event arrived."""

TOOL_EXIT_CODE: Final = "runtrace.tool.exit_code"
SUBAGENT_TASK_ID: Final = "runtrace.subagent.task_id"
SUBAGENT_PARENT_SESSION_ID: Final = "runtrace.subagent.parent_session_id"
SUBAGENT_SUCCESS: Final = "runtrace.subagent.success"

EVENT_PREFIX: Final = "runtrace.event."
"""Span-event attributes of event fields without a GenAI name: ``runtrace.event.<field>``."""
EVENT_SEQUENCE: Final = "runtrace.record.sequence"
"""The event's place in the run; also marks a span event as recorded through runtrace."""
EVENT_OMITTED: Final = "runtrace.record.omitted"
"""Content fields left off the span event because capture is off."""
EVENT_TRUNCATED: Final = "runtrace.record.truncated"
"""Attribute keys whose string value was cut to ``max_value_length``."""
EVENT_JSON: Final = "runtrace.record.json"
"""Attribute keys whose value is JSON text: values that are not flat attributes (dicts...), and
integers beyond 64 bits, written as their decimal digits (which are JSON for the same integer)."""

ERROR_TYPE_CANCELLED: Final = "cancelled"
ERROR_TYPE_AGENT: Final = "agent_error"
ERROR_TYPE_TOOL: Final = "tool_error"
ERROR_TYPE_SUBAGENT: Final = "subagent_failed"
