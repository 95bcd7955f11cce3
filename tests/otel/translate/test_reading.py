"""What every dialect shares: outcome from status and exception events, sessions, content."""

from __future__ import annotations

import asyncio

from opentelemetry.trace import StatusCode
from otel.translate.helpers import Traced, at

from runtrace.otel.translate import Tokens, read_span
from runtrace.otel.translate.content import content_text, messages_text

AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"}


def test_error_status_fails_with_its_description(spans: Traced) -> None:
    r = read_span(spans.ended("x", AGENT, status=(StatusCode.ERROR, "boom")))
    assert (r.error, r.cancelled) == ("boom", None)


def test_error_without_description_takes_the_exception_type_and_message(spans: Traced) -> None:
    span = spans.ended("x", AGENT, status=StatusCode.ERROR, exception=ValueError("bad input"))
    r = read_span(span)
    assert r.error == "ValueError: bad input"
    assert r.error_type == "ValueError"


def test_error_with_nothing_else_says_the_status(spans: Traced) -> None:
    assert read_span(spans.ended("x", AGENT, status=StatusCode.ERROR)).error == (
        "span ended with status ERROR"
    )


def test_escaping_exception_fails_an_unset_span(spans: Traced) -> None:
    span = spans.start("x", AGENT)
    span.record_exception(RuntimeError("escaped"), escaped=True)
    span.end(end_time=at(1))
    assert read_span(spans.spans()[-1]).error == "RuntimeError: escaped"


def test_unescaped_exception_on_an_unset_span_is_no_failure(spans: Traced) -> None:
    span = spans.start("x", AGENT)
    span.record_exception(RuntimeError("handled"))
    span.end(end_time=at(1))
    assert read_span(spans.spans()[-1]).error is None


def test_cancelled_error_is_a_cancellation_not_a_failure(spans: Traced) -> None:
    span = spans.ended(
        "x", AGENT, status=StatusCode.ERROR, exception=asyncio.CancelledError("scope")
    )
    r = read_span(span)
    assert (r.error, r.cancelled) == (None, "asyncio task cancelled")


def test_keyboard_interrupt_is_a_cancellation(spans: Traced) -> None:
    r = read_span(spans.ended("x", AGENT, exception=KeyboardInterrupt()))
    assert r.cancelled == "KeyboardInterrupt"


def test_error_type_cancelled_keeps_the_reason_of_the_description(spans: Traced) -> None:
    attrs = {**AGENT, "error.type": "cancelled"}
    r = read_span(spans.ended("x", attrs, status=(StatusCode.ERROR, "cancelled: by host")))
    assert (r.error, r.cancelled) == (None, "by host")


def test_framework_cancellation_attribute_cancels(spans: Traced) -> None:
    r = read_span(spans.ended("x", {**AGENT, "strands.cancellation.type": "CancelledError"}))
    assert r.cancelled == "asyncio task cancelled"


def test_session_is_the_conversation_id_else_session_id_else_none(spans: Traced) -> None:
    conversation = {**AGENT, "gen_ai.conversation.id": "c1", "session.id": "s1"}
    assert read_span(spans.ended("x", conversation)).session_id == "c1"
    assert read_span(spans.ended("x", {**AGENT, "session.id": "s1"})).session_id == "s1"
    assert read_span(spans.ended("x", {**AGENT, "gen_ai.conversation.id": ""})).session_id is None


def test_ids_and_times_come_from_the_span(spans: Traced) -> None:
    parent = spans.start("p", ms=0)
    spans.span("c", AGENT, parent=parent, ms=(2, 5))
    r = read_span(spans.spans()[-1])
    assert r.parent_id == parent.get_span_context().span_id
    assert r.trace_id == parent.get_span_context().trace_id
    assert (r.start_ns, r.end_ns) == (at(2), at(5))


def test_content_text_reads_genai_parts_and_strands_blocks() -> None:
    assert content_text('[{"text": "a"}, {"text": "b"}]') == "ab"
    assert content_text('{"role": "user", "parts": [{"type": "text", "content": "hi"}]}') == "hi"
    assert content_text("plain words") == "plain words"
    assert content_text('{"no": "text here"}') == '{"no": "text here"}'


def test_messages_text_picks_the_first_or_last_message_of_a_role() -> None:
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": "first"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "answer"}]},
        {"role": "user", "parts": [{"type": "text", "content": "second"}]},
    ]
    assert messages_text(messages, "user", last=True) == "second"
    assert messages_text(messages, "user", last=False) == "first"
    assert messages_text(messages, "user", last=False, start=1) == "second"
    assert messages_text("not json", "user", last=True) is None


def test_token_usage_has_the_cache_counts_only_when_reported() -> None:
    assert Tokens(3, 4).usage() == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert Tokens(3, 4, cache_read=2).usage()["cache_read_tokens"] == 2
