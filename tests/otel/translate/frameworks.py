"""Real frameworks, offline: pydantic-ai on its test models, strands on a scripted model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from pydantic_ai.models.instrumented import InstrumentationSettings
from strands.models.model import Model
from strands.telemetry import tracer as strands_tracer

Call = tuple[str, str, dict[str, Any]]
"""A tool call the scripted model makes: (tool name, call id, arguments)."""
Turn = Sequence[str | Call] | Exception
"""What the scripted model answers one request with: text and tool calls, or an error."""


def pydantic_settings(provider: TracerProvider, version: int | None) -> InstrumentationSettings:
    """pydantic-ai's instrumentation on ``provider`` (its default version when None)."""
    if version is None:
        return InstrumentationSettings(tracer_provider=provider)
    return InstrumentationSettings(tracer_provider=provider, version=version)  # type: ignore[arg-type]


class ScriptedModel(Model):
    """A strands model that answers from a script, offline; usage 10 in / 5 out per call."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        self.turns = list(turns)

    def update_config(self, **model_config: Any) -> None:
        pass

    def get_config(self) -> Any:
        return {}

    async def structured_output(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        raise NotImplementedError("the scripted model answers with text and tool calls only")
        yield

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        turn = self.turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        yield {"messageStart": {"role": "assistant"}}
        stop = "end_turn"
        for item in turn:
            if isinstance(item, str):
                yield {"contentBlockStart": {"start": {}}}
                yield {"contentBlockDelta": {"delta": {"text": item}}}
            else:
                name, call_id, arguments = item
                stop = "tool_use"
                start = {"toolUse": {"toolUseId": call_id, "name": name}}
                yield {"contentBlockStart": {"start": start}}
                yield {
                    "contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(arguments)}}}
                }
            yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": stop}}
        usage = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}
        yield {"metadata": {"usage": usage, "metrics": {"latencyMs": 1}}}


@contextmanager
def strands_traced(provider: TracerProvider) -> Iterator[None]:
    """strands' spans go to ``provider`` (strands' tracer takes the global provider once)."""
    tracer = strands_tracer.get_tracer()
    saved: Tracer = tracer.tracer
    tracer.tracer = provider.get_tracer("strands.telemetry.tracer")
    try:
        yield
    finally:
        tracer.tracer = saved
