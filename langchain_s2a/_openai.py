"""`openai_chat_model`: LangChain's `ChatOpenAI` for an OpenAI-compatible server of a named kind."""

from __future__ import annotations

from typing import Any

from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from s2a.openai_servers import ServerKind, check_server
from s2a.tgi import check_base_url


class ServerChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` that knows which server it talks to, so s2a can send that server's grammar fields."""

    s2a_server: ServerKind


def openai_chat_model(
    base_url: str,
    *,
    server: ServerKind,
    model: str,
    api_key: SecretStr | str = "unused",
    max_tokens: int = 512,
    timeout: float = 120.0,
    **kwargs: Any,
) -> ChatOpenAI:
    """`ChatOpenAI` for the server at `base_url` (its `/v1`), greedy, with the server's kind.

    Through it the S2A adapters constrain the replies that have a shape (keep lists,
    `extractive`'s JSON) with `server`'s own request fields (`s2a.openai_servers.grammar_fields`);
    a plain `ChatOpenAI` gets none and its replies are parsed as any model's. `scored` reads
    probabilities from the OpenAI `logprobs` either way.

    Args:
        base_url: the server's OpenAI route, e.g. `http://vllm.internal:8000/v1`.
        server: `tgi`, `vllm`, `sglang` or `llama.cpp`.
        model: the served model's name, as the server lists it (`/v1/models`).
        api_key: the server's key, sent as a bearer token.
        max_tokens: the reply's token budget.
        timeout: seconds to wait for a reply.
        **kwargs: any other `ChatOpenAI` setting.

    Raises:
        S2AConfigError: `base_url` is not an http(s) URL, or `server` is not a known kind.

    """
    return ServerChatOpenAI(
        base_url=check_base_url(base_url),
        s2a_server=check_server(server),
        model=model,
        api_key=api_key if isinstance(api_key, SecretStr) else SecretStr(api_key),
        temperature=0.0,
        max_tokens=max_tokens,
        timeout=timeout,
        **kwargs,
    )
