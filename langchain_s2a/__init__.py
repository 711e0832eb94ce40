"""System 2 Attention for LangChain.

`S2ARunnable` regenerates the context before the answer step sees it; `create_s2a_chain`
goes from input to answer text; `S2ADocumentCompressor` keeps the retrieved documents that
matter, in one call; `S2AMiddleware` filters a `create_agent` agent's tool results before each
model call (extra `langchain-agents`); `tgi_chat_model` reaches a text-generation-inference server,
`openai_chat_model` an OpenAI-compatible one of a named kind (vLLM, SGLang, ...; extra `openai`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_s2a._chain import create_s2a_chain
from langchain_s2a._compressor import S2ADocumentCompressor
from langchain_s2a._convert import ChatHistory, ContextQuestion, S2ARunnableInput
from langchain_s2a._runnable import S2ARunnable, S2AToolArgs
from langchain_s2a._tgi import tgi_chat_model
from s2a.adapter import lazy_attribute

if TYPE_CHECKING:
    from langchain_s2a._middleware import S2AFilterRecord, S2AMiddleware
    from langchain_s2a._openai import openai_chat_model

__all__ = [
    "ChatHistory",
    "ContextQuestion",
    "S2ADocumentCompressor",
    "S2AFilterRecord",
    "S2AMiddleware",
    "S2ARunnable",
    "S2ARunnableInput",
    "S2AToolArgs",
    "create_s2a_chain",
    "openai_chat_model",
    "tgi_chat_model",
]

_AGENTS = ("_middleware", "LangChain's agents", "langchain-agents")
_LAZY = {
    "S2AFilterRecord": _AGENTS,
    "S2AMiddleware": _AGENTS,
    "openai_chat_model": ("_openai", "langchain-openai", "openai"),
}
"""Names whose modules need an optional extra: imported when first used, so that the rest of
the package works without them."""


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _LAZY, name)
