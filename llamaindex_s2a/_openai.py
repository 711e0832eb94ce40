"""`openai_like_llm`: LlamaIndex's `OpenAILike` for an OpenAI-compatible server of a named kind."""

from __future__ import annotations

from typing import Any

from llama_index.llms.openai_like import OpenAILike

from s2a.openai_servers import ServerKind, check_server
from s2a.tgi import check_base_url


class ServerOpenAILike(OpenAILike):  # type: ignore[misc]  # untyped package
    """`OpenAILike` that knows which server it talks to, so s2a can send that server's grammar fields."""

    s2a_server: ServerKind


def openai_like_llm(
    api_base: str,
    *,
    server: ServerKind,
    model: str,
    context_window: int,
    api_key: str = "unused",
    max_tokens: int = 512,
    timeout: float = 120.0,
    **kwargs: Any,
) -> OpenAILike:
    """`OpenAILike` for the server at `api_base` (its `/v1`), a chat model, with the server's kind.

    Through it `S2ANodePostprocessor` constrains the keep lists with `server`'s own request
    fields (`s2a.openai_servers.grammar_fields`); a plain `OpenAILike` gets none. `scored`
    reads probabilities from the OpenAI `logprobs` either way.

    Args:
        api_base: the server's OpenAI route, e.g. `http://sglang.internal:30000/v1`.
        server: `tgi`, `vllm`, `sglang` or `llama.cpp`.
        model: the served model's name, as the server lists it (`/v1/models`).
        context_window: the model's context in tokens (the S2A step splits what does not fit).
        api_key: the server's key, sent as a bearer token.
        max_tokens: the reply's token budget.
        timeout: seconds to wait for a reply.
        **kwargs: any other `OpenAILike` setting.

    Raises:
        S2AConfigError: `api_base` is not an http(s) URL, or `server` is not a known kind.

    """
    llm: OpenAILike = ServerOpenAILike(
        api_base=check_base_url(api_base),
        s2a_server=check_server(server),
        model=model,
        api_key=api_key,
        is_chat_model=True,
        context_window=context_window,
        max_tokens=max_tokens,
        timeout=timeout,
        **kwargs,
    )
    return llm
