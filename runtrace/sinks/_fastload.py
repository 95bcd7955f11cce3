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
import typing
from collections.abc import Callable
from itertools import repeat
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pydantic_core
from pydantic import BaseModel

from ..events import _CLASS_BY_TYPE as _CLASSES  # the same mapping parse_event dispatches on
from ..events import BaseEvent, GenericEvent, core_event_types, parse_event
from ..runs import RunEventRecord

__all__ = ["build_event_records", "build_events"]

_new = object.__new__
_set = object.__setattr__
_CHUNK = 200_000

Builder = Callable[[dict[str, Any]], Any]


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    args = typing.get_args(annotation) or (annotation,)
    return [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]


def _builder(cls: type[BaseModel]) -> Builder:
    """A function turning a parsed dict into an instance of ``cls`` (None if it cannot)."""
    fields = cls.model_fields
    names = frozenset(fields)
    nested: dict[str, Builder] = {}
    floats: list[str] = []
    for name, info in fields.items():
        models = _model_classes(info.annotation)
        if len(models) == 1:
            nested[name] = _builder(models[0])
        elif models:
            raise TypeError(f"{cls.__name__}.{name}: unions of models are not supported")
        if info.annotation is float:
            floats.append(name)
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


_BUILDERS: dict[str, Builder] = {t: _builder(cls) for t, cls in _CLASSES.items()}
_GENERIC = _builder(GenericEvent)
assert set(_BUILDERS) == core_event_types()


def build_events(texts: list[str]) -> list[BaseEvent]:
    """Event models from their wire JSON texts, in order."""
    out: list[BaseEvent] = []
    builders = _BUILDERS
    generic = _GENERIC
    for start in range(0, len(texts), _CHUNK):
        chunk = texts[start : start + _CHUNK]
        docs = pydantic_core.from_json("[" + ",".join(chunk) + "]")
        for text, doc in zip(chunk, docs, strict=False):
            event = builders.get(doc.get("type"), generic)(doc) if isinstance(doc, dict) else None
            out.append(event if event is not None else parse_event(text))
    return out


def _records(sequences: list[int], stamps: list[int], events: list[BaseEvent]) -> list[Any]:
    objs = list(map(_new, repeat(RunEventRecord, len(events))))
    dicts = [
        {"sequence": s, "timestamp_ms": t, "event": e}
        for s, t, e in zip(sequences, stamps, events, strict=False)
    ]
    fields_set = frozenset(("sequence", "timestamp_ms", "event"))
    for attr, values in (
        ("__dict__", dicts),
        ("__pydantic_fields_set__", map(set, repeat(fields_set, len(objs)))),
        ("__pydantic_extra__", repeat(None, len(objs))),
        ("__pydantic_private__", repeat(None, len(objs))),
    ):
        for _ in map(_set, objs, repeat(attr), values):
            pass
    return objs


def build_event_records(events: pa.Table) -> dict[str, list[RunEventRecord]]:
    """Group rows (run_id, sequence, timestamp_ms, type, event) sorted by run into records.

    The cyclic garbage collector is paused while the objects are made: they hold no cycles,
    and its passes over millions of new objects would otherwise dominate the time.
    """
    if events.num_rows == 0:
        return {}
    enabled = gc.isenabled()
    gc.disable()
    try:
        models = build_events(events.column("event").to_pylist())
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
    finally:
        if enabled:
            gc.enable()
