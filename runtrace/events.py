"""Agent events: the vocabulary a run is made of.

Every event is an immutable pydantic model whose ``type`` field carries the wire name
(``agent_start``, ``tool_end``...). The core types are typed classes; any other ``type`` is kept
as a :class:`GenericEvent` with every field untouched, because the vocabulary is open-ended and
no event may be rejected for being new. Core classes also keep unknown extra fields, so a newer
agent that adds a field loses nothing either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, model_validator

from .jsonsafe import MAX_INT_BITS, check_int, check_json, check_text

__all__ = [
    "AgentEnd",
    "AgentEvent",
    "AgentStart",
    "BaseEvent",
    "ConfirmationReceived",
    "ConfirmationRequired",
    "ConfirmationTimeout",
    "ContextCompacted",
    "ErrorEvent",
    "Event",
    "GenericEvent",
    "LlmResponseMeta",
    "PermissionDenied",
    "PlanningEnd",
    "PlanningStart",
    "ReasoningDelta",
    "StepEnd",
    "StepStart",
    "SubagentEnd",
    "SubagentProgress",
    "SubagentStart",
    "TextDelta",
    "TokenUsage",
    "ToolEnd",
    "ToolExecutionStart",
    "ToolInputDelta",
    "ToolOutputDelta",
    "ToolStart",
    "TurnEnd",
    "TurnStart",
    "VerificationStart",
    "VerificationSummary",
    "core_event_types",
    "event_class",
    "parse_event",
]

# Frozen: a recorded event can never change. Extra fields are kept: nothing an agent sends is lost.
# No inf/NaN (nor anything else JSON cannot carry): they would not survive the trip to DuckDB
# or OTLP.
_FROZEN_OPEN = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)


class TokenUsage(BaseModel):
    """Token counts of one model call, a turn, or a whole run."""

    model_config = _FROZEN_OPEN

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


class VerificationSummary(BaseModel):
    """Outcome of the checks an agent ran before it ended."""

    model_config = _FROZEN_OPEN

    status: Literal["passed", "failed", "needs_review", "skipped"] = "skipped"
    report_count: int = 0
    required_check_count: int = 0
    pending_required_check_count: int = 0
    failed_check_count: int = 0
    residual_risk_count: int = 0
    pending_subjects: list[str] = Field(default_factory=list)
    failed_subjects: list[str] = Field(default_factory=list)


class LlmResponseMeta(BaseModel):
    """What the model provider said about the response that ended the run."""

    model_config = _FROZEN_OPEN

    provider: str | None = None
    request_model: str | None = None
    request_url: str | None = None
    response_id: str | None = None
    response_model: str | None = None
    response_object: str | None = None
    first_token_ms: int | None = None
    duration_ms: int | None = None


class BaseEvent(BaseModel):
    """Common base of all events: immutable, extra fields kept."""

    model_config = _FROZEN_OPEN

    type: str

    @model_validator(mode="after")
    def _json_representable(self) -> BaseEvent:
        # Every recorded event must reach DuckDB and OTLP as JSON in UTF-8, so what they cannot
        # carry (inf/NaN, lone surrogates, integers too long for decimal text, arbitrary
        # objects, non-string keys) is refused here, at record time, with the field named,
        # instead of being accepted by the store and lost later by a background writer.
        for name, value in self.__dict__.items():
            kind = type(value)
            if kind is str:
                if not value.isascii():  # the common case costs one C call
                    check_text(value, name)
            elif kind is int:
                if value.bit_length() > MAX_INT_BITS:
                    check_int(value, name)
            elif value is not None and kind is not bool:
                check_json(value, name)
        extra = self.__pydantic_extra__
        if extra:  # what check_json(extra, "") does, without a call per flat value
            for key, value in extra.items():
                if type(key) is not str or not key.isascii():
                    if not isinstance(key, str):
                        raise ValueError(f"value has the key {key!r}; JSON object keys are strings")
                    check_text(key, "value (a key)")
                kind = type(value)
                if kind is str:
                    if not value.isascii():
                        check_text(value, key)
                elif kind is int:
                    if value.bit_length() > MAX_INT_BITS:
                        check_int(value, key)
                elif value is not None and kind is not bool:
                    check_json(value, key)
        return self


class AgentStart(BaseEvent):
    type: Literal["agent_start"] = "agent_start"
    prompt: str


class AgentEnd(BaseEvent):
    type: Literal["agent_end"] = "agent_end"
    text: str
    usage: TokenUsage = Field(default_factory=TokenUsage)
    verification_summary: VerificationSummary | None = None
    meta: LlmResponseMeta | None = None


class ErrorEvent(BaseEvent):
    type: Literal["error"] = "error"
    message: str


class TurnStart(BaseEvent):
    type: Literal["turn_start"] = "turn_start"
    turn: int


class TurnEnd(BaseEvent):
    type: Literal["turn_end"] = "turn_end"
    turn: int
    usage: TokenUsage = Field(default_factory=TokenUsage)


class TextDelta(BaseEvent):
    type: Literal["text_delta"] = "text_delta"
    text: str


class ReasoningDelta(BaseEvent):
    type: Literal["reasoning_delta"] = "reasoning_delta"
    text: str


class ToolStart(BaseEvent):
    type: Literal["tool_start"] = "tool_start"
    id: str
    name: str


class ToolInputDelta(BaseEvent):
    type: Literal["tool_input_delta"] = "tool_input_delta"
    id: str | None = None
    delta: str


class ToolExecutionStart(BaseEvent):
    type: Literal["tool_execution_start"] = "tool_execution_start"
    id: str
    name: str
    args: Any = None


class ToolOutputDelta(BaseEvent):
    type: Literal["tool_output_delta"] = "tool_output_delta"
    id: str
    name: str
    delta: str


class ToolEnd(BaseEvent):
    type: Literal["tool_end"] = "tool_end"
    id: str
    name: str
    args: Any = None
    output: str
    exit_code: int
    metadata: Any = None
    error_kind: str | None = None


class PlanningStart(BaseEvent):
    type: Literal["planning_start"] = "planning_start"
    prompt: str


class PlanningEnd(BaseEvent):
    type: Literal["planning_end"] = "planning_end"
    plan: Any = None
    estimated_steps: int


class StepStart(BaseEvent):
    type: Literal["step_start"] = "step_start"
    step_id: str
    description: str
    step_number: int
    total_steps: int


class StepEnd(BaseEvent):
    type: Literal["step_end"] = "step_end"
    step_id: str
    status: str
    step_number: int
    total_steps: int


class VerificationStart(BaseEvent):
    """runtrace's addition: the agent starts checking its work (run becomes ``verifying``)."""

    type: Literal["verification_start"] = "verification_start"
    description: str | None = None


class SubagentStart(BaseEvent):
    type: Literal["subagent_start"] = "subagent_start"
    task_id: str
    session_id: str
    parent_session_id: str
    agent: str
    description: str
    started_ms: int = 0


class SubagentProgress(BaseEvent):
    type: Literal["subagent_progress"] = "subagent_progress"
    task_id: str
    session_id: str
    status: str
    metadata: Any = None


class SubagentEnd(BaseEvent):
    type: Literal["subagent_end"] = "subagent_end"
    task_id: str
    session_id: str
    agent: str
    output: str
    success: bool
    finished_ms: int = 0


class ConfirmationRequired(BaseEvent):
    type: Literal["confirmation_required"] = "confirmation_required"
    tool_id: str
    tool_name: str
    args: Any = None
    timeout_ms: int


class ConfirmationReceived(BaseEvent):
    type: Literal["confirmation_received"] = "confirmation_received"
    tool_id: str
    approved: bool
    reason: str | None = None


class ConfirmationTimeout(BaseEvent):
    type: Literal["confirmation_timeout"] = "confirmation_timeout"
    tool_id: str
    action_taken: Literal["rejected", "auto_approved"]


class PermissionDenied(BaseEvent):
    type: Literal["permission_denied"] = "permission_denied"
    tool_id: str
    tool_name: str
    args: Any = None
    reason: str


class ContextCompacted(BaseEvent):
    type: Literal["context_compacted"] = "context_compacted"
    session_id: str
    before_messages: int
    after_messages: int
    percent_before: float
    summary: str | None = None


class GenericEvent(BaseEvent):
    """Any event whose ``type`` runtrace has no class for; every field is kept as given."""


_CORE_CLASSES: tuple[type[BaseEvent], ...] = (
    AgentStart,
    AgentEnd,
    ErrorEvent,
    TurnStart,
    TurnEnd,
    TextDelta,
    ReasoningDelta,
    ToolStart,
    ToolInputDelta,
    ToolExecutionStart,
    ToolOutputDelta,
    ToolEnd,
    PlanningStart,
    PlanningEnd,
    StepStart,
    StepEnd,
    VerificationStart,
    SubagentStart,
    SubagentProgress,
    SubagentEnd,
    ConfirmationRequired,
    ConfirmationReceived,
    ConfirmationTimeout,
    PermissionDenied,
    ContextCompacted,
)

_CLASS_BY_TYPE: dict[str, type[BaseEvent]] = {
    cls.model_fields["type"].default: cls for cls in _CORE_CLASSES
}
_GENERIC_TAG = "__generic__"


def event_class(event_type: str) -> type[BaseEvent] | None:
    """The typed class of a core event type, or None for a type kept as a GenericEvent."""
    return _CLASS_BY_TYPE.get(event_type)


def core_event_types() -> frozenset[str]:
    """The wire names that have a typed class; every other ``type`` becomes a GenericEvent."""
    return frozenset(_CLASS_BY_TYPE)


def _event_tag(value: Any) -> str:
    event_type = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return event_type if event_type in _CLASS_BY_TYPE else _GENERIC_TAG


if TYPE_CHECKING:
    # For the type checker any event is a BaseEvent: the union below is built at run time from
    # the class list, which no static checker can follow.
    AgentEvent: TypeAlias = BaseEvent
    Event: TypeAlias = BaseEvent
else:
    _TAGGED = [Annotated[cls, Tag(cls.model_fields["type"].default)] for cls in _CORE_CLASSES]
    _TAGGED.append(Annotated[GenericEvent, Tag(_GENERIC_TAG)])
    AgentEvent = Union[tuple(_TAGGED)]  # noqa: UP007 (built from a list: no `|` spelling)
    """The union of all event classes, as a type for annotations."""

    Event = Annotated[AgentEvent, Discriminator(_event_tag)]
    """A field type that validates any event: core types by ``type``, the rest as
    GenericEvent."""

_EVENT_ADAPTER: TypeAdapter[BaseEvent] = TypeAdapter(Event)
"""The one validator of the whole union, built once: JSON text goes through it."""

# Each class's own validator, called directly: a dict's ``type`` picks it in one lookup, and
# ``model_validate``'s Python wrapper (about 40% of the cost of a small event) is skipped.
_VALIDATE: dict[str, Callable[[Any], BaseEvent]] = {
    name: cls.__pydantic_validator__.validate_python for name, cls in _CLASS_BY_TYPE.items()
}
_VALIDATE_GENERIC: Callable[[Any], BaseEvent] = GenericEvent.__pydantic_validator__.validate_python

_FIELDS_SETS: dict[tuple[Any, ...], set[str]] = {}  # (type, *keys) -> the set they all share
# type -> (how many, the set) of ``type`` and the required fields: most events hold just those.
_MINIMAL: dict[str, tuple[int, set[str]]] = {
    name: (len(fields), fields)
    for name, cls in _CLASS_BY_TYPE.items()
    for fields in [{"type", *(f for f, info in cls.model_fields.items() if info.is_required())}]
}
_MAX_SHAPES = 4096
_MODEL_SETS: dict[tuple[type, frozenset[str]], set[str]] = {}  # for models given as models
_SHARED: dict[int, set[str]] = {id(fields): fields for _, fields in _MINIMAL.values()}
"""Every fields-set shared by events, by id (the entry keeps it alive, so no id is reused)."""


def shared_fields_set(model: BaseEvent) -> bool:
    """Whether ``model``'s fields-set is one that many events share (the store keeps such
    events compactly, see :mod:`runtrace.eventlog`)."""
    fields_set = model.__pydantic_fields_set__
    return _SHARED.get(id(fields_set)) is fields_set


def _share(model: BaseEvent) -> None:
    """Give a model built by hand the fields-set its shape shares (an equal set)."""
    fields_set = model.__pydantic_fields_set__
    if _SHARED.get(id(fields_set)) is fields_set:
        return
    key = (type(model), frozenset(fields_set))
    shared = _MODEL_SETS.get(key)
    if shared is None:
        if len(_MODEL_SETS) >= _MAX_SHAPES:
            return
        shared = _MODEL_SETS[key] = set(fields_set)
        _SHARED[id(shared)] = shared
    _SET_FIELDS_SET(model, shared)


# BaseModel's slot set through its descriptor: about half the cost of object.__setattr__.
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__


def parse_event(obj: BaseEvent | dict[str, Any] | str | bytes | bytearray) -> BaseEvent:
    """Validate ``obj`` into an event model.

    Accepts an event model (returned as is), a dict, or a JSON document as str/bytes. A core
    event with a missing or mistyped field raises ``pydantic.ValidationError`` naming the field;
    anything that is not an object with a string ``type`` raises it too.
    """
    if isinstance(obj, dict):  # the hot path: an agent's dict
        event_type = obj.get("type")
        validate = _VALIDATE.get(event_type) if type(event_type) is str else None
        model = (validate or _VALIDATE_GENERIC)(obj)
        # Events with the same fields share one fields-set (frozen models never change it;
        # pydantic copies it before a model_copy changes it): one object less per stored
        # event for the garbage collector to walk, the largest share of what a run keeps.
        minimal = _MINIMAL.get(event_type)  # type: ignore[arg-type]
        if minimal is not None and len(obj) == minimal[0]:
            # Valid, so it holds every required field: these fields exactly, in any order.
            _SET_FIELDS_SET(model, minimal[1])
            return model
        key = (event_type, *obj)
        shared = _FIELDS_SETS.get(key)
        if shared is not None:
            _SET_FIELDS_SET(model, shared)
        elif len(_FIELDS_SETS) < _MAX_SHAPES:
            shared = _FIELDS_SETS[key] = model.__pydantic_fields_set__
            _SHARED[id(shared)] = shared
        return model
    if isinstance(obj, BaseEvent):
        _share(obj)
        return obj
    if isinstance(obj, (str, bytes, bytearray)):
        return _EVENT_ADAPTER.validate_json(obj)
    raise TypeError(
        f"an event must be a dict, a JSON string or an event model, not {type(obj).__name__}"
    )
