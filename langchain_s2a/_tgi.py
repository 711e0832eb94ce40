"""`tgi_chat_model`: a LangChain chat model for a text-generation-inference server."""

from __future__ import annotations

import math
from typing import Any

from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint
from pydantic import SecretStr

from s2a.tgi import CONNECT_TIMEOUT, Decoding, bearer, check_base_url, no_hub_traffic, timeouts


def tgi_chat_model(
    base_url: str,
    *,
    timeout: float = 120.0,
    connect_timeout: float = CONNECT_TIMEOUT,
    api_key: SecretStr | str | None = None,
    **decoding: Any,
) -> ChatHuggingFace:
    """A `ChatHuggingFace` over `HuggingFaceEndpoint` for the TGI server at `base_url`.

    Talks to the server only (its `/v1/chat/completions` route, through huggingface_hub's
    client); never to the Hugging Face Hub (see `s2a.tgi.no_hub_traffic`). Decoding is
    greedy unless told otherwise. Streams ask for usage, so a streamed reply carries
    `usage_metadata` as an invoked one does.

    Args:
        base_url: the server, e.g. `http://127.0.0.1:8080` or a TGI serving LLaMA-2-70B-chat.
        timeout: seconds to wait for each read of the response (a long generation needs more).
        connect_timeout: seconds to establish the connection; a server that is down fails fast.
        api_key: the server's key (TGI's `--api-key`), sent as a bearer token; kept out of
            reprs. Without one, a placeholder is sent, never your Hugging Face token.
        **decoding: fields of `s2a.Decoding`: `max_new_tokens`, `temperature`, `top_p`,
            `seed`, `stop`.

    Raises:
        S2AConfigError: `base_url` is not an http(s) URL.
        pydantic.ValidationError: an unknown or invalid decoding setting.
        ValueError: a timeout is not positive, or `api_key` is empty.

    """
    settings = Decoding(**decoding)
    limits, token = timeouts(timeout, connect_timeout), bearer(api_key)
    no_hub_traffic()
    # `model` is filled from `endpoint_url` by a validator; passing `model` instead would send
    # HF_TOKEN to this server.
    endpoint = HuggingFaceEndpoint(  # type: ignore[call-arg]
        endpoint_url=check_base_url(base_url),
        max_new_tokens=settings.max_new_tokens,
        do_sample=settings.do_sample,
        # TGI's /generate rejects temperature=0: greedy there is do_sample=False alone.
        temperature=settings.temperature if settings.do_sample else None,
        top_p=settings.top_p,
        typical_p=None,
        seed=settings.seed,
        stop_sequences=list(settings.stop),
        timeout=math.ceil(timeout),
    )
    # langchain-huggingface gives a non-Hub URL no token, and huggingface_hub then sends the
    # locally saved Hub token; set ours (and the split timeouts) on its two clients instead.
    for client in (endpoint.client, endpoint.async_client):
        client.token = token
        client.timeout = limits
    chat_only = {"seed": settings.seed, "top_p": settings.top_p}
    return ChatHuggingFace(
        llm=endpoint,
        # TGI's chat route treats temperature=0 as greedy.
        temperature=settings.temperature,
        max_tokens=settings.max_new_tokens,
        stop_sequences=list(settings.stop) or None,
        model_kwargs={key: value for key, value in chat_only.items() if value is not None},
        # TGI sends usage after a stream's last chunk only when asked (stream_options).
        stream_usage=True,
    )
