"""Sample events shared by the tests of every layer: one of each type, and variants.

Tests index into these lists (``CORE_EVENTS[11]`` is a failed ``tool_end``): add at the end.
"""

from __future__ import annotations

from typing import Any

CORE_EVENTS: list[dict[str, Any]] = [
    {"type": "agent_start", "prompt": "fix the tests"},
    {
        "type": "agent_end",
        "text": "done",
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "cache_read_tokens": 2,
        },
        "verification_summary": {"status": "failed", "failed_subjects": ["a", "b"]},
        "meta": {"provider": "openai", "request_model": "m", "duration_ms": 12},
    },
    {"type": "error", "message": "model unavailable"},
    {"type": "turn_start", "turn": 1},
    {"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    {"type": "text_delta", "text": "héllo ✓"},
    {"type": "reasoning_delta", "text": "think"},
    {"type": "tool_start", "id": "t1", "name": "bash"},
    {"type": "tool_input_delta", "id": None, "delta": '{"cmd'},
    {"type": "tool_execution_start", "id": "t1", "name": "bash", "args": {"cmd": ["ls", "-l"]}},
    {"type": "tool_output_delta", "id": "t1", "name": "bash", "delta": "file\n"},
    {
        "type": "tool_end",
        "id": "t1",
        "name": "bash",
        "args": {"cmd": "ls"},
        "output": "file",
        "exit_code": 1,
        "metadata": {"cwd": "/tmp", "n": [1, 2]},
        "error_kind": "timeout",
    },
    {"type": "planning_start", "prompt": "plan it"},
    {"type": "planning_end", "plan": [{"step": 1}, {"step": 2}], "estimated_steps": 2},
    {"type": "step_start", "step_id": "s1", "description": "d", "step_number": 1, "total_steps": 2},
    {"type": "step_end", "step_id": "s1", "status": "ok", "step_number": 1, "total_steps": 2},
    {"type": "verification_start", "description": "run the suite"},
    {
        "type": "subagent_start",
        "task_id": "k",
        "session_id": "sub",
        "parent_session_id": "main",
        "agent": "reviewer",
        "description": "review",
        "started_ms": 5,
    },
    {"type": "subagent_progress", "task_id": "k", "session_id": "sub", "status": "50%"},
    {
        "type": "subagent_end",
        "task_id": "k",
        "session_id": "sub",
        "agent": "reviewer",
        "output": "lgtm",
        "success": True,
    },
    {
        "type": "confirmation_required",
        "tool_id": "t2",
        "tool_name": "rm",
        "args": {"path": "/"},
        "timeout_ms": 1000,
    },
    {"type": "confirmation_received", "tool_id": "t2", "approved": False, "reason": "no"},
    {"type": "confirmation_timeout", "tool_id": "t2", "action_taken": "rejected"},
    {"type": "permission_denied", "tool_id": "t2", "tool_name": "rm", "args": None, "reason": "x"},
    {
        "type": "context_compacted",
        "session_id": "main",
        "before_messages": 40,
        "after_messages": 8,
        "percent_before": 91.5,
        "summary": "we fixed things",
    },
]
"""One event of every core type, with every kind of field (nested models, lists, dicts,
non-ASCII text, an optional field left None)."""


GENERIC_EVENTS: list[dict[str, Any]] = [
    {"type": "budget_threshold_hit", "resource": "tokens", "consumed": 9.5, "limit": 10.0},
    {"type": "task_updated", "session_id": "main", "tasks": [{"id": 1, "done": False}]},
    {"type": "memory_recalled", "ids": ["m1", "m2"], "counts": [], "extra": {"deep": {"x": 1}}},
]
"""Events of types runtrace has no class for (kept as GenericEvent)."""

ONE_OF_EACH: list[dict[str, Any]] = CORE_EVENTS + GENERIC_EVENTS
"""One event of every core type, then a few generic ones."""

VARIANTS: list[dict[str, Any]] = [
    {
        "type": "agent_end",
        "text": "done",
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "verification_summary": {"status": "passed", "report_count": 1},
        "meta": {"provider": "anthropic", "duration_ms": 1200},
    },
    {"type": "tool_execution_start", "id": "t1", "name": "bash", "args": {"cmd": ["ls", 1]}},
    {
        "type": "tool_end",
        "id": "t1",
        "name": "bash",
        "args": {"cmd": "ls"},
        "output": "a.txt",
        "exit_code": 0,
        "metadata": None,
        "error_kind": None,
    },
    {"type": "planning_end", "plan": {"steps": ["a", "b"]}, "estimated_steps": 2},
    {
        "type": "confirmation_required",
        "tool_id": "t1",
        "tool_name": "rm",
        "args": {},
        "timeout_ms": 1,
    },
    {"type": "permission_denied", "tool_id": "t1", "tool_name": "rm", "args": {}, "reason": "x"},
]
"""Core events again with other shapes: a successful tool call with optional fields None, a
plan as a dict, mixed lists, empty arguments."""
