"""Events and runs as OpenTelemetry attributes, both ways; pure functions, no SDK state.

Everything that decides what a span or a span event looks like lives here, so the live
:class:`~runtrace.otel.processor.RunSpanProcessor` and a later replay of stored runs (``runtrace
forward``) produce the same spans:

- :func:`event_attributes` flattens an event into span-event attributes, using the GenAI
  semantic-convention names where they exist and ``runtrace.event.<field>`` for the rest.
  Content (prompts, outputs, tool arguments...) is left off unless capture is on, and long strings
  are truncated with a marker. :func:`event_from_attributes` is the reverse, used to pick up events
  added to a run span with the plain OpenTelemetry API.
- :func:`run_start_attributes`, :func:`run_end_attributes` and :func:`run_status` give a run span's
  attributes and status from its snapshot.
- :func:`child_span_start` and :func:`child_span_end` say which events open and close the
  ``execute_tool {name}`` and ``invoke_agent {agent}`` child spans; :func:`plan_child_spans` pairs
  them over a finished run's records.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel

from ..events import BaseEvent, GenericEvent, event_class, parse_event
from ..runs import RunEventRecord, RunSnapshot, RunStatus

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "CONTENT_FIELDS",
    "ERROR_MESSAGE",
    "ERROR_TYPE",
    "EVENT_JSON",
    "EVENT_OMITTED",
    "EVENT_PREFIX",
    "EVENT_SEQUENCE",
    "EVENT_TRUNCATED",
    "GENERIC_ID_MAX_LENGTH",
    "GENERIC_ID_SUFFIXES",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_TOOL_CALL_ARGUMENTS",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_CALL_RESULT",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "RUN_EVENT_COUNT",
    "RUN_ID",
    "RUN_PROMPT",
    "RUN_RESULT",
    "RUN_SPAN_DROPPED_EVENTS",
    "RUN_STATUS",
    "SPAN_KIND",
    "AttributeValue",
    "ChildSpan",
    "ChildSpanEnd",
    "ChildSpanStart",
    "SpanSettings",
    "child_span_end",
    "child_span_start",
    "content_capture_from_env",
    "event_attributes",
    "event_from_attributes",
    "is_run_span",
    "plan_child_spans",
    "run_end_attributes",
    "run_span_name",
    "run_start_attributes",
    "run_status",
    "truncate",
]

AttributeValue = str | bool | int | float | tuple[str, ...] | tuple[int, ...] | tuple[float, ...]
"""What an OpenTelemetry attribute can hold (sequences are homogeneous)."""

# GenAI semantic conventions (names as in opentelemetry-semantic-conventions 0.5x-0.6x).
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
ERROR_TYPE = "error.type"
ERROR_MESSAGE = "error.message"

# runtrace's own.
RUN_ID = "runtrace.run.id"
RUN_STATUS = "runtrace.run.status"
RUN_EVENT_COUNT = "runtrace.run.event_count"
RUN_SPAN_DROPPED_EVENTS = "runtrace.run.span_dropped_events"
RUN_PROMPT = "runtrace.run.prompt"
RUN_RESULT = "runtrace.run.result"
SPAN_KIND = "runtrace.span.kind"
"""``run`` on run spans, ``tool`` / ``subagent`` on runtrace's child spans (which are not runs)."""
EVENT_PREFIX = "runtrace.event."
EVENT_SEQUENCE = "runtrace.record.sequence"
"""The event's place in the run; also marks a span event as recorded through runtrace."""
EVENT_OMITTED = "runtrace.record.omitted"
"""Content fields left off the span event because capture is off."""
EVENT_TRUNCATED = "runtrace.record.truncated"
"""Attribute keys whose string value was cut to ``max_value_length``."""
EVENT_JSON = "runtrace.record.json"
"""Attribute keys whose value is JSON text: values that are not flat attributes (dicts...)."""

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

CONTENT_FIELDS: frozenset[str] = frozenset(
    {
        "prompt",
        "text",
        "delta",
        "args",
        "output",
        "summary",
        "plan",
        "metadata",
        "question",
        "content",
        "messages",
        "input",
        "response",
        "query",
    }
)
"""Event fields that carry content: user or model text, tool inputs and outputs.

Events of a type runtrace has no class for (:class:`~runtrace.events.GenericEvent`) are treated
more strictly, since their fields are unknown: see :func:`event_attributes`."""

GENERIC_ID_SUFFIXES: tuple[str, ...] = ("id", "name", "status", "kind", "type")
"""Without capture, the only strings of a generic event that go on spans are short ones whose
field name ends with one of these (``call_id``, ``tool_name``, ``status``...)."""
GENERIC_ID_MAX_LENGTH = 128

_TRUE = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event", "event_only"})


def content_capture_from_env() -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` turns content capture on."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _TRUE


@dataclass(frozen=True)
class SpanSettings:
    """How runs look on spans. The store always keeps everything; these only shape the spans.

    ``capture_content``: put prompts, outputs and tool arguments on spans (off by default, as the
    GenAI conventions ask; the environment variable turns it on). ``max_value_length``: longer
    strings are cut on spans and end with a marker saying how long they were. ``cancelled_status``:
    ``"error"`` (default) or ``"unset"`` for backends that count every ERROR as a failure; a
    cancelled run carries ``error.type = "cancelled"`` either way. ``child_spans``: open
    ``execute_tool`` / ``invoke_agent`` child spans for tool calls and subagents.
    """

    capture_content: bool = field(default_factory=content_capture_from_env)
    max_value_length: int = 8192
    cancelled_status: Literal["error", "unset"] = "error"
    child_spans: bool = True
    content_fields: frozenset[str] = CONTENT_FIELDS

    def __post_init__(self) -> None:
        if self.max_value_length < 16:
            raise ValueError("max_value_length must be at least 16")
        if self.cancelled_status not in ("error", "unset"):
            raise ValueError("cancelled_status must be 'error' or 'unset'")


_MARKER = "...[runtrace: truncated, {} chars]"


def truncate(value: str, max_length: int) -> str:
    """``value`` cut to at most ``max_length`` characters, marker included, when it is longer."""
    if len(value) <= max_length:
        return value
    marker = _MARKER.format(len(value))
    return value[: max(0, max_length - len(marker))] + marker


# --- event -> attributes -------------------------------------------------------------------------

_TOOL_EVENTS = frozenset(
    {"tool_start", "tool_input_delta", "tool_execution_start", "tool_output_delta", "tool_end"}
)
_SUBAGENT_EVENTS = frozenset({"subagent_start", "subagent_progress", "subagent_end"})
_TOOL_ARG_EVENTS = _TOOL_EVENTS | {"confirmation_required", "permission_denied"}

# Field -> attribute key, by event type where the meaning depends on it; "*" applies to all.
_FIELD_KEYS: dict[str, dict[str, str]] = {"*": {"tool_id": GEN_AI_TOOL_CALL_ID}}
_FIELD_KEYS["*"]["tool_name"] = GEN_AI_TOOL_NAME
for _t in _TOOL_EVENTS:
    _FIELD_KEYS[_t] = {
        "id": GEN_AI_TOOL_CALL_ID,
        "name": GEN_AI_TOOL_NAME,
        "error_kind": ERROR_TYPE,
    }
for _t in _TOOL_ARG_EVENTS:
    _FIELD_KEYS.setdefault(_t, {})["args"] = GEN_AI_TOOL_CALL_ARGUMENTS
_FIELD_KEYS["tool_end"]["output"] = GEN_AI_TOOL_CALL_RESULT
_FIELD_KEYS["error"] = {"message": ERROR_MESSAGE}
for _t in _SUBAGENT_EVENTS:
    _FIELD_KEYS[_t] = {"agent": GEN_AI_AGENT_NAME}

# Nested models: sub-field -> key, keyed by the parent field name.
_NESTED_KEYS: dict[str, dict[str, str]] = {
    "usage": {
        "prompt_tokens": GEN_AI_USAGE_INPUT_TOKENS,
        "completion_tokens": GEN_AI_USAGE_OUTPUT_TOKENS,
        "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
        "cache_write_tokens": "gen_ai.usage.cache_creation.input_tokens",
    },
    "meta": {
        "provider": "gen_ai.provider.name",
        "request_model": "gen_ai.request.model",
        "response_model": "gen_ai.response.model",
        "response_id": "gen_ai.response.id",
    },
}

_SCALARS = (str, bool, int, float)


def _field_key(event_type: str, name: str) -> str:
    keys = _FIELD_KEYS.get(event_type)
    if keys is not None:
        key = keys.get(name)
        if key is not None:
            return key
    return _FIELD_KEYS["*"].get(name) or EVENT_PREFIX + name


def _nested_key(parent: str, parent_key: str, name: str) -> str:
    keys = _NESTED_KEYS.get(parent)
    if keys is not None:
        key = keys.get(name)
        if key is not None:
            return key
    return f"{parent_key}.{name}"


def _homogeneous(values: Sequence[Any]) -> bool:
    first = type(values[0])
    return first in _SCALARS and all(type(v) is first for v in values)


class _Encoder:
    """Flattens the values that are not plain scalars; notes truncated and JSON-encoded keys."""

    __slots__ = ("attrs", "json_keys", "max_len", "truncated")

    def __init__(self, settings: SpanSettings, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.max_len = settings.max_value_length
        self.truncated: list[str] | None = None
        self.json_keys: list[str] | None = None

    def put(self, key: str, value: Any) -> None:
        if value is None:
            return
        kind = type(value)
        if kind is str:
            if len(value) > self.max_len:
                value = truncate(value, self.max_len)
                self._note("truncated", key)
            self.attrs[key] = value
        elif kind in (bool, int, float):
            self.attrs[key] = value
        elif isinstance(value, BaseModel):
            self.put_model(key, key, value)
        elif kind in (list, tuple) and (not value or _homogeneous(value)):
            if value and type(value[0]) is str and any(len(v) > self.max_len for v in value):
                self.put_json(key, value)
            else:
                self.attrs[key] = tuple(value)
        elif isinstance(value, str):  # str subclasses such as str enums
            self.put(key, str(value))
        else:
            self.put_json(key, value)

    def put_json(self, key: str, value: Any) -> None:
        text = json.dumps(value, separators=(",", ":"), default=_json_default, ensure_ascii=False)
        self._note("json_keys", key)
        if len(text) > self.max_len:
            text = truncate(text, self.max_len)
            self._note("truncated", key)
        self.attrs[key] = text

    def put_model(self, parent: str, parent_key: str, model: BaseModel) -> None:
        data = model.__dict__
        extra = model.__pydantic_extra__
        for name, value in data.items() if not extra else {**data, **extra}.items():
            if value is None or (type(value) is list and not value):
                continue  # None and empty lists are the nested models' defaults
            self.put(_nested_key(parent, parent_key, name), value)

    def _note(self, which: str, key: str) -> None:
        current = getattr(self, which)
        if current is None:
            setattr(self, which, [key])
        else:
            current.append(key)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


_DEFAULT_SETTINGS: SpanSettings | None = None


def _default_settings() -> SpanSettings:
    global _DEFAULT_SETTINGS
    if _DEFAULT_SETTINGS is None:
        _DEFAULT_SETTINGS = SpanSettings()
    return _DEFAULT_SETTINGS


def event_attributes(
    event: BaseEvent, settings: SpanSettings | None = None, *, sequence: int | None = None
) -> dict[str, AttributeValue]:
    """The span-event attributes of ``event`` (the span event itself is named ``event.type``).

    GenAI names where they exist (``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
    ``gen_ai.usage.input_tokens``, ``error.type``...), ``runtrace.event.<field>`` otherwise,
    nested models flattened with dots. Content fields are left off unless
    ``settings.capture_content``, and listed in ``runtrace.record.omitted``; for an event of a
    type runtrace has no class for (a ``GenericEvent``), and for fields a core event does not
    declare, every field but numbers, booleans and short identifiers (strings of at most 128
    characters named ``*id``, ``*name``, ``*status``, ``*kind`` or ``*type``) counts as content.
    Values that are not flat attributes become JSON text, listed in ``runtrace.record.json``;
    strings longer than ``settings.max_value_length`` are truncated and listed in
    ``runtrace.record.truncated``.
    ``sequence`` (``runtrace.record.sequence``, the record's place in the run) marks the span
    event as recorded through runtrace. Field names that contain dots come back nested.
    """
    settings = settings or _default_settings()
    event_type = event.type
    keys = _KEYS_BY_TYPE.get(event_type)
    if keys is None:
        keys = _KEYS_BY_TYPE[event_type] = {}
    capture = settings.capture_content
    content = settings.content_fields
    max_len = settings.max_value_length
    attrs: dict[str, Any] = {}
    enc: _Encoder | None = None
    omitted: list[str] | None = None
    data = event.__dict__
    extra = event.__pydantic_extra__
    # Unknown event types, and fields a core event does not declare: any of them may be content,
    # so without capture only numbers, booleans and short identifiers go on the span.
    generic = not capture and type(event) is GenericEvent
    unknown_extra = extra if not capture and extra else None
    for name, value in data.items() if not extra else {**data, **extra}.items():
        if value is None or name == "type":
            continue
        if not capture and (
            name in content
            or (
                (generic or (unknown_extra is not None and name in unknown_extra))
                and not _generic_on_span(name, value)
            )
        ):
            if omitted is None:
                omitted = [name]
            else:
                omitted.append(name)
            continue
        key = keys.get(name)
        if key is None:
            key = keys[name] = _field_key(event_type, name)
        kind = type(value)
        if (kind is str and len(value) <= max_len) or kind is int or kind is bool or kind is float:
            attrs[key] = value  # the common case, without the encoder
            continue
        if enc is None:
            enc = _Encoder(settings, attrs)
        if isinstance(value, BaseModel):
            enc.put_model(name, key, value)
        else:
            enc.put(key, value)
    if sequence is not None:
        attrs[EVENT_SEQUENCE] = sequence
    if omitted:
        attrs[EVENT_OMITTED] = tuple(omitted)
    if enc is not None:
        if enc.truncated:
            attrs[EVENT_TRUNCATED] = tuple(enc.truncated)
        if enc.json_keys:
            attrs[EVENT_JSON] = tuple(enc.json_keys)
    return attrs


_KEYS_BY_TYPE: dict[str, dict[str, str]] = {}


def _generic_on_span(name: str, value: Any) -> bool:
    """Whether a field of a generic event goes on spans with capture off: ints, floats and
    booleans, and short strings named like identifiers."""
    kind = type(value)
    if kind is int or kind is float or kind is bool:
        return True
    return (
        kind is str
        and len(value) <= GENERIC_ID_MAX_LENGTH
        and name.lower().endswith(GENERIC_ID_SUFFIXES)
    )


# --- attributes -> event -------------------------------------------------------------------------

_BOOKKEEPING = frozenset({EVENT_SEQUENCE, EVENT_OMITTED, EVENT_TRUNCATED, EVENT_JSON})


def _reverse_table(event_type: str) -> dict[str, tuple[str, ...]]:
    """Attribute key -> field path for one event type (GenAI names and nested GenAI names)."""
    table: dict[str, tuple[str, ...]] = {}
    for scope in ("*", event_type):
        for name, key in _FIELD_KEYS.get(scope, {}).items():
            table[key] = (name,)
    for parent, keys in _NESTED_KEYS.items():
        for name, key in keys.items():
            table[key] = (parent, name)
    return table


_REVERSE: dict[str, dict[str, tuple[str, ...]]] = {}


def _path_for(event_type: str, key: str) -> tuple[str, ...]:
    table = _REVERSE.get(event_type)
    if table is None:
        table = _REVERSE[event_type] = _reverse_table(event_type)
    path = table.get(key)
    if path is not None:
        return path
    if key.startswith(EVENT_PREFIX):
        return tuple(key[len(EVENT_PREFIX) :].split("."))
    return (key,)  # plain OpenTelemetry code may name fields directly: {"id": ..., "name": ...}


def _required_str_fields(event_type: str) -> frozenset[str]:
    cls = event_class(event_type)
    if cls is None:
        return frozenset()
    return frozenset(
        name for name, f in cls.model_fields.items() if f.is_required() and f.annotation is str
    )


def event_from_attributes(name: str, attributes: Mapping[str, Any] | None) -> BaseEvent:
    """The event a span event stands for: the reverse of :func:`event_attributes`.

    Accepts runtrace's own attribute names, the GenAI names it uses, and bare field names (so
    ``span.add_event("tool_start", {"id": "t1", "name": "bash"})`` works). JSON-encoded values
    listed in ``runtrace.record.json`` are decoded unless truncated; content fields that capture
    left off come back empty. Raises ``pydantic.ValidationError`` if a core event's fields do not
    fit.
    """
    attributes = attributes or {}
    json_keys = set(attributes.get(EVENT_JSON, ())) - set(attributes.get(EVENT_TRUNCATED, ()))
    data: dict[str, Any] = {"type": name}
    for key, value in attributes.items():
        if key in _BOOKKEEPING:
            continue
        if key in json_keys:
            with contextlib.suppress(TypeError, ValueError):
                value = json.loads(value)
        elif isinstance(value, tuple):
            value = list(value)
        target = data
        *parents, leaf = _path_for(name, key)
        for part in parents:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[leaf] = value
    for omitted in attributes.get(EVENT_OMITTED, ()):
        if omitted not in data and omitted in _required_str_fields(name):
            data[omitted] = ""
    return parse_event(data)


# --- run spans -----------------------------------------------------------------------------------


def run_span_name(agent_name: str | None) -> str:
    """``invoke_agent {agent_name}``, or ``invoke_agent`` for a run without an agent name."""
    return f"invoke_agent {agent_name}" if agent_name else "invoke_agent"


def is_run_span(attributes: Mapping[str, Any] | None) -> bool:
    """A span is a run when runtrace started it as one, or it is a GenAI ``invoke_agent`` span
    that is not one of runtrace's own child spans (a subagent seen from its parent run)."""
    if not attributes:
        return False
    kind = attributes.get(SPAN_KIND)
    if kind is not None:
        return kind == "run"
    return attributes.get(GEN_AI_OPERATION_NAME) == "invoke_agent"


def run_start_attributes(
    *,
    run_id: str,
    session_id: str,
    agent_name: str | None = None,
    prompt: str = "",
    settings: SpanSettings | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, AttributeValue]:
    """A run span's attributes at start; ``extra`` (the caller's own) are added as given."""
    settings = settings or _default_settings()
    attrs: dict[str, Any] = {
        GEN_AI_OPERATION_NAME: "invoke_agent",
        GEN_AI_CONVERSATION_ID: session_id,
        RUN_ID: run_id,
        SPAN_KIND: "run",
    }
    if agent_name:
        attrs[GEN_AI_AGENT_NAME] = agent_name
    if prompt and settings.capture_content:
        attrs[RUN_PROMPT] = truncate(prompt, settings.max_value_length)
    if extra:
        for key, value in extra.items():
            if value is not None:
                attrs[key] = value
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
    settings = settings or _default_settings()
    attrs: dict[str, Any] = {
        RUN_EVENT_COUNT: snapshot.event_count,
        GEN_AI_USAGE_INPUT_TOKENS: snapshot.input_tokens,
        GEN_AI_USAGE_OUTPUT_TOKENS: snapshot.output_tokens,
    }
    if span_dropped_events is not None:
        attrs[RUN_SPAN_DROPPED_EVENTS] = span_dropped_events
    if settings.capture_content and snapshot.result_text:
        attrs[RUN_RESULT] = truncate(snapshot.result_text, settings.max_value_length)
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
    settings = settings or _default_settings()
    status = snapshot.status
    attrs: dict[str, Any] = {RUN_STATUS: status.value}
    if status is RunStatus.COMPLETED:
        return Status(StatusCode.OK), attrs
    if status is RunStatus.FAILED:
        attrs[ERROR_TYPE] = error_type or "agent_error"
        return Status(StatusCode.ERROR, snapshot.error or "failed"), attrs
    if status is RunStatus.CANCELLED:
        attrs[ERROR_TYPE] = "cancelled"
        if settings.cancelled_status == "unset":
            return Status(StatusCode.UNSET), attrs
        return Status(StatusCode.ERROR, f"cancelled: {snapshot.error or 'cancelled'}"), attrs
    return Status(StatusCode.UNSET), attrs


# --- child spans ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildSpanStart:
    """An event opens a child span: ``key`` pairs it with the event that closes it."""

    key: tuple[str, str]
    name: str
    attributes: dict[str, AttributeValue]
    start_ms: int | None = None
    """Start time the event itself reports (subagents), else the event's own time."""


@dataclass(frozen=True)
class ChildSpanEnd:
    """An event closes the child span ``key`` with ``status`` and extra attributes."""

    key: tuple[str, str]
    status: Status
    attributes: dict[str, AttributeValue]
    end_ms: int | None = None


def child_span_start(
    event: BaseEvent, run_id: str, settings: SpanSettings | None = None
) -> ChildSpanStart | None:
    """The child span ``event`` opens, if any: ``tool_start`` / ``tool_execution_start`` open
    ``execute_tool {name}``; ``subagent_start`` opens ``invoke_agent {agent}``.

    A ``tool_execution_start`` whose tool call is already open is not a new span; the caller keeps
    the open keys and skips a start whose key is open.
    """
    event_type = event.type
    if event_type in ("tool_start", "tool_execution_start"):
        name = str(getattr(event, "name", ""))
        return ChildSpanStart(
            key=("tool", str(getattr(event, "id", ""))),
            name=f"execute_tool {name}",
            attributes={
                GEN_AI_OPERATION_NAME: "execute_tool",
                GEN_AI_TOOL_NAME: name,
                GEN_AI_TOOL_CALL_ID: str(getattr(event, "id", "")),
                RUN_ID: run_id,
                SPAN_KIND: "tool",
            },
        )
    if event_type == "subagent_start":
        settings = settings or _default_settings()
        agent = str(getattr(event, "agent", ""))
        attrs: dict[str, Any] = {
            GEN_AI_OPERATION_NAME: "invoke_agent",
            GEN_AI_AGENT_NAME: agent,
            GEN_AI_CONVERSATION_ID: str(getattr(event, "session_id", "")),
            RUN_ID: run_id,
            SPAN_KIND: "subagent",
            "runtrace.subagent.task_id": str(getattr(event, "task_id", "")),
            "runtrace.subagent.parent_session_id": str(getattr(event, "parent_session_id", "")),
        }
        description = getattr(event, "description", None)
        if description:
            attrs[GEN_AI_AGENT_DESCRIPTION] = truncate(description, settings.max_value_length)
        started = getattr(event, "started_ms", 0) or None
        return ChildSpanStart(
            key=("subagent", attrs["runtrace.subagent.task_id"]),
            name=f"invoke_agent {agent}" if agent else "invoke_agent",
            attributes=attrs,
            start_ms=started,
        )
    return None


def child_span_end(event: BaseEvent, settings: SpanSettings | None = None) -> ChildSpanEnd | None:
    """The child span ``event`` closes, if any: ``tool_end`` and ``subagent_end``."""
    event_type = event.type
    if event_type == "tool_end":
        settings = settings or _default_settings()
        exit_code = getattr(event, "exit_code", 0)
        error_kind = getattr(event, "error_kind", None)
        attrs: dict[str, Any] = {"runtrace.tool.exit_code": exit_code}
        if settings.capture_content:
            args = getattr(event, "args", None)
            if args is not None:
                text = args if isinstance(args, str) else json.dumps(args, default=_json_default)
                attrs[GEN_AI_TOOL_CALL_ARGUMENTS] = truncate(text, settings.max_value_length)
            attrs[GEN_AI_TOOL_CALL_RESULT] = truncate(
                str(getattr(event, "output", "")), settings.max_value_length
            )
        if error_kind or exit_code != 0:
            attrs[ERROR_TYPE] = error_kind or "tool_error"
            status = Status(StatusCode.ERROR, error_kind or f"exit code {exit_code}")
        else:
            status = Status(StatusCode.OK)
        key = ("tool", str(getattr(event, "id", "")))
        return ChildSpanEnd(key=key, status=status, attributes=attrs)
    if event_type == "subagent_end":
        success = bool(getattr(event, "success", False))
        attrs = {"runtrace.subagent.success": success}
        if success:
            status = Status(StatusCode.OK)
        else:
            attrs[ERROR_TYPE] = "subagent_failed"
            status = Status(StatusCode.ERROR, "subagent failed")
        return ChildSpanEnd(
            key=("subagent", str(getattr(event, "task_id", ""))),
            status=status,
            attributes=attrs,
            end_ms=getattr(event, "finished_ms", 0) or None,
        )
    return None


@dataclass(frozen=True)
class ChildSpan:
    """A child span of a finished run, for replay: times in ms since the epoch."""

    name: str
    start_ms: int
    end_ms: int
    attributes: dict[str, AttributeValue]
    status: Status
    finished: bool
    """False if the run ended before the closing event arrived (the span ends with the run)."""


def plan_child_spans(
    records: Iterable[RunEventRecord],
    run_id: str,
    *,
    run_end_ms: int,
    settings: SpanSettings | None = None,
) -> list[ChildSpan]:
    """Pair the opening and closing events of a run's records into child spans, in start order.

    The same rules the live processor follows, for replaying a stored run. Spans still open at
    the end of the run end at ``run_end_ms`` with status UNSET and ``finished = False``.
    """
    open_spans: dict[tuple[str, str], tuple[ChildSpanStart, int]] = {}
    done: list[tuple[int, ChildSpan]] = []
    order = 0
    for record in records:
        event = record.event
        start = child_span_start(event, run_id, settings)
        if start is not None and start.key not in open_spans:
            open_spans[start.key] = (start, record.timestamp_ms)
            continue
        end = child_span_end(event, settings)
        if end is not None and end.key in open_spans:
            opened, opened_ms = open_spans.pop(end.key)
            order += 1
            start_ms = opened.start_ms or opened_ms
            done.append(
                (
                    start_ms,
                    ChildSpan(
                        name=opened.name,
                        start_ms=start_ms,
                        end_ms=end.end_ms or record.timestamp_ms,
                        attributes={**opened.attributes, **end.attributes},
                        status=end.status,
                        finished=True,
                    ),
                )
            )
    for opened, opened_ms in open_spans.values():
        start_ms = opened.start_ms or opened_ms
        done.append(
            (
                start_ms,
                ChildSpan(
                    name=opened.name,
                    start_ms=start_ms,
                    end_ms=max(run_end_ms, start_ms),
                    attributes=dict(opened.attributes),
                    status=Status(StatusCode.UNSET),
                    finished=False,
                ),
            )
        )
    done.sort(key=lambda pair: pair[0])
    return [span for _, span in done]
