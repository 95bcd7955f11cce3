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

from runtrace import DuckDBSink, RunSpanProcessor, Runtrace, SpanSettings
from runtrace.duckdb import load_records
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
