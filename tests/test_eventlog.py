"""EventLog: a run's events kept compact, given back as the very events recorded."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from pydantic import PrivateAttr, ValidationError

from runtrace.eventlog import EventLog
from runtrace.events import BaseEvent, GenericEvent, TextDelta, parse_event
from tests.event_samples import ONE_OF_EACH, VARIANTS


def _read(log: EventLog) -> list[Any]:
    return EventLog.records(*log.copy())


@pytest.mark.parametrize("raw", ONE_OF_EACH + VARIANTS, ids=lambda raw: str(raw["type"]))
def test_every_event_comes_back_equal_with_its_type_fields_and_extras(raw: dict[str, Any]) -> None:
    model = parse_event(raw)
    log = EventLog()
    assert log.append(model, 1_000) == 0
    (record,) = _read(log)
    back: BaseEvent = record.event
    assert type(back) is type(model)
    assert back == model
    assert back.model_fields_set == model.model_fields_set
    assert back.__pydantic_extra__ == model.__pydantic_extra__
    assert back.model_dump_json() == model.model_dump_json()
    assert (record.sequence, record.timestamp_ms) == (0, 1_000)


def test_flat_events_leave_nothing_for_the_garbage_collector_to_walk() -> None:
    log = EventLog()
    for i in range(1_000):
        log.append(parse_event({"type": "text_delta", "text": f"token {i}"}), i)
        log.append(parse_event({"type": "queue_alert", "queue": "jobs", "depth": i}), i)
    assert not any(gc.is_tracked(item) for item in log.items)
    assert len({id(shape) for shape in log.shapes}) == 2  # one shared shape per kind


def test_events_with_nested_values_or_their_own_fields_set_are_kept_whole() -> None:
    nested = parse_event({"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": 3}})
    built = TextDelta(text="made by hand")  # a fields-set of its own, not a shared one
    log = EventLog()
    log.append(nested, 1)
    log.append(built, 2)
    assert log.items == [nested, built]
    records = _read(log)
    assert [r.event for r in records] == [nested, built]
    assert [r.sequence for r in records] == [0, 1]


def test_models_built_by_hand_are_kept_compactly_once_recorded() -> None:
    log = EventLog()
    for i in range(3):
        # parse_event, which every record goes through, gives them their shape's shared set
        log.append(parse_event(TextDelta(text=f"by hand {i}")), i)
    assert not any(gc.is_tracked(item) for item in log.items)
    assert [r.event for r in _read(log)] == [TextDelta(text=f"by hand {i}") for i in range(3)]


def test_models_read_back_are_new_objects_that_cannot_change_the_log() -> None:
    log = EventLog()
    log.append(parse_event({"type": "deploy", "target": "prod"}), 5)
    first = _read(log)[0].event
    assert isinstance(first, GenericEvent)
    with pytest.raises(ValidationError):  # frozen
        first.target = "staging"  # type: ignore[attr-defined]
    assert _read(log)[0].event == first


def test_sequences_continue_after_the_records_a_log_was_given() -> None:
    log = EventLog()
    log.append(parse_event({"type": "text_delta", "text": "a"}), 1)
    given = _read(log)
    again = EventLog(given)
    assert again.append(parse_event({"type": "text_delta", "text": "b"}), 2) == 1
    assert [r.event.text for r in _read(again)] == ["a", "b"]  # type: ignore[attr-defined]
    assert len(again) == 2


def test_an_event_class_with_private_values_is_kept_whole() -> None:
    class Traced(GenericEvent):
        _note: str = PrivateAttr(default="kept")

    event = parse_event(Traced(type="traced", n=1))
    object.__setattr__(event, "_note", "changed")  # what the class's own code may do
    log = EventLog()
    log.append(event, 1)
    back = _read(log)[0].event
    assert back is event and back._note == "changed"  # type: ignore[attr-defined]
