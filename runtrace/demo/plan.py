"""The demo's plan, decided from the seed alone: every run's events, simulated times and outcome.

:class:`Expected` holds the counts that follow from the plan, so tests check queries against the
workload instead of against magic numbers.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .profiles import AGENTS, TOOLS, AgentProfile

__all__ = [
    "DAY_MS",
    "DEFAULT_RUNS",
    "DEFAULT_SEED",
    "Expected",
    "PlannedRun",
    "Workload",
    "plan_workload",
]

DEFAULT_RUNS = 1_000
DEFAULT_SEED = 7
DAY_MS = 24 * 3_600_000


_AGENT_WEIGHTS = {"coder": 35, "researcher": 20, "reviewer": 15, "analyst": 15, "support": 15}

_RUN_ERRORS = (
    "model request timed out after {n}s",
    "rate limited by provider (429), retry budget of {n} exhausted",
    "context window exceeded: {n} tokens",
    "tool budget exceeded: {n} calls",
)
_EXCEPTION_ERRORS = (
    "connection to model provider reset after {n} bytes",
    "could not parse tool arguments at offset {n}",
)
_CANCEL_REASONS = ("cancelled by host", "user pressed stop", "superseded by a newer prompt")
_SUBAGENTS = ("explorer", "test-writer", "summariser")


_STATUS_OF_OUTCOME = {"crashed": "failed", "interrupted": "executing"}
_INTERRUPT_RATE = 0.01


@dataclass
class PlannedRun:
    """One run of the workload: who runs it, its events with simulated times, how it ends."""

    index: int
    session_id: str
    agent_name: str
    prompt: str
    start_ms: int
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(milliseconds after ``start_ms``, event) in recording order."""
    outcome: str = "completed"
    """completed, failed (an ``error`` event), crashed (an exception), cancelled, or interrupted
    (left open mid-tool-call, as by a process killed mid-run)."""
    error: str | None = None
    cancel_reason: str | None = None
    end_offset_ms: int = 0
    long: bool = False

    @property
    def status(self) -> str:
        """The run's status once recorded: a crash is a failure too; an interrupted run is left
        ``executing`` (until :func:`runtrace.duckdb.recover_interrupted` marks it failed
        after the recording process exited)."""
        return _STATUS_OF_OUTCOME.get(self.outcome, self.outcome)


@dataclass(frozen=True)
class Expected:
    """Counts that follow from the plan; what a correct recording and correct queries show."""

    runs: int
    sessions: int
    events: int
    status_counts: dict[str, int]
    status_by_agent: dict[tuple[str, str], int]
    tool_calls: dict[str, int]
    tool_failures: dict[str, int]
    tool_failures_by_exit: dict[tuple[str, int], int]
    input_tokens: int
    output_tokens: int
    tokens_by_agent: dict[str, tuple[int, int]]
    subagents_started: dict[str, int]
    subagents_succeeded: dict[str, int]
    error_runs: int
    crashed_runs: int
    interrupted_runs: int
    long_runs: int
    max_events: int
    cancel_reasons: dict[str, int]


@dataclass(frozen=True)
class Workload:
    """The planned runs and what they add up to."""

    seed: int
    runs: list[PlannedRun]
    expected: Expected


def _lognormal(rng: random.Random, median: float, sigma: float) -> int:
    return max(1, round(rng.lognormvariate(math.log(median), sigma)))


class _RunBuilder:
    """Appends events with a simulated clock and keeps the run's token totals."""

    def __init__(self, rng: random.Random, run: PlannedRun) -> None:
        self.rng = rng
        self.run = run
        self.t = 0
        self.tool_seq = 0
        self.tokens_in = 0
        self.tokens_out = 0

    def emit(self, event: dict[str, Any], gap_ms: int = 0) -> None:
        self.t += gap_ms
        self.run.events.append((self.t, event))

    def tool_call(self, name: str) -> None:
        profile = TOOLS[name]
        self.tool_seq += 1
        call_id = f"call-{self.run.index}-{self.tool_seq}"
        args = {"path": f"src/module_{self.rng.randrange(40)}.py"} if "file" in name else {}
        self.emit({"type": "tool_start", "id": call_id, "name": name}, self.rng.randint(5, 60))
        self.emit(
            {"type": "tool_execution_start", "id": call_id, "name": name, "args": args},
            self.rng.randint(1, 20),
        )
        latency = _lognormal(self.rng, profile.median_ms, profile.sigma)
        if self.rng.random() < profile.failure_rate:
            exit_code, kind, output = self.rng.choice(profile.failures)
            end: dict[str, Any] = {"exit_code": exit_code, "error_kind": kind, "output": output}
        else:
            end = {"exit_code": 0, "output": f"{name} ok ({self.rng.randrange(1, 500)} lines)"}
        if latency > 2_000:  # slow tools stream some output on the way
            self.emit(
                {"type": "tool_output_delta", "id": call_id, "name": name, "delta": "...\n"},
                latency // 2,
            )
            latency -= latency // 2
        self.emit({"type": "tool_end", "id": call_id, "name": name, "args": args, **end}, latency)

    def turn(self, turn: int, profile: AgentProfile, tools: int, deltas: int) -> None:
        self.emit({"type": "turn_start", "turn": turn}, self.rng.randint(10, 200))
        if self.rng.random() < 0.5:
            self.emit({"type": "reasoning_delta", "text": "Let me look at this."}, 300)
        for _ in range(deltas):
            self.emit({"type": "text_delta", "text": "Working on it. "}, self.rng.randint(15, 80))
        for _ in range(tools):
            self.tool_call(self.rng.choice(profile.tools))
        prompt_tokens = _lognormal(self.rng, profile.tokens_in, 0.5)
        completion_tokens = _lognormal(self.rng, profile.tokens_out, 0.6)
        self.tokens_in += prompt_tokens
        self.tokens_out += completion_tokens
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        self.emit({"type": "turn_end", "turn": turn, "usage": usage}, self.rng.randint(400, 4_000))

    def subagent(self, task: int, success: bool) -> None:
        agent = self.rng.choice(_SUBAGENTS)
        task_id = f"task-{self.run.index}-{task}"
        child = f"{self.run.session_id}/sub-{task}"
        self.emit(
            {
                "type": "subagent_start",
                "task_id": task_id,
                "session_id": child,
                "parent_session_id": self.run.session_id,
                "agent": agent,
                "description": f"{agent}: investigate part {task}",
            },
            self.rng.randint(20, 200),
        )
        self.emit(
            {
                "type": "subagent_progress",
                "task_id": task_id,
                "session_id": child,
                "status": "running",
                "metadata": {"step": 1},
            },
            _lognormal(self.rng, 4_000, 0.6),
        )
        self.emit(
            {
                "type": "subagent_end",
                "task_id": task_id,
                "session_id": child,
                "agent": agent,
                "output": "done" if success else "gave up",
                "success": success,
            },
            _lognormal(self.rng, 6_000, 0.6),
        )


def _plan_run(
    rng: random.Random, index: int, session_id: str, agent: str, start_ms: int, long: bool
) -> PlannedRun:
    profile = AGENTS[agent]
    prompt = rng.choice(profile.prompts)
    run = PlannedRun(index, session_id, agent, prompt, start_ms, long=long)
    b = _RunBuilder(rng, run)
    roll = rng.random()
    if roll < _INTERRUPT_RATE:
        run.outcome = "interrupted"
    elif roll - _INTERRUPT_RATE < profile.cancel_rate:
        run.outcome = "cancelled"
    elif roll - _INTERRUPT_RATE < profile.cancel_rate + profile.fail_rate:
        run.outcome = "failed" if rng.random() < 0.7 else "crashed"

    b.emit({"type": "agent_start", "prompt": prompt})
    turns = rng.randint(*profile.turns)
    if long:
        turns = rng.randint(120, 220)
    steps = 1
    if rng.random() < profile.plans or long:
        steps = min(turns, rng.randint(2, 5))
        b.emit({"type": "planning_start", "prompt": prompt}, rng.randint(50, 300))
        plan = [f"step {i + 1}" for i in range(steps)]
        b.emit(
            {"type": "planning_end", "plan": plan, "estimated_steps": steps},
            _lognormal(rng, 2_500, 0.5),
        )
    turns_per_step = [turns // steps + (1 if i < turns % steps else 0) for i in range(steps)]
    # Failing and cancelled runs stop somewhere in the middle.
    stop_turn = rng.randint(1, turns) if run.outcome != "completed" else turns + 1
    turn = 0
    subtask = 0
    stopped = False
    for step, step_turns in enumerate(turns_per_step, start=1):
        step_id = f"s{step}"
        if steps > 1:
            b.emit(
                {
                    "type": "step_start",
                    "step_id": step_id,
                    "description": f"step {step}",
                    "step_number": step,
                    "total_steps": steps,
                },
                rng.randint(10, 100),
            )
        for _ in range(step_turns):
            turn += 1
            if turn == stop_turn:
                stopped = True
                break
            tools = rng.randint(*profile.tools_per_turn)
            deltas = rng.randint(15, 30) if long else rng.randint(1, 6)
            b.turn(turn, profile, tools, deltas)
            if rng.random() < 0.04:
                tool_id = f"confirm-{index}-{turn}"
                b.emit(
                    {
                        "type": "confirmation_required",
                        "tool_id": tool_id,
                        "tool_name": "bash",
                        "args": {"cmd": "rm -rf build/"},
                        "timeout_ms": 60_000,
                    },
                    50,
                )
                b.emit(
                    {"type": "confirmation_received", "tool_id": tool_id, "approved": True},
                    _lognormal(rng, 8_000, 0.8),
                )
            if rng.random() < profile.delegates / max(1, turns) * 2:
                subtask += 1
                b.subagent(subtask, success=rng.random() < 0.85)
        if stopped:
            break
        if steps > 1:
            b.emit(
                {
                    "type": "step_end",
                    "step_id": step_id,
                    "status": "done",
                    "step_number": step,
                    "total_steps": steps,
                },
                rng.randint(10, 100),
            )

    n = rng.randint(3, 90)
    if run.outcome == "completed":
        summary = None
        if rng.random() < profile.verifies:
            b.emit({"type": "verification_start", "description": "run checks"}, 200)
            b.tool_call("run_tests" if "run_tests" in profile.tools else profile.tools[0])
            summary = {
                "status": rng.choice(("passed", "passed", "passed", "needs_review")),
                "report_count": 1,
                "required_check_count": 2,
            }
        b.emit(
            {
                "type": "agent_end",
                "text": f"Done: {prompt.lower()}",
                "usage": {
                    "prompt_tokens": b.tokens_in,
                    "completion_tokens": b.tokens_out,
                    "total_tokens": b.tokens_in + b.tokens_out,
                },
                "verification_summary": summary,
                "meta": {"provider": "demo", "request_model": f"demo-{agent}-1"},
            },
            rng.randint(200, 2_000),
        )
    elif run.outcome == "failed":
        run.error = rng.choice(_RUN_ERRORS).format(n=n)
        b.emit({"type": "error", "message": run.error}, rng.randint(100, 30_000))
    elif run.outcome == "crashed":
        run.error = rng.choice(_EXCEPTION_ERRORS).format(n=n)
        b.t += rng.randint(10, 500)
    elif run.outcome == "interrupted":  # killed while a tool ran: the tool call never ends
        b.emit({"type": "turn_start", "turn": turn}, rng.randint(10, 200))
        b.tool_seq += 1
        call_id = f"call-{index}-{b.tool_seq}"
        b.emit({"type": "tool_start", "id": call_id, "name": "bash"}, rng.randint(5, 60))
    else:
        run.cancel_reason = rng.choice(_CANCEL_REASONS)
        b.t += rng.randint(100, 20_000)
    run.end_offset_ms = b.t + rng.randint(1, 50)
    return run


def _expected(runs: list[PlannedRun]) -> Expected:
    status = Counter(r.status for r in runs)
    by_agent = Counter((r.agent_name, r.status) for r in runs)
    calls: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    by_exit: Counter[tuple[str, int]] = Counter()
    sub_started: Counter[str] = Counter()
    sub_ok: Counter[str] = Counter()
    tokens: dict[str, list[int]] = {}
    total_in = total_out = 0
    for run in runs:
        run_in = run_out = 0
        for _, event in run.events:
            kind = event["type"]
            if kind == "tool_end":
                calls[event["name"]] += 1
                if event["exit_code"] != 0:
                    failures[event["name"]] += 1
                    by_exit[(event["name"], event["exit_code"])] += 1
            elif kind == "turn_end":
                run_in += event["usage"]["prompt_tokens"]
                run_out += event["usage"]["completion_tokens"]
            elif kind == "subagent_start":
                sub_started[event["agent"]] += 1
            elif kind == "subagent_end" and event["success"]:
                sub_ok[event["agent"]] += 1
        total_in += run_in
        total_out += run_out
        agent_tokens = tokens.setdefault(run.agent_name, [0, 0])
        agent_tokens[0] += run_in
        agent_tokens[1] += run_out
    return Expected(
        runs=len(runs),
        sessions=len({r.session_id for r in runs}),
        events=sum(len(r.events) for r in runs),
        status_counts=dict(status),
        status_by_agent=dict(by_agent),
        tool_calls=dict(calls),
        tool_failures=dict(failures),
        tool_failures_by_exit=dict(by_exit),
        input_tokens=total_in,
        output_tokens=total_out,
        tokens_by_agent={a: (t[0], t[1]) for a, t in tokens.items()},
        subagents_started=dict(sub_started),
        subagents_succeeded=dict(sub_ok),
        error_runs=sum(1 for r in runs if r.outcome == "failed"),
        crashed_runs=sum(1 for r in runs if r.outcome == "crashed"),
        interrupted_runs=sum(1 for r in runs if r.outcome == "interrupted"),
        long_runs=sum(1 for r in runs if r.long),
        max_events=max((len(r.events) for r in runs), default=0),
        cancel_reasons=dict(Counter(r.cancel_reason for r in runs if r.cancel_reason)),
    )


def plan_workload(
    runs: int = DEFAULT_RUNS, seed: int = DEFAULT_SEED, *, start_ms: int | None = None
) -> Workload:
    """Plan ``runs`` runs from ``seed``: the same seed always gives the same workload.

    Runs are spread over the 24 hours before ``start_ms`` + 1 day (default: the day that ends
    now), grouped into sessions of one to six runs of one agent. About one run in 300 (at least
    one) is a long run with thousands of events.
    """
    if runs < 1:
        raise ValueError("a demo needs at least one run")
    rng = random.Random(seed)
    if start_ms is None:
        from ..runs import now_ms

        start_ms = now_ms() - DAY_MS
    long_runs = max(1, round(runs * 0.003))
    long_at = set(rng.sample(range(runs), long_runs))
    agents = list(_AGENT_WEIGHTS)
    weights = list(_AGENT_WEIGHTS.values())
    planned: list[PlannedRun] = []
    session = 0
    while len(planned) < runs:
        session += 1
        agent = rng.choices(agents, weights)[0]
        session_id = f"sess-{seed}-{session:05d}"
        at = start_ms + rng.randrange(DAY_MS - 3_600_000)
        for _ in range(min(rng.randint(1, 6), runs - len(planned))):
            index = len(planned)
            run = _plan_run(rng, index, session_id, agent, at, index in long_at)
            planned.append(run)
            at += run.end_offset_ms + rng.randint(2_000, 120_000)  # the user reads, then asks again
    return Workload(seed=seed, runs=planned, expected=_expected(planned))
