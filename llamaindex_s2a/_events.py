"""Instrumentation events, so the S2A step shows in LlamaIndex traces."""

from __future__ import annotations

from llama_index.core.instrumentation.events import BaseEvent
from pydantic import Field

from s2a import StepCost


class S2ASelectionStartEvent(BaseEvent):
    """The S2A postprocessor is about to select among `nodes` for `query`."""

    query: str
    nodes: int
    windows: int

    @classmethod
    def class_name(cls) -> str:
        """The event's name in traces."""
        return "S2ASelectionStartEvent"


class S2ASelectionEndEvent(BaseEvent):
    """The S2A postprocessor kept `kept` of `nodes`; `fallback` says why it kept all, if it did.

    `kept_ids` and `dropped_ids` name the nodes (by `node_id`, in their input order), so a trace
    shows what the answer step was not given; with sentence granularity a kept node may have
    lost sentences. `cost` is what the step cost (calls, rounds, tokens), as the driver counted it.
    """

    kept: int
    nodes: int
    calls: int
    fallback: str | None = None
    kept_ids: list[str] = Field(default_factory=list)
    dropped_ids: list[str] = Field(default_factory=list)
    cost: StepCost | None = None

    @classmethod
    def class_name(cls) -> str:
        """The event's name in traces."""
        return "S2ASelectionEndEvent"
