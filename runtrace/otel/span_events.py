"""Events <-> span-event attributes, both ways; pure functions, no SDK state.

:func:`event_attributes` is what the live processor and replay put on a span event;
:func:`event_from_attributes` is its reverse, used to pick up events added to a run span with the
plain OpenTelemetry API (and, later, to read runtrace's own spans back from a backend).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ..events import BaseEvent, GenericEvent, event_class, parse_event
from . import semconv as sc
from .settings import GENERIC_ID_MAX_LENGTH, GENERIC_ID_SUFFIXES, SpanSettings, default_settings
from .settings import truncate as _truncate
from .values import INT64_MAX, INT64_MIN, AttributeValue

__all__ = ["event_attributes", "event_from_attributes", "json_default"]

_TOOL_EVENTS = frozenset(
    {"tool_start", "tool_input_delta", "tool_execution_start", "tool_output_delta", "tool_end"}
)
_SUBAGENT_EVENTS = frozenset({"subagent_start", "subagent_progress", "subagent_end"})
_TOOL_ARG_EVENTS = _TOOL_EVENTS | {"confirmation_required", "permission_denied"}

# Field -> attribute key, by event type where the meaning depends on it; "*" applies to all.
_FIELD_KEYS: dict[str, dict[str, str]] = {
    "*": {"tool_id": sc.GEN_AI_TOOL_CALL_ID, "tool_name": sc.GEN_AI_TOOL_NAME},
    "error": {"message": sc.ERROR_MESSAGE},
}
for _t in _TOOL_EVENTS:
    _FIELD_KEYS[_t] = {
        "id": sc.GEN_AI_TOOL_CALL_ID,
        "name": sc.GEN_AI_TOOL_NAME,
        "error_kind": sc.ERROR_TYPE,
    }
for _t in _TOOL_ARG_EVENTS:
    _FIELD_KEYS.setdefault(_t, {})["args"] = sc.GEN_AI_TOOL_CALL_ARGUMENTS
_FIELD_KEYS["tool_end"]["output"] = sc.GEN_AI_TOOL_CALL_RESULT
for _t in _SUBAGENT_EVENTS:
    _FIELD_KEYS[_t] = {"agent": sc.GEN_AI_AGENT_NAME}

# Nested models: sub-field -> key, keyed by the parent field name.
_NESTED_KEYS: dict[str, dict[str, str]] = {
    "usage": {
        "prompt_tokens": sc.GEN_AI_USAGE_INPUT_TOKENS,
        "completion_tokens": sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        "cache_read_tokens": sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        "cache_write_tokens": sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    },
    "meta": {
        "provider": sc.GEN_AI_PROVIDER_NAME,
        "request_model": sc.GEN_AI_REQUEST_MODEL,
        "response_model": sc.GEN_AI_RESPONSE_MODEL,
        "response_id": sc.GEN_AI_RESPONSE_ID,
    },
}

_SCALARS = (str, bool, int, float)


def _field_key(event_type: str, name: str) -> str:
    keys = _FIELD_KEYS.get(event_type)
    if keys is not None:
        key = keys.get(name)
        if key is not None:
            return key
    return _FIELD_KEYS["*"].get(name) or sc.EVENT_PREFIX + name


def _nested_key(parent: str, parent_key: str, name: str) -> str:
    keys = _NESTED_KEYS.get(parent)
    if keys is not None:
        key = keys.get(name)
        if key is not None:
            return key
    return f"{parent_key}.{name}"


def _flat_sequence(values: Sequence[Any]) -> bool:
    """A sequence OTLP can carry as an array: one scalar type throughout, ints within int64."""
    first = type(values[0])
    if first not in _SCALARS or not all(type(v) is first for v in values):
        return False
    return first is not int or all(INT64_MIN <= v <= INT64_MAX for v in values)


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback for what events may hold beyond JSON types: nested models."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


class _Encoder:
    """Flattens the values that are not plain scalars; notes truncated and JSON-encoded keys."""

    __slots__ = ("attrs", "json_keys", "max_len", "truncated")

    def __init__(self, settings: SpanSettings, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.max_len = settings.max_value_length
        self.truncated: list[str] = []
        self.json_keys: list[str] = []

    def put(self, key: str, value: Any) -> None:
        if value is None:
            return
        kind = type(value)
        if kind is str:
            if len(value) > self.max_len:
                value = _truncate(value, self.max_len)
                self.truncated.append(key)
            self.attrs[key] = value
        elif kind is int and not INT64_MIN <= value <= INT64_MAX:
            # Beyond OTLP's int64: the decimal digits, which are also JSON for the same int.
            # Never truncated, so the value survives whole (see runtrace.otel.values).
            self.json_keys.append(key)
            self.attrs[key] = str(value)
        elif kind in (bool, int, float):
            self.attrs[key] = value
        elif isinstance(value, BaseModel):
            self.put_model(key, key, value)
        elif kind in (list, tuple) and (not value or _flat_sequence(value)):
            if value and type(value[0]) is str and any(len(v) > self.max_len for v in value):
                self.put_json(key, value)
            else:
                self.attrs[key] = tuple(value)
        elif isinstance(value, str):  # str subclasses such as str enums
            self.put(key, str(value))
        else:
            self.put_json(key, value)

    def put_json(self, key: str, value: Any) -> None:
        text = json.dumps(value, separators=(",", ":"), default=json_default, ensure_ascii=False)
        self.json_keys.append(key)
        if len(text) > self.max_len:
            text = _truncate(text, self.max_len)
            self.truncated.append(key)
        self.attrs[key] = text

    def put_model(self, parent: str, parent_key: str, model: BaseModel) -> None:
        data = model.__dict__
        extra = model.__pydantic_extra__
        for name, value in data.items() if not extra else {**data, **extra}.items():
            if value is None or (type(value) is list and not value):
                continue  # None and empty lists are the nested models' defaults
            self.put(_nested_key(parent, parent_key, name), value)


_KEYS_BY_TYPE: dict[str, dict[str, str]] = {}


def event_attributes(
    event: BaseEvent, settings: SpanSettings | None = None, *, sequence: int | None = None
) -> dict[str, AttributeValue]:
    """The span-event attributes of ``event`` (the span event itself is named ``event.type``).

    GenAI names where they exist (``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
    ``gen_ai.usage.input_tokens``, ``error.type``...), ``runtrace.event.<field>`` otherwise,
    nested models flattened with dots. Content fields are left off unless
    ``settings.capture_content``, and listed in ``runtrace.record.omitted`` (except, on a
    numbered span event, the required text fields of its core type: such an event always
    carries them unless capture left them off, so a ``text_delta`` without ``text`` needs no
    list to say so, and :func:`event_from_attributes` restores them empty); for an event of a
    type runtrace has no class for (a ``GenericEvent``), and for fields a core event does not
    declare, every field but numbers, booleans and short identifiers (strings of at most 128
    characters named ``*id``, ``*name``, ``*status``, ``*kind`` or ``*type``) counts as content.
    Values that are not flat attributes become JSON text, listed in ``runtrace.record.json``, as
    are integers beyond int64 (their decimal digits); strings longer than
    ``settings.max_value_length`` are truncated and listed in ``runtrace.record.truncated``.
    ``sequence`` (``runtrace.record.sequence``, the record's place in the run) marks the span
    event as recorded through runtrace. Field names that contain dots come back nested.
    """
    settings = settings or default_settings()
    event_type = event.type
    capture = settings.capture_content
    content = settings.content_fields
    if (
        sequence is not None
        and not capture
        and not event.__pydantic_extra__
        and type(event) is not GenericEvent
    ):
        # The deltas, most of a run's events: every field is a required text field left off,
        # so the span event carries its number only (what the loop below would make of it).
        quiet = _QUIET.get(event_type)
        if quiet is None or quiet[0] is not content:
            quiet = _quiet_fields(event, content)
        if event.__dict__.keys() <= quiet[1]:
            return {sc.EVENT_SEQUENCE: sequence}
    keys = _KEYS_BY_TYPE.get(event_type)
    if keys is None:
        keys = _KEYS_BY_TYPE[event_type] = {}
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
    # A numbered span event leaves its core type's required text fields unlisted: it always
    # carries them unless capture left them off, so their absence says it (one attribute less
    # on most events, the deltas above all).
    implied = _required_str_fields(event_type) if sequence is not None and not generic else _NONE
    for name, value in data.items() if not extra else {**data, **extra}.items():
        if name == "type":
            continue
        if value is None and type(event) is not GenericEvent and (not extra or name not in extra):
            continue  # a core field at its default: it decodes back to None
        if not capture and (
            name in content
            or (
                (generic or (unknown_extra is not None and name in unknown_extra))
                and not _generic_on_span(name, value)
            )
        ):
            if name in implied:
                continue
            if omitted is None:
                omitted = [name]
            else:
                omitted.append(name)
            continue
        key = keys.get(name)
        if key is None:
            key = keys[name] = _field_key(event_type, name)
        kind = type(value)
        if (
            (kind is str and len(value) <= max_len)
            or (kind is int and INT64_MIN <= value <= INT64_MAX)
            or kind is bool
            or kind is float
        ):
            attrs[key] = value  # the common case, without the encoder
            continue
        if enc is None:
            enc = _Encoder(settings, attrs)
        if isinstance(value, BaseModel):
            enc.put_model(name, key, value)
        elif value is None:
            enc.put_json(key, None)  # an explicit null, which OTLP attributes cannot carry
        else:
            enc.put(key, value)
    if sequence is not None:
        attrs[sc.EVENT_SEQUENCE] = sequence
    if omitted:
        attrs[sc.EVENT_OMITTED] = tuple(omitted)
    if enc is not None:
        if enc.truncated:
            attrs[sc.EVENT_TRUNCATED] = tuple(enc.truncated)
        if enc.json_keys:
            attrs[sc.EVENT_JSON] = tuple(enc.json_keys)
    return attrs


_QUIET: dict[str, tuple[frozenset[str], frozenset[str]]] = {}


def _quiet_fields(
    event: BaseEvent, content: frozenset[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """For ``content``: the fields of ``event``'s core type that never reach a numbered span
    event with capture off (its required text fields that are content, and ``type``)."""
    event_type = event.type
    entry = (content, frozenset({"type"} | (_required_str_fields(event_type) & content)))
    if len(_QUIET) < 1024:
        _QUIET[event_type] = entry
    return entry


_ID_NAMES: dict[str, bool] = {}  # field name -> named like an identifier (bounded below)


def _generic_on_span(name: str, value: Any) -> bool:
    """Whether a field of a generic event goes on spans with capture off: ints, floats and
    booleans, and short strings named like identifiers."""
    kind = type(value)
    if kind is int or kind is float or kind is bool:
        return True
    if kind is not str or len(value) > GENERIC_ID_MAX_LENGTH:
        return False
    named = _ID_NAMES.get(name)
    if named is None:  # the same few field names come back on every event of a type
        named = name.lower().endswith(GENERIC_ID_SUFFIXES)
        if len(_ID_NAMES) < 4096:
            _ID_NAMES[name] = named
    return named


# --- attributes -> event -------------------------------------------------------------------------

_BOOKKEEPING = frozenset({sc.EVENT_SEQUENCE, sc.EVENT_OMITTED, sc.EVENT_TRUNCATED, sc.EVENT_JSON})


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
    if key.startswith(sc.EVENT_PREFIX):
        return tuple(key[len(sc.EVENT_PREFIX) :].split("."))
    return (key,)  # plain OpenTelemetry code may name fields directly: {"id": ..., "name": ...}


_NONE: frozenset[str] = frozenset()
_REQUIRED_STR: dict[str, frozenset[str]] = {}


def _required_str_fields(event_type: str) -> frozenset[str]:
    """The required ``str`` fields of a core event type (none for a generic one), cached."""
    fields = _REQUIRED_STR.get(event_type)
    if fields is None:
        cls = event_class(event_type)
        fields = _NONE
        if cls is not None:
            fields = frozenset(
                name
                for name, f in cls.model_fields.items()
                if f.is_required() and f.annotation in (str, "str")
            )
        if len(_REQUIRED_STR) < 1024:  # core types, and the few names plain code invents
            _REQUIRED_STR[event_type] = fields
    return fields


def event_from_attributes(name: str, attributes: Mapping[str, Any] | None) -> BaseEvent:
    """The event a span event stands for: the reverse of :func:`event_attributes`.

    Accepts runtrace's own attribute names, the GenAI names it uses, and bare field names (so
    ``span.add_event("tool_start", {"id": "t1", "name": "bash"})`` works). JSON-encoded values
    listed in ``runtrace.record.json`` (integers beyond int64 among them) are decoded unless
    truncated; content fields that capture left off come back empty. Raises
    ``pydantic.ValidationError`` if a core event's fields do not fit.
    """
    attributes = attributes or {}
    json_keys = set(attributes.get(sc.EVENT_JSON, ())) - set(attributes.get(sc.EVENT_TRUNCATED, ()))
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
    required = _required_str_fields(name)
    if required:
        # Content capture left these off: runtrace's own span events (numbered) list none of
        # their type's required text fields, plain ones list what they left off.
        absent = (
            required if sc.EVENT_SEQUENCE in attributes else attributes.get(sc.EVENT_OMITTED, ())
        )
        for field in absent:
            if field not in data and field in required:
                data[field] = ""
    return parse_event(data)
