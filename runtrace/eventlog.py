"""One run's events as the store keeps them: compact, and out of the garbage collector's way.

A store keeps every event alive, so what it holds per event decides both memory and how much
work each collection of the cyclic garbage collector does. An event model is a tracked object;
its field dict usually is not (it holds only strings and numbers, which CPython leaves
untracked). So a log keeps most events as their field dict plus a shared *shape* (the class and
the fields-set every event of that shape shares, see :func:`runtrace.events.parse_event`), and
makes the models again when read. Events the collector must see anyway (nested values, a
fields-set of their own, extra fields that hold containers) are kept whole. Without this, a
process recording millions of events spent a quarter of its time in collections that walked
them all again.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from .events import BaseEvent, shared_fields_set
from .runs import RunEventRecord, event_record

__all__ = ["EventLog"]

_Shape = tuple[type[BaseEvent], set[str]]

_SHAPES: dict[int, _Shape] = {}
"""id(fields-set) -> (class, fields-set), for the fields-sets events share (those live as long
as the process, so an id is never reused); bounded: events of further shapes are kept whole."""
_MAX_SHAPES = 8192

_is_tracked = gc.is_tracked
_new = object.__new__
_set = object.__setattr__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__


def _shape(model: BaseEvent) -> _Shape | None:
    fields_set = model.__pydantic_fields_set__
    shape = _SHAPES.get(id(fields_set))
    if shape is None:
        if len(_SHAPES) >= _MAX_SHAPES or not shared_fields_set(model):
            return None
        shape = _SHAPES.setdefault(id(fields_set), (type(model), fields_set))
    return shape if shape[0] is type(model) and shape[1] is fields_set else None


def _model(shape: _Shape, fields: dict[str, Any], extra: dict[str, Any] | None) -> BaseEvent:
    """The model again, as pydantic made it (what ``model_construct`` does, minus its checks)."""
    model: BaseEvent = _new(shape[0])
    _set(model, "__dict__", fields)
    _SET_FIELDS_SET(model, shape[1])
    _SET_EXTRA(model, {} if extra is None else extra)
    _SET_PRIVATE(model, None)
    return model


class EventLog:
    """One run's events: the records it was given (:meth:`RunStore.replace_records`), then the
    events recorded since, with their times (epoch ms). Records are made when read."""

    __slots__ = ("extras", "given", "items", "latest", "offset", "pending", "shapes", "times")

    def __init__(self, given: Iterable[RunEventRecord] = ()) -> None:
        # A tuple, and none of the containers below made before they hold something: every
        # object a run keeps is one more for the collector to walk.
        self.given = tuple(given)
        self.offset = len(self.given)  # the sequence of the first event recorded here
        # Per event: its field dict with its shape, or the model itself with None.
        self.items: list[dict[str, Any] | BaseEvent] = []
        self.shapes: list[_Shape | None] = []
        self.extras: dict[int, dict[str, Any]] | None = None  # index -> extra fields, if any
        self.times = array("q")  # epoch ms, each below MAX_MS
        # Events that follow no status rule, not counted in the run's snapshot yet, and the
        # latest of their times: the snapshot is brought up to date when it is read.
        self.pending = 0
        self.latest = 0

    def __len__(self) -> int:
        return self.offset + len(self.items)

    def append(self, model: BaseEvent, at_ms: int) -> int:
        """Keep ``model`` at ``at_ms``; returns its sequence (its place in the run)."""
        items = self.items
        index = len(items)
        fields = model.__dict__
        extra = model.__pydantic_extra__
        shape = None
        if (
            not _is_tracked(fields)
            and (not extra or not _is_tracked(extra))
            and model.__pydantic_private__ is None  # a subclass's private values: kept whole
        ):
            shape = _SHAPES.get(id(model.__pydantic_fields_set__))
            if shape is None or shape[0] is not type(model):
                shape = _shape(model)
        if shape is None:
            items.append(model)
        else:
            items.append(fields)
            if extra:
                if self.extras is None:
                    self.extras = {}
                self.extras[index] = extra
        self.shapes.append(shape)
        self.times.append(at_ms)
        return self.offset + index

    def copy(self) -> tuple[tuple[RunEventRecord, ...], int, list[BaseEvent], array[int]]:
        """What :meth:`records` needs, taken under the store's lock: the models made now."""
        extras = self.extras or {}
        models: list[BaseEvent] = [
            item if shape is None else _model(shape, item, extras.get(i))  # type: ignore[misc, arg-type]
            for i, (item, shape) in enumerate(zip(self.items, self.shapes, strict=True))
        ]
        return self.given, self.offset, models, self.times[:]

    @staticmethod
    def records(
        given: tuple[RunEventRecord, ...], offset: int, models: list[BaseEvent], times: array[int]
    ) -> list[RunEventRecord]:
        """The run's records in order, from what :meth:`copy` took."""
        made = map(event_record, range(offset, offset + len(models)), times, models)
        return [*given, *made] if given else list(made)
