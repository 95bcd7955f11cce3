"""Integers beyond int64 (runtrace.otel.values): kept whole in the store, written on spans as
their decimal digits wherever runtrace builds attributes, so the OTLP exporter never fails a
batch over one event."""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from otel.helpers import Setup
from otlp_receiver import Receiver, attributes

from runtrace import RunSnapshot, RunStatus, Runtrace, SpanSettings
from runtrace.events import parse_event
from runtrace.otel import event_attributes, event_from_attributes, forward_records, run_spans
from runtrace.otel.run_span import run_end_attributes
from runtrace.otel.semconv import EVENT_JSON
from runtrace.otel.values import INT64_MAX, INT64_MIN, attribute_int, fits_int64, span_attributes
from runtrace.runs import RunRecord

BIG = 2**70
BIG_TEXT = "1180591620717411303424"


def test_ints_within_int64_stay_ints_and_the_others_become_their_digits() -> None:
    assert [fits_int64(v) for v in (INT64_MIN, INT64_MAX, INT64_MIN - 1, INT64_MAX + 1)] == [
        True,
        True,
        False,
        False,
    ]
    assert attribute_int(INT64_MAX) == INT64_MAX
    assert attribute_int(BIG) == BIG_TEXT
    assert attribute_int(-BIG) == "-" + BIG_TEXT


def test_span_attributes_encode_big_ints_and_leave_out_what_a_span_cannot_hold() -> None:
    given = {
        "small": 7,
        "big": BIG,
        "flag": True,
        "ratio": 0.5,
        "name": "x",
        "ints": [1, 2],
        "big_ints": [1, BIG],
        "none": None,
        "nested": {"a": 1},
    }
    assert span_attributes(given) == {
        "small": 7,
        "big": BIG_TEXT,
        "flag": True,
        "ratio": 0.5,
        "name": "x",
        "ints": (1, 2),
        "big_ints": ("1", BIG_TEXT),
    }


def test_an_event_int_beyond_int64_goes_on_the_span_as_json_digits_and_comes_back() -> None:
    event = parse_event(
        {"type": "tool_end", "id": "t", "name": "n", "output": "", "exit_code": BIG}
    )
    attrs = event_attributes(event)
    assert attrs["runtrace.event.exit_code"] == BIG_TEXT
    assert attrs[EVENT_JSON] == ("runtrace.event.exit_code",)
    assert event_from_attributes("tool_end", attrs) == event


def test_big_ints_in_lists_and_nested_models_survive_the_round_trip() -> None:
    event = parse_event(
        {
            "type": "turn_end",
            "turn": 1,
            "usage": {"prompt_tokens": BIG, "completion_tokens": 2},
            "sizes": [1, -BIG],
            "limit": INT64_MAX,
        }
    )
    attrs = event_attributes(event, SpanSettings(capture_content=True))
    assert attrs["gen_ai.usage.input_tokens"] == BIG_TEXT
    assert attrs["gen_ai.usage.output_tokens"] == 2
    assert attrs["runtrace.event.limit"] == INT64_MAX
    assert attrs["runtrace.event.sizes"] == f"[1,-{BIG_TEXT}]"
    assert set(attrs[EVENT_JSON]) == {"gen_ai.usage.input_tokens", "runtrace.event.sizes"}
    assert event_from_attributes("turn_end", attrs) == event


def test_a_big_int_is_never_truncated_on_a_span() -> None:
    huge = 10**300
    attrs = event_attributes(
        parse_event({"type": "custom_count", "n": huge}), SpanSettings(max_value_length=16)
    )
    assert attrs["runtrace.event.n"] == str(huge)


def test_run_and_child_span_attributes_encode_big_ints_and_the_store_keeps_them(
    env: Setup,
) -> None:
    run = env.rt.begin_run("s", attributes={"job.size": BIG, "job.id": 3})
    run.record({"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": BIG}})
    run.record({"type": "tool_start", "id": "t", "name": "bash"})
    run.record({"type": "tool_end", "id": "t", "name": "bash", "output": "", "exit_code": BIG})
    final = run.end()
    assert final.attributes["job.size"] == BIG  # the store: the int itself
    assert final.input_tokens == BIG
    assert [r.event.exit_code for r in run.events()[2:]] == [BIG]  # type: ignore[attr-defined]
    span = env.run_span(run.id)
    assert span.attributes is not None
    assert (span.attributes["job.size"], span.attributes["job.id"]) == (BIG_TEXT, 3)
    assert span.attributes["gen_ai.usage.input_tokens"] == BIG_TEXT
    (tool,) = env.spans("execute_tool bash")
    assert tool.attributes is not None and tool.attributes["runtrace.tool.exit_code"] == BIG_TEXT


def test_run_end_attributes_encode_big_token_totals() -> None:
    snapshot = RunSnapshot(
        id="r", session_id="s", created_at_ms=1, updated_at_ms=1, input_tokens=BIG
    )
    assert run_end_attributes(snapshot)["gen_ai.usage.input_tokens"] == BIG_TEXT


def test_a_subagent_time_beyond_the_span_range_falls_back_to_the_event_time(env: Setup) -> None:
    t0 = 1_700_000_000_000_000_000
    run = env.rt.begin_run("s", at_ns=t0)
    start = {"type": "subagent_start", "task_id": "k", "session_id": "sub"}
    run.record(
        {**start, "parent_session_id": "s", "agent": "a", "description": "", "started_ms": BIG},
        at_ns=t0,
    )
    end = {"type": "subagent_end", "task_id": "k", "session_id": "sub", "agent": "a"}
    run.record({**end, "output": "", "success": True, "finished_ms": -5}, at_ns=t0 + 10**9)
    run.end(at_ns=t0 + 2 * 10**9)
    (child,) = env.spans("invoke_agent a")
    assert (child.start_time, child.end_time) == (t0, t0 + 10**9)


def _exporting(receiver: Receiver) -> tuple[TracerProvider, Runtrace]:
    """Runtrace beside the standard OTLP/HTTP exporter, batching until flushed, so that every
    span below goes out in one export request."""
    provider = TracerProvider()
    rt = Runtrace(provider)
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    return provider, rt


def test_a_run_with_a_big_int_does_not_cost_other_runs_their_spans_over_otlp(
    receiver: Receiver,
) -> None:
    provider, rt = _exporting(receiver)
    with rt.start_run("before") as before:
        before.record({"type": "agent_end", "text": "ok"})
    with rt.start_run("big") as big:
        big.record({"type": "tool_start", "id": "t", "name": "bash"})
        big.record({"type": "tool_end", "id": "t", "name": "bash", "output": "", "exit_code": BIG})
    with rt.start_run("after") as after:
        after.record({"type": "agent_end", "text": "ok"})
    assert rt.force_flush(10_000)
    provider.shutdown()
    assert receiver.requests == 1  # one batch held all three runs
    runs = {attributes(s)["runtrace.run.id"]: s for s in receiver.named("invoke_agent")}
    assert set(runs) == {before.id, big.id, after.id}
    tool_end = runs[big.id].events[1]
    assert attributes(tool_end)["runtrace.event.exit_code"] == BIG_TEXT
    (tool,) = receiver.named("execute_tool bash")
    assert attributes(tool)["runtrace.tool.exit_code"] == BIG_TEXT
    assert [r.status for r in rt.store.list()] == [RunStatus.COMPLETED] * 3


def test_a_replayed_run_with_big_ints_arrives_with_its_neighbours(receiver: Receiver) -> None:
    rt = Runtrace(TracerProvider())
    records: list[RunRecord] = []
    for n, extra in enumerate(({}, {"big": BIG}, {})):
        run = rt.begin_run(f"s{n}", attributes=dict(extra))
        run.record({"type": "custom_metric", "value": BIG if extra else 1})
        run.end()
        records.append(RunRecord(snapshot=run.snapshot(), events=run.events()))
    spans = run_spans(records[1])
    assert spans[0].attributes is not None and spans[0].attributes["big"] == BIG_TEXT
    result = forward_records(records, receiver.endpoint)
    assert (result.runs, receiver.requests) == (3, 1)
    events: list[Any] = [s.events[0] for s in receiver.spans]
    assert [attributes(e)["runtrace.event.value"] for e in events] == [1, BIG_TEXT, 1]
