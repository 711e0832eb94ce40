"""System 2 Attention for LangChain.

`S2ARunnable` regenerates the context before the answer step sees it; `create_s2a_chain`
goes from input to answer text; `S2ADocumentCompressor` keeps the retrieved documents that
matter, in one call; `tgi_chat_model` reaches a text-generation-inference server.
"""

from __future__ import annotations

from langchain_s2a._chain import create_s2a_chain
from langchain_s2a._compressor import S2ADocumentCompressor
from langchain_s2a._convert import ChatHistory, ContextQuestion, S2ARunnableInput
from langchain_s2a._runnable import S2ARunnable, S2AToolArgs
from langchain_s2a._tgi import tgi_chat_model

__all__ = [
    "ChatHistory",
    "ContextQuestion",
    "S2ADocumentCompressor",
    "S2ARunnable",
    "S2ARunnableInput",
    "S2AToolArgs",
    "create_s2a_chain",
    "tgi_chat_model",
]
