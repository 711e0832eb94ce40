"""System 2 Attention for LlamaIndex.

`S2ANodePostprocessor` keeps the retrieved nodes (or sentences) that help answer the query
and carry no opinion, with one LLM call per query; `tgi_llm` reaches a TGI server.
"""

from __future__ import annotations

from llamaindex_s2a._events import S2ASelectionEndEvent, S2ASelectionStartEvent
from llamaindex_s2a._postprocessor import S2ANodePostprocessor
from llamaindex_s2a._tgi import tgi_llm

__all__ = ["S2ANodePostprocessor", "S2ASelectionEndEvent", "S2ASelectionStartEvent", "tgi_llm"]
