"""Every value the store accepts reaches the DuckDB file and an OTLP backend intact, or is refused
at record time with an error naming the field (issue 12). Property-based: values are drawn from
the space where JSON, UTF-8, DuckDB and OTLP protobuf disagree (lone surrogates, NUL, integers
beyond int64 and beyond double, -0.0, subnormals, huge and tiny floats, NaN and inf, empty and
dotted keys, deep nesting), recorded through Runtrace into a real DuckDB file and a real OTLP/HTTP
exporter to a loopback receiver, and compared: store == file == what the receiver decodes."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otlp_receiver import Receiver, attributes
from pydantic import ValidationError

from runtrace import DuckDBSink, RunSpanProcessor, RunStore, Runtrace, SpanSettings
from runtrace.duckdb import load_records
from runtrace.errors import InvalidRun
from runtrace.otel import event_from_attributes

SURROGATE = "\udcff"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 5e-324, 1.7976931348623157e308, 1e-300]),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", "\x00", "a\x00b", SURROGATE + " x", "é" * 10, "\U0001f600", "'; DROP"]),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(["", "a.b", "type", "\x00", "é"]))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


def _refusable(value: Any) -> bool:
    """What runtrace refuses on purpose: values JSON or UTF-8 cannot carry."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return any(_refusable(v) for v in value)
    if isinstance(value, dict):
        return any(_refusable(k) or _refusable(v) for k, v in value.items())
    return False


def _same(a: Any, b: Any) -> bool:
    """Equal, and floats equal bit for bit (-0.0 is not 0.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


class Pipeline:
    """Runtrace into a DuckDB file and, through a real OTLP/HTTP exporter, a loopback receiver."""

    def __init__(self, path: Path, receiver: Receiver) -> None:
        self.path = path
        self.receiver = receiver
        self.provider = TracerProvider()
        self.provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint, timeout=5))
        )
        self.sink = DuckDBSink(str(path), flush_interval=60)
        span_settings = SpanSettings(capture_content=True, max_value_length=1_000_000)
        processor = RunSpanProcessor(sinks=[self.sink], settings=span_settings, raise_errors=True)
        self.rt = Runtrace(self.provider, processor)


@pytest.fixture
def pipeline(tmp_path: Path, receiver: Receiver) -> Any:
    p = Pipeline(tmp_path / "values.duckdb", receiver)
    yield p
    p.rt.shutdown()
    p.provider.shutdown()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(values, min_size=1, max_size=6))
def test_every_accepted_value_arrives_intact_in_the_file_and_at_the_backend(
    pipeline: Pipeline, drawn: list[Any]
) -> None:
    accepted: list[tuple[str, dict[str, Any]]] = []
    with pipeline.rt.start_run("hostile", agent_name="probe") as run:
        for i, value in enumerate(drawn):
            for field, event in (
                ("reading", {"type": "probe", "reading": value}),  # generic: kept verbatim
                (
                    "exit_code",
                    {
                        "type": "tool_end",
                        "id": f"c{i}",
                        "name": "bash",
                        "output": "",
                        "exit_code": value,
                    },
                ),
                ("text", {"type": "text_delta", "text": value}),
            ):
                try:
                    run.record(event)
                except ValidationError as error:
                    # refused: the error names the field, and the run is untouched
                    where = {str(part) for e in error.errors() for part in e["loc"]}
                    assert field in where or re.search(rf"\b{field}\b", str(error)), error
                    continue
                if event["type"] == "probe":
                    assert not _refusable(value), f"{value!r} was accepted"
                accepted.append((event["type"], event))
    stored = [r.event.model_dump(exclude_none=False) for r in pipeline.rt.store.events(run.id)]
    assert len(stored) == len(accepted)
    # the file: the same events, in the same sequences 0..n-1
    pipeline.sink.force_flush()
    (record,) = load_records(pipeline.path, run_ids=[run.id])
    assert [r.sequence for r in record.events] == list(range(len(accepted)))
    in_file = [r.event.model_dump(exclude_none=False) for r in record.events]
    assert all(_same(a, b) for a, b in zip(stored, in_file, strict=True))
    # the backend: every span event decodes back to the stored event
    pipeline.provider.force_flush()
    spans = [s for s in pipeline.receiver.spans if s.name == "invoke_agent probe"]
    (span,) = [s for s in spans if attributes(s).get("runtrace.run.id") == run.id]
    decoded = [
        event_from_attributes(e.name, attributes(e)).model_dump(exclude_none=False)
        for e in span.events
        if e.name != "exception"
    ]
    assert len(decoded) == len(stored)
    for want, got in zip(stored, decoded, strict=True):
        assert _same(_plain(want), _plain(got)), (want, got)


def _plain(value: Any) -> Any:
    """What survives any round trip through OTLP attributes: lists for tuples."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_a_lone_surrogate_is_refused_naming_the_field(pipeline: Pipeline) -> None:
    with pipeline.rt.start_run("s") as run:
        with pytest.raises(ValidationError, match="text"):
            run.record({"type": "text_delta", "text": SURROGATE + " x"})
        run.record({"type": "text_delta", "text": "kept"})
    assert [r.sequence for r in pipeline.rt.store.events(run.id)] == [0]
    pipeline.sink.force_flush()
    (record,) = load_records(pipeline.path, run_ids=[run.id])
    assert [r.event.model_dump()["text"] for r in record.events] == ["kept"]


texts = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(
        ["", "\x00", "a\x00b", SURROGATE, "x" + SURROGATE, "é", "'; DROP TABLE runs; --"]
    ),
)
attribute_values = st.one_of(
    scalars,
    st.lists(st.integers(min_value=-(2**70), max_value=2**70), max_size=3),
    st.lists(st.text(max_size=5), max_size=3),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), min_size=2, max_size=3),  # mixed
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _span_value(value: Any) -> Any:
    """A run attribute as OTLP carries it: integers beyond int64 as decimal text."""
    if isinstance(value, list):
        wide = any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in value)
        return [str(v) if wide else v for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return str(value)
    return value


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    texts,
    texts,
    st.one_of(st.none(), texts),
    st.dictionaries(st.sampled_from(["job", "a.b", "", "é", "x"]), attribute_values, max_size=3),
)
def test_a_run_is_refused_naming_its_field_or_kept_whole_in_store_file_and_backend(
    pipeline: Pipeline,
    session_id: str,
    prompt: str,
    agent_name: str | None,
    extra: dict[str, Any],
) -> None:
    before = len(pipeline.rt.store)
    try:
        run = pipeline.rt.begin_run(session_id, prompt, agent_name, extra)
    except InvalidRun as error:
        field = str(error).split(" ", 1)[0]
        assert field.split(".")[0] in {"session_id", "prompt", "agent_name", "attributes"}
        assert len(pipeline.rt.store) == before  # nothing started, nothing stored
        return
    agent_name = agent_name or None  # an empty name is no name
    run.record({"type": "agent_end", "text": "done"})
    run.end()
    stored = pipeline.rt.store.snapshot(run.id)
    assert stored is not None
    assert (stored.session_id, stored.prompt, stored.agent_name) == (session_id, prompt, agent_name)
    given_attributes = {k: v for k, v in extra.items() if v is not None}
    for key, value in given_attributes.items():
        assert _same(_plain(stored.attributes[key]), value), key
    pipeline.sink.force_flush()
    (record,) = load_records(pipeline.path, run_ids=[run.id])
    in_file = record.snapshot
    assert (in_file.session_id, in_file.prompt, in_file.agent_name) == (
        session_id,
        prompt,
        agent_name,
    )
    for key, value in given_attributes.items():
        assert _same(_plain(in_file.attributes[key]), value), key
    pipeline.provider.force_flush()
    (span,) = [s for s in pipeline.receiver.spans if attributes(s).get("runtrace.run.id") == run.id]
    on_span = attributes(span)
    assert on_span["gen_ai.conversation.id"] == session_id
    for key, value in given_attributes.items():
        assert _same(_plain(on_span[key]), _span_value(value)), key


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"session_id": "s" + SURROGATE}, "session_id"),
        ({"prompt": SURROGATE}, "prompt"),
        ({"agent_name": "a" + SURROGATE}, "agent_name"),
        ({"attributes": {"k": float("nan")}}, "attributes.k"),
        ({"attributes": {"k": {"nested": 1}}}, "attributes.k"),
        ({"attributes": {"k": [1, "mixed"]}}, "attributes.k"),
        ({"attributes": {"": 1}}, "attributes"),
        ({"session_id": 7}, "session_id"),
    ],
)
def test_the_store_refuses_a_run_it_could_not_pass_on_naming_the_field(
    fields: dict[str, Any], named: str
) -> None:
    store = RunStore()
    arguments: dict[str, Any] = {"session_id": "s", **fields}
    with pytest.raises(InvalidRun, match=rf"^{re.escape(named)}\b"):
        store.create_run(**arguments)
    assert len(store) == 0
