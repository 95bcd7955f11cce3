"""The fast reload builds exactly the models validation builds, for every event type.

Samples are generated from the models themselves (every field filled, and only the required
ones), so a new event type or field is covered without editing this file.
"""

from __future__ import annotations

import gc
import json
import threading
import types
import typing
from typing import Any

import pyarrow as pa
import pytest
from pydantic import BaseModel

from runtrace.duckdb.fastload import build_events, build_events_by_type, gc_paused
from runtrace.events import BaseEvent, core_event_types, event_class, parse_event


def _value(annotation: Any, depth: int = 0) -> Any:
    """A valid value of ``annotation``, nested models filled in."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in typing.get_args(annotation) if a is not type(None)), depth)
    if origin is list:
        return [_value(typing.get_args(annotation)[0], depth)]
    if origin is dict:
        return {"k": _value(typing.get_args(annotation)[1], depth)}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {n: _value(f.annotation, depth + 1) for n, f in annotation.model_fields.items()}
    simple = {bool: True, int: 7, float: 2.0, str: "x é 😀"}
    if annotation in simple:
        return simple[annotation]
    return {"any": [1, 2.5, None, True, {"deep": "v"}]}  # typing.Any


def _samples() -> list[dict[str, Any]]:
    out = []
    for event_type in sorted(core_event_types()):
        cls = event_class(event_type)
        assert cls is not None
        fields = cls.model_fields
        out.append({n: _value(f.annotation) for n, f in fields.items()})
        out.append({"type": event_type, **{n: _value(f.annotation) for n, f in fields.items()
                                           if f.is_required() and n != "type"}})  # fmt: skip
    return out


SAMPLES = _samples()
ODD = [
    {"type": "tool_start", "id": "t", "name": "n", "added_later": {"x": [1]}},  # an extra field
    {"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": 1, "unknown": 2}},
    {"type": "brand_new", "v": 1, "nested": {"a": None}},  # an unknown type
    {"type": "custom", "big": -(2**100), "f": 1e308, "s": "'; DROP--"},
    # an int where a float is declared: JSON gives 3, validation 3.0
    {**next(s for s in SAMPLES if s["type"] == "context_compacted"), "percent_before": 3},
]


def _texts(samples: list[dict[str, Any]]) -> list[str]:
    """What the database holds: the wire JSON of each model, and the odd ones as written by
    hand (an int stays an int there)."""
    return [json.dumps(s) if s in ODD else parse_event(s).model_dump_json() for s in samples]


def _same(built: list[BaseEvent], expected: list[BaseEvent]) -> None:
    assert built == expected
    for b, e in zip(built, expected, strict=True):
        assert type(b) is type(e)
        assert b.model_dump_json() == e.model_dump_json()
        assert {k: type(v) for k, v in b.__dict__.items()} == {
            k: type(v) for k, v in e.__dict__.items()
        }
        assert b.__pydantic_extra__ == e.__pydantic_extra__
        assert b.model_fields_set == e.model_fields_set


def test_samples_cover_every_core_type_with_every_field() -> None:
    assert {s["type"] for s in SAMPLES} == core_event_types()
    for sample in SAMPLES:
        parse_event(sample)  # each one is valid


@pytest.mark.parametrize("sample", SAMPLES + ODD, ids=lambda s: f"{s['type']}-{len(s)}")
def test_one_document_builds_what_validation_builds(sample: dict[str, Any]) -> None:
    texts = _texts([sample])
    _same(build_events(texts), [parse_event(t) for t in texts])


def test_grouped_by_type_builds_what_validation_builds_in_order() -> None:
    samples = SAMPLES + ODD + SAMPLES[::-1]
    texts = _texts(samples)
    types_column = pa.chunked_array([[s["type"] for s in samples]])
    built = build_events_by_type(types_column, pa.chunked_array([texts]))
    _same(built, [parse_event(t) for t in texts])


def test_a_document_missing_a_declared_field_is_validated_instead() -> None:
    text = '{"type": "tool_start", "id": "t"}'  # no name: built wrong if trusted
    with pytest.raises(ValueError, match="name"):
        build_events([text])


def test_overlapping_gc_pauses_in_two_threads_keep_the_gc_off_until_the_last_ends() -> None:
    assert gc.isenabled()
    entered, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other() -> None:
        with gc_paused():
            entered.set()
            release.wait(10)
            seen.append(gc.isenabled())

    thread = threading.Thread(target=other)
    with gc_paused():
        thread.start()
        assert entered.wait(10)
    assert not gc.isenabled()  # the first pause ended under the other: still off
    release.set()
    thread.join(10)
    assert seen == [False]
    assert gc.isenabled()  # back on once the last pause ended


def test_a_gc_pause_leaves_a_gc_that_was_off_off() -> None:
    gc.disable()
    try:
        with gc_paused(promote=True):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
