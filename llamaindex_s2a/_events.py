"""Instrumentation events, so the S2A step shows in LlamaIndex traces."""

from __future__ import annotations

from llama_index.core.instrumentation.events import BaseEvent


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
    """The S2A postprocessor kept `kept` of `nodes`; `fallback` says why it kept all, if it did."""

    kept: int
    nodes: int
    calls: int
    fallback: str | None = None

    @classmethod
    def class_name(cls) -> str:
        """The event's name in traces."""
        return "S2ASelectionEndEvent"
