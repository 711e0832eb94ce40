"""`tgi_chat_model`: a LangChain chat model for a text-generation-inference server."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint
from pydantic import BaseModel, SecretStr

from s2a.tgi import CONNECT_TIMEOUT, Decoding, bearer, check_base_url, no_hub_traffic, timeouts

_CHOICES = ("auto", "none", "required")


def _tool_choice(choice: dict[str, Any] | str | bool, names: list[str]) -> dict[str, Any] | str:
    """LangChain's `tool_choice` as TGI reads it: "any" and `True` are "required", a name a function."""
    if choice is True or choice == "any":
        return "required"
    if isinstance(choice, str) and choice in _CHOICES:
        return choice
    name = choice if isinstance(choice, str) else (choice or {}).get("function", {}).get("name")
    if name not in names:
        msg = f"tool_choice {choice!r} names no bound tool; the tools are {', '.join(names) or 'none'}"
        raise ValueError(msg)
    return {"type": "function", "function": {"name": name}}


def _text_blocks(content: Any) -> Any:
    """A message's content without the blocks TGI's messages cannot hold.

    A `tool_use` block goes: the message's `tool_calls` carry the call.
    """
    if not isinstance(content, list):
        return content
    kept = [b for b in content if isinstance(b, str) or b.get("type") in {"text", "image_url"}]
    return [{"type": "text", "text": b} if isinstance(b, str) else b for b in kept]


class _TGIChatModel(ChatHuggingFace):
    """`ChatHuggingFace` with LangChain's tool and structured-output conventions, on TGI 3.

    langchain-huggingface 1.2 sends `tool_choice="any"` (LangChain's name for "required") as a
    function named "any", takes a `tool_choice` with one tool only, refuses pydantic schemas
    in `with_structured_output`, and sends content blocks (`tool_use`) that TGI's messages
    cannot hold. This subclass fixes those and nothing else.
    """

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = _tool_choice(tool_choice, [t["function"]["name"] for t in formatted])
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type[BaseModel] | None = None,
        *,
        method: str = "function_calling",
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        if method == "function_calling" and schema is not None:  # LangChain's own: a forced call, parsed
            return BaseChatModel.with_structured_output(self, schema, include_raw=include_raw, **kwargs)
        return super().with_structured_output(schema, method=method, include_raw=include_raw, **kwargs)  # type: ignore[arg-type]

    def _create_message_dicts(
        self, messages: list[BaseMessage], stop: list[str] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        dicts, params = super()._create_message_dicts(messages, stop)
        return [{**d, "content": _text_blocks(d.get("content"))} for d in dicts], params


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
    return _TGIChatModel(
        llm=endpoint,
        # TGI's chat route treats temperature=0 as greedy.
        temperature=settings.temperature,
        max_tokens=settings.max_new_tokens,
        stop_sequences=list(settings.stop) or None,
        model_kwargs={key: value for key, value in chat_only.items() if value is not None},
        # TGI sends usage after a stream's last chunk only when asked (stream_options).
        stream_usage=True,
    )
