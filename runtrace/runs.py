"""Runs: status, snapshots, event records, and the pure rules that move a run's status.

Nothing here does I/O or holds a lock; :mod:`runtrace.store` and the OpenTelemetry edge build on it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from .errors import InvalidRun
from .events import (
    AgentEnd,
    AgentStart,
    BaseEvent,
    ErrorEvent,
    Event,
    PlanningEnd,
    PlanningStart,
    StepStart,
    ToolStart,
    TurnEnd,
    TurnStart,
    VerificationStart,
)
from .jsonsafe import check_json, check_text

__all__ = [
    "MAX_MS",
    "TERMINAL_STATUSES",
    "RunEventRecord",
    "RunRecord",
    "apply_event",
    "check_run_fields",
    "counts_only_on",
    "event_record",
    "finish",
    "mark_cancelled",
    "mark_failed",
    "new_run_id",
    "now_ms",
    "trusted_snapshot",
]


class RunStatus(str, Enum):
    """Where a run is in its life. Values are the reference's snake_case wire names."""

    CREATED = "created"
    PLANNING = "planning"
    EXECUTING = "executing"
    VERIFYING = "verifying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        """Completed, failed and cancelled runs have ended."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


MAX_MS = 2**63 // 1_000_000
"""Epoch milliseconds runtrace keeps are in ``[0, MAX_MS)`` (up to the year 2262): the time then
also fits an OpenTelemetry timestamp, int64 nanoseconds."""


def now_ms() -> int:
    """Milliseconds since the Unix epoch, the reference's timestamp unit."""
    return time.time_ns() // 1_000_000


_ID_RANDOM = random.Random()  # seeded from os.urandom; user code's random.seed() never reaches it
os.register_at_fork(after_in_child=_ID_RANDOM.seed)  # a forked child draws ids of its own


def new_run_id() -> str:
    """A new run id, ``run-<uuid4>``. Its 122 random bits come from a private generator seeded
    from ``os.urandom`` (and again in every forked child), not from ``uuid.uuid4()``'s
    ``os.urandom`` call per id: a system call that lets go of the interpreter lock, so each
    run's start waited for it (up to the 5 ms switch interval) while a sink's writer thread
    was busy."""
    # What uuid.UUID(int=..., version=4) makes (version 4, RFC 4122 variant), at a third of
    # its cost: one per run start.
    bits = _ID_RANDOM.getrandbits(128) & _UUID_CLEAR | _UUID4_SET
    h = f"{bits:032x}"
    return f"run-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def _freeze_attributes(value: Mapping[str, Any]) -> Mapping[str, Any]:
    frozen = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return MappingProxyType(frozen)


_NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})

Attributes = Annotated[
    Mapping[str, Any],
    AfterValidator(_freeze_attributes),
    PlainSerializer(lambda m: {k: list(v) if isinstance(v, tuple) else v for k, v in m.items()}),
]
"""Read-only span attributes: a snapshot handed out can never change the store's copy."""

# Dropped from JSON while None, like the reference's optional result_text and error.
_OMIT_WHEN_NONE = ("result_text", "error", "agent_name", "trace_id", "span_id", "ended_at_ms")


class RunSnapshot(BaseModel):
    """The state of one run at one moment. Immutable: updates make a new snapshot.

    The reference's fields come first. runtrace adds what a span knows about the run (agent
    name, trace and span ids, attributes), token totals, and when the run ended.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    session_id: str
    status: RunStatus = RunStatus.CREATED
    prompt: str = ""
    created_at_ms: int
    updated_at_ms: int
    result_text: str | None = None
    error: str | None = None
    event_count: int = 0
    agent_name: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    ended_at_ms: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    attributes: Attributes = Field(default_factory=lambda: _NO_ATTRIBUTES)

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _OMIT_WHEN_NONE:
            if name in data and data[name] is None:
                del data[name]
        if not data.get("attributes", True):
            del data["attributes"]
        return data

    @property
    def duration_ms(self) -> int | None:
        """How long the run took, once it has ended."""
        return None if self.ended_at_ms is None else self.ended_at_ms - self.created_at_ms


class RunEventRecord(BaseModel):
    """One event as the store recorded it: its place in the run and when it arrived."""

    model_config = ConfigDict(frozen=True)

    sequence: int
    timestamp_ms: int
    event: Event


class RunRecord(BaseModel):
    """A run with all its events: the unit of persistence and reload."""

    model_config = ConfigDict(frozen=True)

    snapshot: RunSnapshot
    events: list[RunEventRecord]


_STARTS_WORK = (StepStart, ToolStart, TurnStart)


def updated_at(snapshot: RunSnapshot, at_ms: int | None) -> int:
    """The ``updated_at_ms`` of the snapshot's next version: ``at_ms`` (now by default), but
    never before the current one. Sinks order a run's versions by (event_count, updated_at_ms),
    so a change stamped with an earlier explicit time (a replayed log, a clock step back) must
    still count as the newer version."""
    at = now_ms() if at_ms is None else at_ms
    return at if at > snapshot.updated_at_ms else snapshot.updated_at_ms


def _evolve(snapshot: RunSnapshot, changes: dict[str, Any]) -> RunSnapshot:
    """``snapshot.model_copy(update=changes)`` at less than half the cost: the hot path's copy.

    Values are trusted (they come from validated events and this module), as with model_copy.
    """
    values = snapshot.__dict__.copy()
    values.update(changes)
    return trusted_snapshot(values)


_new = object.__new__
_set = object.__setattr__
# BaseModel's own slots, set through their descriptors: about half the cost of object.__setattr__
# on the hot path (a record and a snapshot per event).
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__
_RECORD_FIELDS = {"sequence", "timestamp_ms", "event"}
_SNAPSHOT_FIELDS = set(RunSnapshot.model_fields)


def event_record(sequence: int, timestamp_ms: int, event: BaseEvent) -> RunEventRecord:
    """A RunEventRecord for an already validated event, without validating it again."""
    record: RunEventRecord = _new(RunEventRecord)  # pydantic's model_construct, minus its checks
    _set(record, "__dict__", {"sequence": sequence, "timestamp_ms": timestamp_ms, "event": event})
    _SET_FIELDS_SET(record, _RECORD_FIELDS)
    _SET_EXTRA(record, None)
    _SET_PRIVATE(record, None)
    return record


def trusted_snapshot(values: dict[str, Any]) -> RunSnapshot:
    """A RunSnapshot of complete, trusted ``values`` (what model_construct does for a model
    without extras or private attributes, minus its per-field default handling). All share one
    fields-set (pydantic copies it before changing it; snapshots are frozen): one object less
    for the garbage collector."""
    snapshot: RunSnapshot = _new(RunSnapshot)
    _set(snapshot, "__dict__", values)
    _SET_FIELDS_SET(snapshot, _SNAPSHOT_FIELDS)
    _SET_EXTRA(snapshot, None)
    _SET_PRIVATE(snapshot, None)
    return snapshot


def _fresh_snapshot(
    run_id: str,
    session_id: str,
    prompt: str,
    at_ms: int,
    agent_name: str | None,
    trace_id: str | None,
    span_id: str | None,
    attributes: Mapping[str, Any] | None,
) -> RunSnapshot:
    """A new run's snapshot from fields already checked (:func:`check_run_fields`) and typed
    by the caller (the store, for a run ``Runtrace.begin_run`` checked): what validating
    ``RunSnapshot(...)`` makes, at about a third of its cost, once per run."""
    return trusted_snapshot(
        {
            "id": run_id,
            "session_id": session_id,
            "status": RunStatus.CREATED,
            "prompt": prompt,
            "created_at_ms": at_ms,
            "updated_at_ms": at_ms,
            "result_text": None,
            "error": None,
            "event_count": 0,
            "agent_name": agent_name,
            "trace_id": trace_id,
            "span_id": span_id,
            "ended_at_ms": None,
            "input_tokens": 0,
            "output_tokens": 0,
            "attributes": _freeze_attributes(attributes) if attributes else _NO_ATTRIBUTES,
        }
    )


_RULES: tuple[tuple[type[BaseEvent] | tuple[type[BaseEvent], ...], str], ...] = (
    (AgentStart, "agent_start"),
    (PlanningStart, "planning_start"),
    (_STARTS_WORK, "starts_work"),
    (PlanningEnd, "planning_end"),
    (VerificationStart, "verification_start"),
    (AgentEnd, "agent_end"),
    (ErrorEvent, "error"),
    (TurnEnd, "turn_end"),
)
_RULE_BY_CLASS: dict[type, str | None] = {}
_UNKNOWN = "?"  # not cached yet


def _rule(cls: type) -> str | None:
    """Which status rule an event class follows (subclasses included), cached per class:
    isinstance on pydantic models is slow enough to matter on the hot path."""
    try:
        return _RULE_BY_CLASS[cls]
    except KeyError:
        rule = next((name for base, name in _RULES if issubclass(cls, base)), None)
        _RULE_BY_CLASS[cls] = rule
        return rule


def counts_only_on(snapshot: RunSnapshot, event: BaseEvent) -> bool:
    """Whether ``event`` only moves ``snapshot``'s count and time: an event of no status rule
    (deltas, tool ends, generic events), a tool call or step in a run already executing (or
    planning, or over), a turn that used no tokens. The store counts such events without a
    new snapshot."""
    rule = _RULE_BY_CLASS.get(type(event), _UNKNOWN)
    if rule is None:
        return True
    if rule is _UNKNOWN:
        rule = _rule(type(event))
        if rule is None:
            return True
    if rule == "starts_work":
        status = snapshot.status
        return (
            status is RunStatus.EXECUTING
            or status is RunStatus.PLANNING
            or status is RunStatus.CANCELLED
            or snapshot.ended_at_ms is not None
        )
    if rule == "turn_end":
        usage = event.usage  # type: ignore[attr-defined]
        return not (usage.prompt_tokens or usage.completion_tokens)
    return False


def apply_event(
    snapshot: RunSnapshot, event: BaseEvent, *, at_ms: int | None = None
) -> RunSnapshot:
    """Return the snapshot after ``event``: the reference's status rules, plus runtrace's.

    Every event counts (``event_count`` + 1, ``updated_at_ms`` = ``at_ms`` or now, never moving
    backwards: see :func:`updated_at`). A cancelled run stays cancelled whatever arrives later,
    and so does any run that has ended (``ended_at_ms`` set): a straggler event is counted (and
    its tokens added) but never reopens it.
    """
    rule = _RULE_BY_CLASS.get(type(event), _UNKNOWN)
    if rule is _UNKNOWN:
        rule = _rule(type(event))
    if rule is None:  # most events (deltas, tool calls): only the count and the time move
        values = snapshot.__dict__.copy()
        values["event_count"] += 1
        at = now_ms() if at_ms is None else at_ms
        if at > values["updated_at_ms"]:
            values["updated_at_ms"] = at
        return trusted_snapshot(values)
    changes: dict[str, Any] = {
        "event_count": snapshot.event_count + 1,
        "updated_at_ms": updated_at(snapshot, at_ms),
    }
    status = snapshot.status
    if rule == "turn_end":  # token totals add up even on a cancelled run
        usage = event.usage  # type: ignore[attr-defined]
        changes["input_tokens"] = snapshot.input_tokens + usage.prompt_tokens
        changes["output_tokens"] = snapshot.output_tokens + usage.completion_tokens
    elif status is not RunStatus.CANCELLED and snapshot.ended_at_ms is None:
        if rule == "agent_start":
            changes["status"] = RunStatus.EXECUTING
            if not snapshot.prompt:
                changes["prompt"] = event.prompt  # type: ignore[attr-defined]
        elif rule == "planning_start":
            changes["status"] = RunStatus.PLANNING
        elif rule == "starts_work":
            if status is not RunStatus.PLANNING:
                changes["status"] = RunStatus.EXECUTING
        elif rule == "planning_end":
            changes["status"] = RunStatus.EXECUTING
        elif rule == "verification_start":
            changes["status"] = RunStatus.VERIFYING
        elif rule == "agent_end":
            usage = event.usage  # type: ignore[attr-defined]
            changes.update(status=RunStatus.COMPLETED, result_text=event.text, error=None)  # type: ignore[attr-defined]
            if usage.prompt_tokens or usage.completion_tokens:
                # agent_end reports the run's total; it replaces the running sum of turns.
                changes["input_tokens"] = usage.prompt_tokens
                changes["output_tokens"] = usage.completion_tokens
        else:  # error
            changes.update(status=RunStatus.FAILED, error=event.message)  # type: ignore[attr-defined]
    return _evolve(snapshot, changes)


def mark_failed(snapshot: RunSnapshot, error: str, *, at_ms: int | None = None) -> RunSnapshot:
    """The run failed with ``error``, unless it was cancelled: cancelled is never overwritten."""
    if snapshot.status is RunStatus.CANCELLED:
        return snapshot
    return _evolve(
        snapshot,
        {"status": RunStatus.FAILED, "error": error, "updated_at_ms": updated_at(snapshot, at_ms)},
    )


def mark_cancelled(
    snapshot: RunSnapshot, *, reason: str | None = None, at_ms: int | None = None
) -> RunSnapshot:
    """The run was cancelled. A run that already completed or failed keeps its outcome.

    ``reason`` (e.g. "cancelled by host"), when given, is kept in ``error`` so that a stored
    cancelled run still says why; its status tells it apart from a failure.
    """
    if snapshot.status.is_terminal:
        return snapshot
    changes: dict[str, Any] = {
        "status": RunStatus.CANCELLED,
        "updated_at_ms": updated_at(snapshot, at_ms),
    }
    if reason is not None:
        changes["error"] = reason
    return _evolve(snapshot, changes)


def finish(
    snapshot: RunSnapshot, *, error: str | None = None, at_ms: int | None = None
) -> RunSnapshot:
    """The run's span ended: stamp ``ended_at_ms`` and settle a status that is not terminal yet.

    A run that ends without a terminal event completes, or fails with ``error`` when one is given
    (an ERROR span status). A terminal status, cancelled above all, is kept. Finishing twice keeps
    the first end time.
    """
    at = now_ms() if at_ms is None else at_ms
    changes: dict[str, Any] = {"updated_at_ms": max(at, snapshot.updated_at_ms)}
    if snapshot.ended_at_ms is None:
        changes["ended_at_ms"] = at
    if not snapshot.status.is_terminal:
        if error is None:
            changes["status"] = RunStatus.COMPLETED
        else:
            changes.update(status=RunStatus.FAILED, error=error)
    return _evolve(snapshot, changes)


def check_run_fields(
    session_id: object, prompt: object, agent_name: object, attributes: object
) -> None:
    """Raise :class:`~runtrace.errors.InvalidRun` naming the first of a new run's fields that
    the database or OTLP could not keep (a lone surrogate, NaN, an object JSON cannot carry),
    so nothing is lost later by a background writer or exporter (which would also cost the
    backend the other runs' spans in its batch)."""
    for name, value, optional in (
        ("session_id", session_id, False),
        ("prompt", prompt, False),
        ("agent_name", agent_name, True),
    ):
        if value is None and optional:
            continue
        if not isinstance(value, str):
            raise InvalidRun(f"{name} must be a str, not {type(value).__qualname__}")
        try:
            check_text(value, name)
        except ValueError as exc:
            raise InvalidRun(str(exc)) from None
    if attributes is None:
        return
    if not isinstance(attributes, Mapping):
        raise InvalidRun(f"attributes must be a dict, not {type(attributes).__qualname__}")
    try:
        check_json(dict(attributes), "attributes")
    except ValueError as exc:
        raise InvalidRun(str(exc)) from None
    for key, value in attributes.items():
        if not key:
            raise InvalidRun("attributes has an empty key; OpenTelemetry drops those")
        if value is None:
            continue  # unset: left off the span, as OpenTelemetry does
        items = value if isinstance(value, (list, tuple)) else (value,)
        kinds = {type(item) for item in items}
        if len(kinds) > 1 or not kinds <= _ATTRIBUTE_TYPES:
            what = type(value).__name__
            if items is value:
                what += " of " + " and ".join(sorted(k.__name__ for k in kinds))
            raise InvalidRun(
                f"attributes.{key} is a {what}; a span attribute is a str, bool, int or float, "
                "or a list of one of these types (pass anything else as a JSON string)"
            )


_ATTRIBUTE_TYPES = frozenset({str, bool, int, float})
