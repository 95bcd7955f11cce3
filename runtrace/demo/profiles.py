"""The demo's cast: five agents and the tools they call, with their latencies and failure modes."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AGENTS", "TOOLS", "AgentProfile", "ToolProfile"]


@dataclass(frozen=True)
class ToolProfile:
    """How a simulated tool behaves: median latency, spread, how often it fails and how."""

    median_ms: float
    sigma: float
    failure_rate: float
    failures: tuple[tuple[int, str, str], ...]  # (exit_code, error_kind, output)


TOOLS: dict[str, ToolProfile] = {
    "read_file": ToolProfile(25, 0.6, 0.04, ((1, "not_found", "No such file or directory"),)),
    "write_file": ToolProfile(40, 0.5, 0.01, ((1, "permission", "Permission denied"),)),
    "grep": ToolProfile(120, 0.8, 0.03, ((2, "bad_pattern", "grep: Unmatched ( or \\("),)),
    "bash": ToolProfile(
        900,
        1.1,
        0.12,
        (
            (1, "exit_status", "make: *** [build] Error 1"),
            (127, "not_found", "bash: cargo: command not found"),
            (137, "killed", "Killed (out of memory)"),
        ),
    ),
    "run_tests": ToolProfile(
        7_000, 0.7, 0.25, ((1, "tests_failed", "FAILED tests/test_api.py::test_login"),)
    ),
    "web_search": ToolProfile(1_400, 0.5, 0.05, ((1, "timeout", "search timed out after 10s"),)),
    "http_get": ToolProfile(
        500,
        0.9,
        0.08,
        ((22, "http_error", "HTTP 404 Not Found"), (28, "timeout", "operation timed out")),
    ),
    "sql_query": ToolProfile(300, 1.0, 0.06, ((1, "sql_error", "column does not exist"),)),
}


@dataclass(frozen=True)
class AgentProfile:
    """A simulated agent: its tools, how much it plans, talks and delegates, how it ends."""

    tools: tuple[str, ...]
    turns: tuple[int, int]
    tools_per_turn: tuple[int, int]
    plans: float
    delegates: float
    verifies: float
    tokens_in: int
    tokens_out: int
    fail_rate: float
    cancel_rate: float
    prompts: tuple[str, ...]


AGENTS: dict[str, AgentProfile] = {
    "coder": AgentProfile(
        ("read_file", "write_file", "grep", "bash", "run_tests"),
        (3, 9),
        (1, 3),
        0.6,
        0.15,
        0.7,
        6_000,
        900,
        0.10,
        0.06,
        (
            "Fix the failing login test",
            "Add pagination to the orders endpoint",
            "Refactor the config loader",
            "Upgrade the HTTP client and fix breakages",
        ),
    ),
    "researcher": AgentProfile(
        ("web_search", "http_get", "read_file", "write_file"),
        (2, 6),
        (1, 4),
        0.4,
        0.25,
        0.2,
        9_000,
        1_400,
        0.07,
        0.05,
        (
            "Compare vector databases for our workload",
            "Summarise the latest OpenTelemetry GenAI conventions",
            "Find prior art on run cancellation semantics",
        ),
    ),
    "reviewer": AgentProfile(
        ("read_file", "grep", "bash"),
        (1, 4),
        (1, 2),
        0.1,
        0.0,
        0.9,
        4_000,
        600,
        0.05,
        0.03,
        ("Review PR #412", "Review the migration script", "Check the release notes"),
    ),
    "analyst": AgentProfile(
        ("sql_query", "read_file", "write_file", "bash"),
        (2, 7),
        (1, 3),
        0.5,
        0.1,
        0.4,
        5_000,
        800,
        0.12,
        0.04,
        (
            "Weekly revenue by region",
            "Why did signups drop on Tuesday?",
            "Build the churn cohort table",
        ),
    ),
    "support": AgentProfile(
        ("http_get", "sql_query", "read_file"),
        (1, 3),
        (0, 2),
        0.05,
        0.05,
        0.1,
        2_500,
        400,
        0.04,
        0.10,
        ("Customer cannot reset password", "Refund request for order 8812", "Where is my invoice?"),
    ),
}
