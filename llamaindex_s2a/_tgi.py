"""`tgi_llm`: a LlamaIndex LLM for a text-generation-inference server, tool calling included."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from huggingface_hub import (
    ChatCompletionOutputFunctionDefinition,
    ChatCompletionOutputToolCall,
    ChatCompletionStreamOutput,
)
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json
from llama_index.llms.huggingface_api import HuggingFaceInferenceAPI
from pydantic import SecretStr

from s2a.adapter import redact
from s2a.tgi import CONNECT_TIMEOUT, NO_API_KEY, bearer, check_base_url, no_hub_traffic, read_info, timeouts

if TYPE_CHECKING:
    from llama_index.core.base.llms.types import ChatResponseAsyncGen, ChatResponseGen
    from llama_index.core.tools import BaseTool

logger = logging.getLogger(__name__)

_CHOICES = ("auto", "none", "required")


def _field(call: Any, name: str) -> Any:
    """A field of a tool call or of its function, whether an object or a dict (from saved memory)."""
    return call.get(name) if isinstance(call, dict) else getattr(call, name, None)


def _tgi_message(message: ChatMessage) -> dict[str, Any]:
    """A LlamaIndex message as TGI's `Message`, its tool calls and tool result ids kept."""
    body: dict[str, Any] = {"role": message.role.value, "content": message.content or ""}
    calls = message.additional_kwargs.get("tool_calls") or []
    if calls:
        body["tool_calls"] = [
            {
                "id": _field(call, "id"),
                "type": "function",
                "function": {
                    "name": _field(_field(call, "function"), "name"),
                    "arguments": _field(_field(call, "function"), "arguments"),
                },
            }
            for call in calls
        ]
    if message.role == MessageRole.TOOL and message.additional_kwargs.get("tool_call_id"):
        body["tool_call_id"] = message.additional_kwargs["tool_call_id"]
    return body


class _StreamedReply:
    """A streamed reply so far: its text and tool calls (a call's name, then its arguments in pieces)."""

    def __init__(self) -> None:
        self.text = ""
        self._calls: dict[int, tuple[str, str, str]] = {}  # index -> (id, name, arguments so far)

    def add(self, chunk: ChatCompletionStreamOutput) -> ChatResponse:
        """The reply after `chunk`, as LlamaIndex streams it: the whole so far, and the new text."""
        delta = chunk.choices[0].delta if chunk.choices else None
        content = (delta.content or "") if delta is not None else ""
        self.text += content
        for piece in (delta.tool_calls or []) if delta is not None else []:
            call_id, name, arguments = self._calls.get(piece.index, ("", "", ""))
            self._calls[piece.index] = (
                piece.id or call_id,
                piece.function.name or name,
                arguments + (piece.function.arguments or ""),
            )
        calls = [
            ChatCompletionOutputToolCall(
                id=call_id,
                type="function",
                function=ChatCompletionOutputFunctionDefinition(name=name, arguments=arguments),
            )
            for _, (call_id, name, arguments) in sorted(self._calls.items())
        ]
        extra = {"tool_calls": calls} if calls else {}
        message = ChatMessage(role=MessageRole.ASSISTANT, content=self.text, additional_kwargs=extra)
        return ChatResponse(message=message, delta=content, raw=chunk)


class _TGIInferenceAPI(HuggingFaceInferenceAPI):  # type: ignore[misc]  # untyped package
    """`HuggingFaceInferenceAPI` with tool calling as TGI 3 (and the local server) speak it.

    llama-index-llms-huggingface-api 0.8 reads TGI 2's shapes: it sends an assistant's call with
    its id as the function's name and drops a tool result's `tool_call_id`; it reads the
    arguments, a JSON string in TGI 3, as no arguments at all; it ignores `tool_choice`; and its
    streamed tool calls expect one delta per chunk where huggingface_hub gives a list. This
    subclass fixes those four and nothing else.
    """

    def _to_huggingface_messages(self, messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
        return [_tgi_message(m) for m in messages]

    def _prepare_chat_with_tools(  # noqa: PLR0917 (llama-index's signature, plus `tool_choice`)
        self,
        tools: list[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        prepared: dict[str, Any] = super()._prepare_chat_with_tools(
            tools, user_msg, chat_history, verbose, allow_parallel_tool_calls, tool_required, **kwargs
        )
        if isinstance(tool_choice, str) and tool_choice not in _CHOICES:  # a tool's name
            tool_choice = {"function": {"name": tool_choice}}
        if tool_choice is not None:
            prepared["tool_choice"] = tool_choice
        return prepared

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,  # noqa: ARG002 (llama-index's signature)
    ) -> list[ToolSelection]:
        calls = response.message.additional_kwargs.get("tool_calls") or []
        if not calls and error_on_no_tool_call:
            msg = "Expected at least one tool call, but the model called none."
            raise ValueError(msg)
        selections = []
        for call in calls:
            function = _field(call, "function")
            arguments = _field(function, "arguments")
            if isinstance(arguments, str):  # TGI 3 sends JSON text; mid-stream it is cut short
                arguments = parse_partial_json(arguments) if arguments.strip() else {}
            selections.append(
                ToolSelection(
                    tool_id=_field(call, "id") or "",
                    tool_name=_field(function, "name"),
                    tool_kwargs=arguments or {},
                )
            )
        return selections

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        if self.task != "conversational":
            text_stream: ChatResponseGen = super().stream_chat(messages, **kwargs)
            return text_stream
        chunks: Iterable[ChatCompletionStreamOutput] = self._sync_client.chat_completion(
            messages=self._to_huggingface_messages(messages), stream=True, **self._get_model_kwargs(**kwargs)
        )
        reply = _StreamedReply()
        return (reply.add(chunk) for chunk in chunks)

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        if self.task != "conversational":
            text_stream: ChatResponseAsyncGen = await super().astream_chat(messages, **kwargs)
            return text_stream
        chunks: AsyncIterable[ChatCompletionStreamOutput] = await self._async_client.chat_completion(
            messages=self._to_huggingface_messages(messages), stream=True, **self._get_model_kwargs(**kwargs)
        )

        async def gen() -> AsyncGenerator[ChatResponse]:
            reply = _StreamedReply()
            async for chunk in chunks:
                yield reply.add(chunk)

        return gen()


def tgi_llm(
    base_url: str,
    *,
    max_new_tokens: int = 512,
    temperature: float = 0.1,
    timeout: float = 120.0,
    connect_timeout: float = CONNECT_TIMEOUT,
    api_key: SecretStr | str | None = None,
) -> HuggingFaceInferenceAPI:
    """llama-index's `HuggingFaceInferenceAPI` for the TGI server at `base_url`.

    It asks the server's `/info` for the context window and sends nothing to the Hugging
    Face Hub. `timeout` bounds each read, `connect_timeout` the connection; `api_key` (TGI's
    `--api-key`) is sent as a bearer token and kept out of the LLM's repr. llama-index
    requires `temperature > 0`; the S2A postprocessor's own calls are greedy regardless.

    It calls tools (`FunctionAgent`, `llm.chat_with_tools`, plain and streamed) as TGI 3 and
    the local server do: the arguments come back as JSON text and are read as an object, and
    `tool_choice` ("auto", "none", "required" or a tool's name) is passed on.

    Raises:
        S2AConfigError: `base_url` is not an http(s) URL.
        ValueError: a timeout is not positive, or `api_key` is empty.

    """
    limits, token = timeouts(timeout, connect_timeout), bearer(api_key)
    no_hub_traffic()
    url = check_base_url(base_url)
    llm: HuggingFaceInferenceAPI = _TGIInferenceAPI(
        model=url,
        # Not "hf-inference": llama-index would then read /info in its constructor with no
        # timeout and without the key. A URL model ignores the provider for its calls.
        provider="auto",
        temperature=temperature,
        num_output=max_new_tokens,
        timeout=timeout,
        token=NO_API_KEY,  # never the locally saved Hub token
    )
    llm.is_function_calling_model = True  # the constructor refuses it; TGI calls tools since 2.0
    # The key goes on the clients, not in the `token` field, which the repr would show.
    for client in (llm._sync_client, llm._async_client):  # llama-index keeps no setter
        client.token = token
        client.timeout = limits
    try:
        info = read_info(url, token, limits)
        llm.context_window = int(info.get("max_input_tokens", llm.context_window))
    except (httpx.HTTPError, ValueError) as exc:  # llama-index's default window then stands
        logger.warning(
            "could not read %s/info (%s); context window %d", url, redact(str(exc)), llm.context_window
        )
    return llm
