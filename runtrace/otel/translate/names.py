"""Attribute, event and value names of the conventions runtrace reads, each written once.

Grouped by the convention that defines them. Names runtrace writes itself come from its
semantic-convention module (:mod:`runtrace.otel.semconv`) and are only aliased here, so that the
dialects read every name from one place.
"""

from __future__ import annotations

from .. import semconv as sc

# --- OpenTelemetry GenAI semantic conventions (incl. older spellings) --------------------------
GEN_AI_PREFIX = "gen_ai."
OPERATION = sc.GEN_AI_OPERATION_NAME
OP_INVOKE_AGENT = sc.OP_INVOKE_AGENT
OP_CREATE_AGENT = "create_agent"
OP_EXECUTE_TOOL = sc.OP_EXECUTE_TOOL
OP_INVOKE_WORKFLOW = "invoke_workflow"
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
"""``gen_ai.operation.name`` values of one model call (``completion``: OpenLLMetry's older)."""
PROVIDER = sc.GEN_AI_PROVIDER_NAME
SYSTEM = "gen_ai.system"  # older spelling of the provider
AGENT_NAME = sc.GEN_AI_AGENT_NAME
AGENT_ID = "gen_ai.agent.id"
AGENT_DESCRIPTION = sc.GEN_AI_AGENT_DESCRIPTION
CONVERSATION_ID = sc.GEN_AI_CONVERSATION_ID
REQUEST_MODEL = sc.GEN_AI_REQUEST_MODEL
RESPONSE_MODEL = sc.GEN_AI_RESPONSE_MODEL
INPUT_TOKENS = sc.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT_TOKENS = sc.GEN_AI_USAGE_OUTPUT_TOKENS
PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # older
COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"  # older
CACHE_READ_TOKENS = sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
CACHE_WRITE_TOKENS = sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
TOOL_NAME = sc.GEN_AI_TOOL_NAME
TOOL_CALL_ID = sc.GEN_AI_TOOL_CALL_ID
TOOL_ARGUMENTS = sc.GEN_AI_TOOL_CALL_ARGUMENTS
TOOL_RESULT = sc.GEN_AI_TOOL_CALL_RESULT
TOOL_STATUS = "gen_ai.tool.status"  # strands: "success" / "error"
TOOL_STATUS_ERROR = "error"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = sc.ERROR_TYPE
ERROR_TYPE_CANCELLED = sc.ERROR_TYPE_CANCELLED
# Content as events (older conventions, and the log-record form of the newer ones).
EVENT_USER_MESSAGE = "gen_ai.user.message"
EVENT_CHOICE = "gen_ai.choice"
EVENT_TOOL_MESSAGE = "gen_ai.tool.message"  # strands: a tool call's arguments
EVENT_OPERATION_DETAILS = "gen_ai.client.inference.operation.details"
EVENT_FIELD_CONTENT = "content"
EVENT_FIELD_MESSAGE = "message"

# --- OpenTelemetry exceptions --------------------------------------------------------------------
EXCEPTION_EVENT = sc.EXCEPTION_EVENT
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_ESCAPED = "exception.escaped"

# --- pydantic-ai ---------------------------------------------------------------------------------
PAI_RUN_ID = "gen_ai.agent.call.id"
PAI_AGGREGATED_INPUT = "gen_ai.aggregated_usage.input_tokens"
PAI_AGGREGATED_OUTPUT = "gen_ai.aggregated_usage.output_tokens"
PAI_AGGREGATED_CACHE_READ = "gen_ai.aggregated_usage.cache_read.input_tokens"
PAI_AGGREGATED_CACHE_WRITE = "gen_ai.aggregated_usage.cache_creation.input_tokens"
PAI_FINAL_RESULT = "final_result"
PAI_ALL_MESSAGES = "pydantic_ai.all_messages"
PAI_PREFIX = "pydantic_ai."
PAI_NEW_MESSAGE_INDEX = "pydantic_ai.new_message_index"
PAI_DEFERRAL = "pydantic_ai.tool.deferral.name"
PAI_V2_AGENT_NAME = "agent_name"
PAI_V2_TOOL_ARGUMENTS = "tool_arguments"
PAI_V2_TOOL_RESULT = "tool_response"
PAI_V2_SPAN_NAMES = frozenset({"agent run", "running tool", "running output function"})

# --- strands-agents ------------------------------------------------------------------------------
STRANDS_CANCELLATION = "strands.cancellation.type"

# --- OpenInference (Arize) -----------------------------------------------------------------------
OI_SPAN_KIND = "openinference.span.kind"
OI_AGENT = "AGENT"
OI_CHAIN = "CHAIN"
OI_TOOL = "TOOL"
OI_LLM = "LLM"
OI_AGENT_NAME = "agent.name"
OI_SESSION_ID = "session.id"
OI_INPUT = "input.value"
OI_OUTPUT = "output.value"
OI_TOOL_NAME = "tool.name"
OI_TOOL_CALL_ID = "tool_call.id"
OI_TOOL_ID = "tool.id"
OI_MODEL_NAME = "llm.model_name"
OI_INPUT_MESSAGES = "llm.input_messages"
OI_MESSAGE_ROLE = "message.role"
OI_MESSAGE_CONTENT = "message.content"
OI_PROMPT_TOKENS = "llm.token_count.prompt"
OI_COMPLETION_TOKENS = "llm.token_count.completion"
OI_CACHE_READ_TOKENS = "llm.token_count.prompt_details.cache_read"
OI_CACHE_WRITE_TOKENS = "llm.token_count.prompt_details.cache_write"

# --- OpenLLMetry (Traceloop) ---------------------------------------------------------------------
TL_SPAN_KIND = "traceloop.span.kind"
TL_WORKFLOW = "workflow"
TL_TASK = "task"
TL_AGENT = "agent"
TL_TOOL = "tool"
TL_ENTITY_NAME = "traceloop.entity.name"
TL_ENTITY_INPUT = "traceloop.entity.input"
TL_ENTITY_OUTPUT = "traceloop.entity.output"
TL_WORKFLOW_NAME = "traceloop.workflow.name"
TL_SESSION_IDS = (
    "traceloop.association.properties.session_id",
    "traceloop.association.properties.thread_id",
)
TL_REQUEST_TYPE = "llm.request.type"  # "chat" / "completion" on OpenLLMetry's model spans
