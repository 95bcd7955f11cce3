"""SpanSettings (runtrace.otel.settings): content capture (setting and environment variable),
truncation with a marker, refused nonsense; seen on real spans through Runtrace."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode
from otel.helpers import Setup

from runtrace import RunStatus, SpanSettings
from runtrace.events import AgentEnd, TokenUsage
from runtrace.otel import event_from_attributes
from runtrace.otel.settings import content_capture_from_env, truncate


def test_truncate_leaves_short_values_alone() -> None:
    assert truncate("short", 100) == "short"
    assert len(truncate("x" * 101, 100)) == 100


def test_capture_env_var_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("false", False),
        ("", False),
    ]:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
        assert content_capture_from_env() is expected
        assert SpanSettings().capture_content is expected


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        SpanSettings(max_value_length=3)
    with pytest.raises(ValueError):
        SpanSettings(cancelled_status="maybe")  # type: ignore[arg-type]


def test_content_is_off_spans_by_default_and_kept_in_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    setup = Setup()
    with setup.rt.start_run("s", prompt="secret prompt") as run:
        run.record({"type": "agent_start", "prompt": "secret prompt"})
        run.record(
            {"type": "tool_end", "id": "t", "name": "cat", "output": "secret", "exit_code": 0}
        )
        run.record({"type": "agent_end", "text": "secret answer"})
    span = setup.run_span(run.id)
    everything = repr(span.to_json()) + repr([s.to_json() for s in setup.spans()])
    assert "secret" not in everything
    # a numbered event's required text left off needs no list; it comes back empty
    assert "runtrace.record.omitted" not in span.events[0].attributes
    assert event_from_attributes("agent_start", span.events[0].attributes).prompt == ""  # type: ignore[attr-defined]
    assert run.snapshot().prompt == "secret prompt"
    assert run.snapshot().result_text == "secret answer"
    assert run.events()[1].event.output == "secret"  # type: ignore[attr-defined]


def test_content_capture_setting_puts_content_on_spans_truncated() -> None:
    setup = Setup(settings=SpanSettings(capture_content=True, max_value_length=64))
    long_text = "x" * 500
    with setup.rt.start_run("s", prompt="the prompt") as run:
        run.record({"type": "agent_start", "prompt": "the prompt"})
        run.record(AgentEnd(text=long_text, usage=TokenUsage(prompt_tokens=1)))
    span = setup.run_span(run.id)
    assert span.attributes["runtrace.run.prompt"] == "the prompt"
    assert span.events[0].attributes["runtrace.event.prompt"] == "the prompt"
    shown = span.events[1].attributes["runtrace.event.text"]
    assert len(shown) <= 64 and "truncated, 500 chars" in shown
    assert span.attributes["runtrace.run.result"].endswith("truncated, 500 chars]")
    assert run.snapshot().result_text == long_text  # never truncated in the store


def test_content_capture_env_var_turns_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    setup = Setup()
    with setup.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "visible"})
    assert setup.run_span(run.id).events[0].attributes["runtrace.event.prompt"] == "visible"


def test_cancelled_status_can_be_unset() -> None:
    setup = Setup(settings=SpanSettings(cancelled_status="unset"))
    with setup.rt.start_run("s") as run:
        run.cancel()
    span = setup.run_span(run.id)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["error.type"] == "cancelled"
    assert run.status() is RunStatus.CANCELLED
