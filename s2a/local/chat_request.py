"""TGI's chat request body, `ChatRequest`, with its messages, tools and tool choice (TGI 3.3.6).

The types follow router/src/lib.rs of TGI v3.3.6 (`ChatRequest`, `Message`, `Tool`,
`FunctionDefinition`, `ToolCall`, `ToolChoice`) and the OpenAPI document; what a request's tools
do to the generation is in tools.py. Rejections are `RequestError`s, as in protocol.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from s2a.local.protocol import INT32_MAX, INT64_MAX, Grammar, Parameters, RequestError, openai_parameters


class TextChunk(BaseModel):
    """A text part of a message's content."""

    model_config = ConfigDict(strict=True)

    type: Literal["text"]
    text: str


class ImageChunk(BaseModel):
    """An image part of a message's content (not supported by a text model)."""

    model_config = ConfigDict(strict=True)

    type: Literal["image_url"]
    image_url: dict[str, Any]


class FunctionDefinition(BaseModel):
    """TGI's `FunctionDefinition`: a function's name, description and JSON-schema arguments.

    As in TGI (lib.rs, `FunctionDefinition`: `#[serde(alias = "parameters")] arguments`), the
    schema comes as `arguments` or as OpenAI's `parameters`, and one of them is required. In an
    assistant message's tool call the same type carries the call's arguments instead.
    """

    model_config = ConfigDict(strict=True)

    description: str | None = None
    name: str
    arguments: Any = Field(validation_alias=AliasChoices("arguments", "parameters"))

    @model_validator(mode="before")
    @classmethod
    def _one_schema(cls, data: Any) -> Any:
        """Both names at once is serde's "duplicate field" in TGI, a 422."""
        if isinstance(data, dict) and "arguments" in data and "parameters" in data:
            msg = "a function has `parameters` or `arguments` (the same field), not both"
            raise ValueError(msg)
        return data


class Tool(BaseModel):
    """TGI's `Tool`: `{"type": "function", "function": FunctionDefinition}`."""

    model_config = ConfigDict(strict=True)

    type: str
    function: FunctionDefinition


class ToolCall(BaseModel):
    """TGI's `ToolCall`, as an agent sends a model's call back in an assistant message."""

    model_config = ConfigDict(strict=True)

    id: str
    type: str
    function: FunctionDefinition


class Message(BaseModel):
    """TGI's chat `Message`: `content`, or an assistant's `tool_calls`, or both."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: str
    content: str | list[TextChunk | ImageChunk] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's content as plain text ("" for a message that only calls tools)."""
        if self.content is None:
            if self.tool_calls is not None:
                return ""
            msg = f"a `{self.role}` message has no `content` (and no `tool_calls`)"
            raise RequestError(msg)
        if isinstance(self.content, str):
            return self.content
        if any(isinstance(chunk, ImageChunk) for chunk in self.content):
            msg = "image inputs are not supported by this server's text model"
            raise RequestError(msg)
        return "".join(chunk.text for chunk in self.content if isinstance(chunk, TextChunk))


class StreamOptions(BaseModel):
    """TGI's `StreamOptions`."""

    model_config = ConfigDict(strict=True)

    include_usage: bool = False


class FunctionName(BaseModel):
    """TGI's `FunctionName`."""

    model_config = ConfigDict(strict=True)

    name: str


class ToolChoiceFunction(BaseModel):
    """The object form of TGI's `ToolChoice`: call this function (`type` may be left out)."""

    model_config = ConfigDict(strict=True)

    type: Literal["function"] | None = None
    function: FunctionName


class ChatRequest(BaseModel):
    """TGI's `ChatRequest`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    messages: list[Message]
    model: str | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: list[float] | dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=INT32_MAX)
    max_tokens: int | None = Field(default=None, ge=0, le=INT32_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=0, le=INT32_MAX)
    """OpenAI's newer name for `max_tokens` (not in TGI 3.3.6), which OpenAI clients such as
    langchain-openai send; vLLM, SGLang and llama.cpp's server take it too."""
    n: int | None = Field(default=None, ge=0, le=INT32_MAX)
    response_format: Grammar | None = None
    seed: int | None = Field(default=None, ge=0, le=INT64_MAX)  # TGI's is unsigned
    stop: list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    tools: list[Tool] | None = None
    tool_choice: str | ToolChoiceFunction | None = None
    """"auto", "none", "required", or a function: TGI also reads any other string as a function's name."""
    tool_prompt: str | None = None


def chat_parameters(request: ChatRequest, tool_grammar: dict[str, Any] | None = None) -> Parameters:
    """The generation parameters a chat request stands for (TGI's mapping).

    Args:
        request: the chat request.
        tool_grammar: the JSON schema its tools constrain the reply to (tools.py), if any;
            TGI sends it as a `json` grammar in place of `response_format`.

    """
    if request.n not in (None, 1):
        msg = f"`n` must be 1 on this server. Given: {request.n}"
        raise RequestError(msg)
    if request.logit_bias:
        msg = "`logit_bias` is not supported by this server"
        raise RequestError(msg)
    limits = {request.max_tokens, request.max_completion_tokens} - {None}
    if len(limits) > 1:
        msg = (
            "`max_tokens` and `max_completion_tokens` name the same limit; give one, or the same value."
            f" Given: {request.max_tokens} and {request.max_completion_tokens}"
        )
        raise RequestError(msg)
    if request.presence_penalty is not None and not -2.0 <= request.presence_penalty <= 2.0:
        msg = "`presence_penalty` must be >= -2.0 and <= 2.0"
        raise RequestError(msg)
    grammar = request.response_format
    if tool_grammar is not None:
        grammar = Grammar(type="json", value=tool_grammar)
    return openai_parameters(
        temperature=request.temperature,
        top_p=request.top_p,
        frequency_penalty=request.frequency_penalty,
        max_tokens=next(iter(limits), None),
        seed=request.seed,
        stop=request.stop,
        grammar=grammar,
        top_n_tokens=request.top_logprobs if request.logprobs else None,
    )
