"""Forwarding a database (runtrace.forward, `runtrace forward`): every run once, filters, stable
span ids on a second run, one-line errors."""

from __future__ import annotations

from typing import Any

import pytest
from otel.helpers import find_planned
from otlp_receiver import Receiver, attributes

from runtrace.cli import main
from runtrace.demo import DemoResult
from runtrace.errors import ForwardError
from runtrace.forward import forward_runs, traces_url


def test_forward_command_sends_every_run_once(
    capsys: pytest.CaptureFixture[str], receiver: Receiver, demo: DemoResult
) -> None:
    code = main(["forward", "--endpoint", receiver.url, "--db", demo.path])
    out = capsys.readouterr().out
    assert code == 0
    roots = [s for s in receiver.spans if not s.parent_span_id]
    assert len(roots) == demo.workload.expected.runs
    assert len({s.span_id for s in roots}) == len(roots)
    assert f"Forwarded {len(roots)} runs ({len(receiver.spans)} spans)" in out
    statuses = [attributes(s)["runtrace.run.status"] for s in roots]
    assert {s: statuses.count(s) for s in set(statuses)} == demo.workload.expected.status_counts


def test_forward_since_the_future_sends_nothing(receiver: Receiver, demo: DemoResult) -> None:
    result = forward_runs(demo.path, receiver.url, since_ms=2**62)
    assert (result.runs, receiver.requests) == (0, 0)


def test_forwarding_twice_sends_the_same_span_ids(receiver: Receiver, demo: DemoResult) -> None:
    run_id, _ = find_planned(demo, "completed", need_children=True)
    forward_runs(demo.path, receiver.url, run_id=run_id)
    first = sorted(s.span_id for s in receiver.spans)
    receiver.spans.clear()
    forward_runs(demo.path, receiver.url, run_id=run_id)
    assert sorted(s.span_id for s in receiver.spans) == first


def test_an_unknown_run_and_a_dead_backend_fail_with_one_line(
    capsys: pytest.CaptureFixture[str], demo: DemoResult
) -> None:
    dead = Receiver()
    url = dead.url
    dead.close()  # nothing listens on the port any more
    code = main(["forward", "--endpoint", url, "--db", demo.path, "--run", "run-nope"])
    assert code == 1
    assert "no run with id 'run-nope'" in capsys.readouterr().err
    code = main(["forward", "--endpoint", url, "--db", demo.path, "--timeout", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "did not accept the spans" in err
    assert len(err.strip().splitlines()) == 1


def test_forward_progress_counts_every_run_up_to_the_total(
    receiver: Receiver, demo: DemoResult
) -> None:
    calls: list[tuple[int, int]] = []
    result = forward_runs(demo.path, receiver.url, progress=lambda *c: calls.append(c))
    runs = demo.workload.expected.runs
    assert result.runs == runs
    assert calls[-1] == (runs, runs)
    assert [done for done, _ in calls[:-1]] == list(range(1, runs + 1))
    assert {total for _, total in calls} == {runs}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"headers": {"x-token": "a\r\nInjected: 1"}}, "bad value for header 'x-token'"),
        ({"headers": {"bad name": "v"}}, "bad header name 'bad name'"),
        ({"timeout": float("nan")}, "bad timeout nan"),
        ({"timeout": 0}, "bad timeout 0"),
        ({"timeout": 9_223_372_037}, "at most 86400"),  # beyond what sockets accept
    ],
)
def test_bad_headers_and_timeouts_are_refused_before_anything_is_sent(
    receiver: Receiver, demo: DemoResult, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ForwardError, match=message):
        forward_runs(demo.path, receiver.url, **kwargs)
    assert receiver.requests == 0


@pytest.mark.parametrize(
    "endpoint",
    ["localhost:4318", "http://[::1", "http://host:port/", "http://a b/", "http://é.example/",
     "ftp://127.0.0.1/", "http:///v1/traces", "http://127.0.0.1/\x00"],
)  # fmt: skip
def test_a_bad_endpoint_is_named(endpoint: str) -> None:
    with pytest.raises(ForwardError, match="bad endpoint"):
        traces_url(endpoint)
