"""Conversions between LangChain's types and the s2a core's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypeAlias

import httpx
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    MessageLikeRepresentation,
    SystemMessage,
    convert_to_messages,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable
from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint
from typing_extensions import TypedDict

from s2a import ChatMessage, S2AInput, TokenUsage, history_input
from s2a.adapter import TokenLogprob, token_logprobs
from s2a.openai_servers import grammar_fields


class ContextQuestion(TypedDict):
    """Input with the material to filter and, when known, the question apart."""

    context: str
    question: NotRequired[str]


class ChatHistory(TypedDict):
    """Input as a chat history: the last user message is the question, the rest is filtered."""

    messages: Sequence[MessageLikeRepresentation]


S2ARunnableInput: TypeAlias = str | ContextQuestion | ChatHistory
"""What `S2ARunnable` accepts: a whole prompt, a context and question, or a chat history."""

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}


def _history(messages: Any) -> S2AInput:
    if isinstance(messages, str) or not isinstance(messages, Sequence):
        msg = f"`messages` must be a list of messages, got {type(messages).__name__}"
        raise TypeError(msg)
    try:
        converted = convert_to_messages(messages)
    except NotImplementedError as exc:  # LangChain's "Unsupported message type"
        msg = f"`messages` holds something that is not a message: {exc}"
        raise TypeError(msg) from None
    return history_input([(_ROLES.get(m.type, m.type), m.text) for m in converted])


def _context_question(value: Mapping[str, Any]) -> S2AInput:
    unknown = sorted(set(value) - {"context", "question"}, key=str)  # keys need not all be str
    if unknown:
        msg = f"unknown input keys {unknown}: pass 'context' and 'question', or 'messages'"
        raise ValueError(msg)
    for key in ("context", "question"):
        if key in value and not isinstance(value[key], str):
            msg = f"input {key!r} must be a str, got {type(value[key]).__name__}"
            raise TypeError(msg)
    return S2AInput(context=value.get("context", ""), question=value.get("question"))


def to_s2a_input(value: Any) -> S2AInput:
    """Coerce any accepted input to the core's `S2AInput`.

    Raises:
        TypeError: the input, or one of its fields, has the wrong type.
        ValueError: the input has unknown keys, is empty, or a history has no user message.

    """
    if isinstance(value, S2AInput):
        return value
    if isinstance(value, str):
        return S2AInput(context=value)
    if isinstance(value, PromptValue):
        return _history(value.to_messages())
    if isinstance(value, Mapping):
        if "messages" in value:
            if len(value) > 1:
                msg = f"'messages' input takes no other keys, got {sorted(map(str, value))}"
                raise ValueError(msg)
            return _history(value["messages"])
        return _context_question(value)
    msg = (
        "S2ARunnable input must be a str, a dict with 'context' (and 'question'), "
        f"or a dict with 'messages'; got {type(value).__name__}"
    )
    raise TypeError(msg)


def to_messages(messages: Sequence[ChatMessage]) -> list[BaseMessage]:
    """The core's messages as LangChain messages."""
    kinds = {"system": SystemMessage, "user": HumanMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


def output_text(output: Any) -> str:
    """The text of a chat model's message or an LLM's string."""
    if isinstance(output, BaseMessage):
        return output.text
    if isinstance(output, str):
        return output
    msg = f"the S2A model returned {type(output).__name__}; expected a message or a str"
    raise TypeError(msg)


def output_usage(output: Any) -> TokenUsage | None:
    """Token usage reported with a chat model's message, if any."""
    if isinstance(output, AIMessage) and output.usage_metadata:
        usage = output.usage_metadata
        return TokenUsage(
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            total_tokens=usage["total_tokens"],
            cached_tokens=usage.get("input_token_details", {}).get("cache_read"),
        )
    return None


_CUT_OFF = {"length", "max_tokens", "MAX_TOKENS"}
"""How backends say a reply hit its token limit: TGI and OpenAI, Anthropic, Google."""


def output_truncated(output: Any) -> bool:
    """Whether a chat model's message says its reply was cut off at the token limit."""
    if not isinstance(output, AIMessage):
        return False
    metadata = output.response_metadata
    return any(metadata.get(key) in _CUT_OFF for key in ("finish_reason", "stop_reason"))


def check_complete(llm: Runnable[Any, Any], output: Any) -> None:
    """A TGI chat reply always says why it ended; one that does not was cut off on the way.

    A stream the server (or a proxy) closed early, without chunked framing, reads like a
    short reply; only the missing `finish_reason` shows it.

    Raises:
        httpx.RemoteProtocolError: the reply has no finish reason (retried as a dropped connection).

    """
    if (
        isinstance(llm, ChatHuggingFace)
        and isinstance(output, AIMessage)
        and not output.response_metadata.get("finish_reason")
    ):
        msg = "the reply ended without a finish_reason: the stream was cut off"
        raise httpx.RemoteProtocolError(msg)


def constrained(
    llm: Runnable[Any, Any],
    grammar: dict[str, Any] | None,
    top_logprobs: int = 0,
    max_new_tokens: int | None = None,
) -> Runnable[Any, Any]:
    """Bind TGI's `grammar` to TGI-backed models, and ask for `top_logprobs` where a model can.

    `grammar` is `{"type": "json"|"regex", "value": ...}`. TGI takes it as `response_format`
    on its chat route and as `grammar` on `/generate`; any server speaking TGI's API (the
    local one included) honours both. A `ChatOpenAI` from `openai_chat_model` gets its
    server's own fields (`s2a.openai_servers`). Other models rely on the prompt. `logprobs` and
    `top_logprobs` are the OpenAI-style settings of `ChatHuggingFace` and `ChatOpenAI`; a
    model without them gives no probabilities. `max_new_tokens` (the request's, when its
    reply needs fewer tokens than the model's budget) is bound only with the grammar: an
    unconstrained reply may need its whole budget to reach its answer.
    """
    settings: dict[str, Any] = {}
    if grammar is not None and isinstance(llm, ChatHuggingFace):
        settings["response_format"] = grammar
        budget = llm.max_tokens
        if max_new_tokens is not None and (budget is None or max_new_tokens < budget):
            settings["max_tokens"] = max_new_tokens
    elif grammar is not None and isinstance(llm, HuggingFaceEndpoint):
        settings["grammar"] = grammar
        if max_new_tokens is not None and max_new_tokens < llm.max_new_tokens:
            settings["max_new_tokens"] = max_new_tokens
    elif grammar is not None and (server := getattr(llm, "s2a_server", None)) is not None:
        # `openai_chat_model`: the named server's own constraint fields, beside the user's extras.
        settings["extra_body"] = {
            **(getattr(llm, "extra_body", None) or {}),
            **grammar_fields(server, grammar),
        }
        budget = getattr(llm, "max_tokens", None)
        if max_new_tokens is not None and (budget is None or max_new_tokens < budget):
            settings["max_tokens"] = max_new_tokens
    fields = getattr(type(llm), "model_fields", {})
    if top_logprobs and "logprobs" in fields and "top_logprobs" in fields:
        settings.update(logprobs=True, top_logprobs=top_logprobs)
    return llm.bind(**settings) if settings else llm


def output_logprobs(output: Any) -> tuple[TokenLogprob, ...] | None:
    """The reply's tokens and their alternatives, when the chat model reported them."""
    if not isinstance(output, AIMessage):
        return None
    logprobs = output.response_metadata.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else getattr(logprobs, "content", None)
    return token_logprobs(content)
