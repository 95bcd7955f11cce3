"""Rebuilding event models from stored wire JSON, fast enough for a million events a second.

Validating each stored event through pydantic costs ~5-10 µs; a reload of 1M events would take
most of a minute. The JSON in ``run_events.event`` was produced by ``model_dump_json`` of an
already validated model, so it is trusted: this module parses it in one call per chunk and
builds the same model objects pydantic would (``__dict__`` of declared fields, nested models,
unknown keys as extras), without validating again. Any document that does not have every
declared field of its class falls back to :func:`runtrace.events.parse_event`, so an odd row
is validated rather than built wrong. Tests compare both paths for every event type.
"""

from __future__ import annotations

import gc
import operator
import os
import threading
import typing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import repeat
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pydantic_core
from pydantic import BaseModel

from ..events import BaseEvent, GenericEvent, core_event_types, event_class, parse_event
from ..runs import RunEventRecord

_new = object.__new__
_set = object.__setattr__
# BaseModel's own slots, set through their descriptors: a third cheaper than setattr in bulk.
_SLOT_SETTERS = tuple(
    BaseModel.__dict__[name].__set__
    for name in (
        "__dict__",
        "__pydantic_fields_set__",
        "__pydantic_extra__",
        "__pydantic_private__",
    )
)
_CHUNK = 200_000

Builder = Callable[[dict[str, Any]], Any]


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    args = typing.get_args(annotation) or (annotation,)
    return [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]


def _field_plan(cls: type[BaseModel]) -> tuple[dict[str, type[BaseModel]], list[str]]:
    """What building ``cls`` from parsed JSON needs: its nested model fields, and its float
    fields (JSON gives ``1`` where validation would give ``1.0``)."""
    nested: dict[str, type[BaseModel]] = {}
    floats: list[str] = []
    for name, info in cls.model_fields.items():
        models = _model_classes(info.annotation)
        if len(models) == 1:
            nested[name] = models[0]
        elif models:
            raise TypeError(f"{cls.__name__}.{name}: unions of models are not supported")
        if info.annotation is float:
            floats.append(name)
    return nested, floats


def _builder(cls: type[BaseModel]) -> Builder:
    """A function turning a parsed dict into an instance of ``cls`` (None if it cannot)."""
    names = frozenset(cls.model_fields)
    nested_classes, floats = _field_plan(cls)
    nested = {name: _builder(sub) for name, sub in nested_classes.items()}
    n_fields = len(names)

    def build(d: dict[str, Any]) -> Any:
        if not isinstance(d, dict) or not names <= d.keys():
            return None
        extra: dict[str, Any] = {}
        if len(d) != n_fields:
            extra = {k: d.pop(k) for k in [k for k in d if k not in names]}
        for name, sub in nested.items():
            value = d[name]
            if value is not None:
                built = sub(value)
                if built is None:
                    return None
                d[name] = built
        for name in floats:
            value = d[name]
            if type(value) is int:
                d[name] = float(value)
        obj = _new(cls)
        _set(obj, "__dict__", d)
        _set(obj, "__pydantic_fields_set__", set(d) | set(extra))
        _set(obj, "__pydantic_extra__", extra)
        _set(obj, "__pydantic_private__", None)
        return obj

    return build


# The same classes parse_event dispatches on.
_CLASSES: dict[str, type[BaseEvent]] = {
    t: cls for t in core_event_types() if (cls := event_class(t)) is not None
}
_BUILDERS: dict[str, Builder] = {t: _builder(cls) for t, cls in _CLASSES.items()}
_GENERIC = _builder(GenericEvent)
assert set(_BUILDERS) == core_event_types()


def _group_builder(cls: type[BaseModel]) -> Callable[[list[Any]], list[Any] | None]:
    """A bulk builder: a whole group of documents of one class at once.

    Objects are made with C-level ``map`` calls (no Python frame per event). Nested models
    are built first, as their own group. Returns None when a document does not have exactly
    the declared fields; the caller then falls back to the per-document path (which parses
    the texts again, so the partly converted documents here do not matter).
    """
    names = frozenset(cls.model_fields)
    # Every document has exactly the declared fields, so all objects share one fields set:
    # one GC-tracked object less per event. Safe because models are frozen and pydantic
    # copies the set before changing it (model_copy).
    shared_fields_set = set(names)
    nested_classes, floats = _field_plan(cls)
    nested = {name: _group_builder(sub) for name, sub in nested_classes.items()}

    def build(docs: list[Any]) -> list[Any] | None:
        if not all(map(isinstance, docs, repeat(dict))):
            return None
        if not all(map(operator.eq, map(dict.keys, docs), repeat(names))):
            return None
        for name, sub in nested.items():
            holders = [d for d in docs if d[name] is not None]
            if holders:
                built = sub([d[name] for d in holders])
                if built is None:
                    return None
                _consume(map(operator.setitem, holders, repeat(name), built))
        for name in floats:
            for d in docs:
                if type(d[name]) is int:
                    d[name] = float(d[name])
        n = len(docs)
        return _models(cls, docs, repeat(shared_fields_set, n), [{} for _ in range(n)])

    return build


_GROUP_BUILDERS = {t: _group_builder(cls) for t, cls in _CLASSES.items()}


def _build_generic(docs: list[Any]) -> list[Any] | None:
    """Unknown types: ``type`` is the only field, everything else is kept as extras."""
    if not all(isinstance(d, dict) and type(d.get("type")) is str for d in docs):
        return None
    dicts = [{"type": d.pop("type")} for d in docs]
    return _models(GenericEvent, dicts, [set(d) | {"type"} for d in docs], docs)


def _models(
    cls: type[BaseModel], dicts: list[Any], fields_sets: Iterable[Any], extras: Iterable[Any]
) -> list[Any]:
    """Instances of ``cls`` with these ``__dict__``, fields sets and extras, made in bulk."""
    objs = list(map(_new, repeat(cls, len(dicts))))
    set_dict, set_fields, set_extra, set_private = _SLOT_SETTERS
    _consume(map(set_dict, objs, dicts))
    _consume(map(set_fields, objs, fields_sets))
    _consume(map(set_extra, objs, extras))
    _consume(map(set_private, objs, repeat(None, len(dicts))))
    return objs


def _parse(texts: list[str]) -> list[Any]:
    docs: list[Any] = []
    for start in range(0, len(texts), _CHUNK):
        docs.extend(pydantic_core.from_json("[" + ",".join(texts[start : start + _CHUNK]) + "]"))
    return docs


def build_events(texts: list[str]) -> list[BaseEvent]:
    """Event models from their wire JSON texts, in order, one document at a time."""
    out: list[BaseEvent] = []
    builders = _BUILDERS
    generic = _GENERIC
    for text, doc in zip(texts, _parse(texts), strict=True):
        event = None
        if isinstance(doc, dict):
            kind = doc.get("type")
            event = (builders.get(kind, generic) if isinstance(kind, str) else generic)(doc)
        out.append(event if event is not None else parse_event(text))
    return out


def build_events_by_type(types: pa.ChunkedArray, texts: pa.ChunkedArray) -> list[BaseEvent]:
    """Event models for the rows of ``texts``, in order, building each type as one group.

    A group's JSON array is joined by Arrow, not from a Python string per event.
    """
    out: list[Any] = [None] * len(texts)
    order = pc.sort_indices(types)
    groups = pc.run_end_encode(types.take(order).combine_chunks())
    positions = order.to_pylist()
    core = _GROUP_BUILDERS
    start = 0
    for event_type, end in zip(groups.values.to_pylist(), groups.run_ends.to_pylist(), strict=True):
        where = positions[start:end]
        group = texts.take(order.slice(start, end - start))
        docs: list[Any] = []
        for chunk_start in range(0, len(group), _CHUNK):
            docs.extend(pydantic_core.from_json(_json_array(group.slice(chunk_start, _CHUNK))))
        objs = core.get(event_type, _build_generic)(docs)
        if objs is None:  # odd documents: one at a time, validated where needed
            objs = build_events(group.to_pylist())
        _consume(map(out.__setitem__, where, objs))
        start = end
    return out


def _json_array(texts: pa.ChunkedArray) -> bytes:
    """``[text,text,...]`` of JSON texts, joined in Arrow."""
    flat = texts.combine_chunks()
    one_list = pa.ListArray.from_arrays(pa.array([0, len(flat)], pa.int32()), flat)
    joined = pc.binary_join(one_list, ",")[0].as_buffer()
    return b"[" + (joined.to_pybytes() if joined is not None else b"") + b"]"


def _consume(iterator: Iterator[Any]) -> None:
    """Run ``iterator`` to its end in C (a ``for`` loop would run a bytecode per item)."""
    deque(iterator, maxlen=0)


def _records(sequences: list[int], stamps: list[int], events: list[BaseEvent]) -> list[Any]:
    dicts = [
        {"sequence": s, "timestamp_ms": t, "event": e}
        for s, t, e in zip(sequences, stamps, events, strict=False)
    ]
    n = len(dicts)
    shared_fields_set = {"sequence", "timestamp_ms", "event"}  # see _group_builder
    return _models(RunEventRecord, dicts, repeat(shared_fields_set, n), repeat(None, n))


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused(*, promote: bool = False) -> Iterator[None]:
    """Pause the cyclic GC while millions of acyclic objects are made.

    Otherwise its passes over the growing heap dominate the time. With ``promote``, what is
    in the young generations at the end moves straight to the oldest one (``gc.freeze()``
    then ``gc.unfreeze()``, two list splices): the next young collection would otherwise
    walk every object just made (a reload of 1M events: ~0.6 s), and they are long-lived.

    Thread-safe: the GC comes back when the last of overlapping pauses ends (a spill in the
    agent's thread and the writer's flush overlap; with a plain disable/enable the first to
    finish turned it back on under the other: full passes over a heap of 1M queued events,
    a third of the sink's time in a flood).
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        if promote:
            gc.freeze()
            gc.unfreeze()
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def _gc_after_fork_in_child() -> None:
    """The child has none of the threads that paused the GC: it comes back as it was."""
    global _gc_lock, _gc_pausers
    _gc_lock = threading.Lock()
    if _gc_pausers and _gc_was_enabled:
        gc.enable()
    _gc_pausers = 0


os.register_at_fork(after_in_child=_gc_after_fork_in_child)


def build_event_records(events: pa.Table) -> dict[str, list[RunEventRecord]]:
    """Group rows (run_id, sequence, timestamp_ms, type, event) sorted by run into records.

    Call it with the GC paused (:func:`gc_paused`).
    """
    if events.num_rows == 0:
        return {}
    models = build_events_by_type(events.column("type"), events.column("event"))
    records = _records(
        events.column("sequence").to_pylist(),
        events.column("timestamp_ms").to_pylist(),
        models,
    )
    runs = pc.run_end_encode(events.column("run_id").combine_chunks())
    ends = runs.run_ends.to_pylist()
    ids = runs.values.to_pylist()
    grouped: dict[str, list[RunEventRecord]] = {}
    start = 0
    for run_id, end in zip(ids, ends, strict=False):
        grouped[run_id] = records[start:end]
        start = end
    return grouped
