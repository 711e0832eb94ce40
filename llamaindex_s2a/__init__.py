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

if TYPE_CHECKING:
    from llamaindex_s2a._openai import openai_like_llm

__all__ = [
    "S2ANodePostprocessor",
    "S2ASelectionEndEvent",
    "S2ASelectionStartEvent",
    "openai_like_llm",
    "tgi_llm",
]


def __getattr__(name: str) -> Any:
    if name != "openai_like_llm":
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    try:
        from llamaindex_s2a import _openai  # noqa: PLC0415 - optional dependency, loaded on use
    except ModuleNotFoundError as exc:
        missing = f"llama-index-llms-openai-like ({exc.name} is missing)"
        msg = f"openai_like_llm needs {missing}: pip install 's2a[openai]'"
        raise ImportError(msg) from exc
    return _openai.openai_like_llm
