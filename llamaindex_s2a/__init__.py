"""System 2 Attention for LlamaIndex.

`S2ANodePostprocessor` keeps the retrieved nodes (or sentences) that help answer the query
and carry no opinion, with one LLM call per query; `tgi_llm` reaches a TGI server,
`openai_like_llm` an OpenAI-compatible one of a named kind (vLLM, SGLang, ...; extra `openai`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llamaindex_s2a._events import S2ASelectionEndEvent, S2ASelectionStartEvent
from llamaindex_s2a._postprocessor import S2ANodePostprocessor
from llamaindex_s2a._tgi import tgi_llm
from s2a.adapter import lazy_attribute

if TYPE_CHECKING:
    from llamaindex_s2a._openai import openai_like_llm

__all__ = [
    "S2ANodePostprocessor",
    "S2ASelectionEndEvent",
    "S2ASelectionStartEvent",
    "openai_like_llm",
    "tgi_llm",
]


_LAZY = {"openai_like_llm": ("_openai", "llama-index-llms-openai-like", "openai")}
"""Names whose modules need an optional extra, imported when first used."""


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _LAZY, name)
