"""The built-in cancel hook (runtrace.otel.cancel_hook): a cancelled run's span ends at once, or,
without the hook, when the run's code leaves."""

from __future__ import annotations

from opentelemetry.trace import StatusCode
from otel.helpers import Setup

from runtrace import RunStatus


def test_the_cancel_hook_ends_the_span_at_the_cancel(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.cancel("stop")
        assert [s.name for s in env.spans()] == ["invoke_agent"]  # ended already
    assert env.run_span(run.id).status.description == "cancelled: stop"


def test_without_the_cancel_hook_the_span_ends_when_the_code_leaves() -> None:
    setup = Setup(cancel_ends_span=False)
    with setup.rt.start_run("s") as run:
        assert run.cancel("stop") is True
        assert run.cancelled and setup.spans() == []  # still open: the agent winds down
        run.record({"type": "text_delta", "text": "winding down"})
    span = setup.run_span(run.id)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "cancelled: stop"
    assert [e.name for e in span.events] == ["text_delta"]
    assert run.status() is RunStatus.CANCELLED
    assert setup.hook.named("on_run_cancelled") == [(run.id, "s", "stop")]
    setup.provider.shutdown()
