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

_AGENTS = {"S2AFilterRecord", "S2AMiddleware"}
"""Names that need LangChain's agents (`langchain`, `langgraph`): imported when first used,
so that the rest of the package works without them."""


def __getattr__(name: str) -> Any:
    if name == "openai_chat_model":
        try:
            from langchain_s2a import _openai  # noqa: PLC0415 - optional dependency, loaded on use
        except ModuleNotFoundError as exc:
            msg = (
                f"openai_chat_model needs langchain-openai ({exc.name} is missing): pip install 's2a[openai]'"
            )
            raise ImportError(msg) from exc
        return _openai.openai_chat_model
    if name not in _AGENTS:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    try:
        from langchain_s2a import _middleware  # noqa: PLC0415 - optional dependency, loaded on use
    except ModuleNotFoundError as exc:
        missing = (exc.name or "a dependency").split(".")[0]
        msg = f"{name} needs LangChain's agents ({missing} is missing): pip install 's2a[langchain-agents]'"
        raise ImportError(msg) from exc
    return getattr(_middleware, name)
