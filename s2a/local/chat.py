"""`POST /v1/chat/completions`: TGI's OpenAI-style chat route, plain and streaming, with tools.

With `tools`, the reply is constrained to a call of one of them (tools.py has how, after TGI);
a plain reply comes back as `tool_calls`, a stream as `tool_calls` deltas.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from s2a.local import tools
from s2a.local.chat_request import ChatRequest, chat_parameters
from s2a.local.engine import InputError, Outcome, Sampling, TokenInfo
from s2a.local.protocol import RequestError, check_length, openai_envelope, openai_usage, sampling
from s2a.local.sse import DONE, event
from s2a.local.tool_calls import NO_TOOL, ToolDelta, ToolStream, next_tool_call_id, parse_reply, tool_calls

if TYPE_CHECKING:
    from s2a.local.runtime import Release, Runtime
    from s2a.local.server import ServerSettings

logger = logging.getLogger(__name__)

_FINISH = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}


def _logprob(info: TokenInfo) -> dict[str, Any]:
    return {
        "token": info.text,
        "logprob": info.logprob,
        "top_logprobs": [{"token": text, "logprob": lp} for _, text, lp, _ in info.top],
    }


@dataclass(frozen=True)
class _Prepared:
    """A chat request ready for the engine."""

    prompt: list[int]
    sampling: Sampling
    tools: bool
    """Whether the reply is constrained to a tool call (TGI's `using_tools`)."""


ChatHandler = Callable[[ChatRequest], Awaitable[Any]]


class _Chat:
    """The chat route's work: prompt, settings, generation, and the reply's shape."""

    def __init__(self, runtime: Runtime, settings: ServerSettings) -> None:
        self.runtime, self.settings = runtime, settings

    def envelope(self, kind: str) -> dict[str, Any]:
        return openai_envelope(kind, self.settings.model_id)

    def template(self, body: ChatRequest, tool_plan: tools.ToolPlan | None) -> tuple[str, list[int]]:
        """The prompt through the model's template, with the tools as TGI gives them (tools.py)."""
        engine = self.runtime.ready_engine()
        if not body.messages:
            msg = "`messages` cannot be empty"
            raise RequestError(msg)
        shows_tools = engine.template_renders_tools
        messages = tools.template_messages(
            body.messages,
            renders_tool_calls=engine.template_renders_tool_calls,
            suffix=tools.prompt_suffix(tool_plan, shows_tools) if tool_plan is not None else "",
        )
        shown = tools.template_tools(tool_plan.tools) if tool_plan is not None and shows_tools else None
        try:
            return engine.chat_prompt(messages, shown)
        except InputError as exc:
            if shown is None and not any(m.tool_calls or m.tool_call_id for m in body.messages):
                raise
            msg = f"the model's chat template cannot render these tools or tool messages: {exc}"
            raise RequestError(msg, "tool_error") from exc

    def prepare(self, body: ChatRequest, with_tools: bool = True) -> _Prepared:
        """Validate and template a request (on a worker thread: the engine's calls block)."""
        engine = self.runtime.ready_engine()
        tool_plan = tools.plan(body) if with_tools else None
        _, prompt = self.template(body, tool_plan)
        params = chat_parameters(body, tool_plan.grammar if tool_plan is not None else None)
        limits = self.settings
        budget = check_length(
            len(prompt), params.max_new_tokens, limits.max_input_tokens, limits.max_total_tokens
        )
        settings_ = replace(sampling(params, budget), presence_penalty=body.presence_penalty or 0.0)
        try:
            engine.check(settings_)
        except InputError as exc:
            if tool_plan is None:
                raise
            msg = f"the tools' parameters cannot be turned into a grammar: {exc}"
            raise RequestError(msg, "tool_error") from exc
        return _Prepared(prompt, settings_, tool_plan is not None)

    async def generate(
        self, body: ChatRequest, prepared: _Prepared
    ) -> tuple[_Prepared, Outcome, dict[str, Any]]:
        """The reply's message; a `no_tool` call is answered again without tools (server.rs, NoTool)."""
        outcome = await self.runtime.complete(prepared.prompt, prepared.sampling)
        if not prepared.tools:
            return prepared, outcome, {"role": "assistant", "content": outcome.generated_text}
        call = parse_reply(outcome.generated_text, outcome.finish_reason)
        if call.name != NO_TOOL:
            return prepared, outcome, {"role": "assistant", "tool_calls": tool_calls(call)}
        return await self.generate(body, await run_in_threadpool(self.prepare, body, False))

    async def complete(self, body: ChatRequest, prepared: _Prepared, release: Release) -> dict[str, Any]:
        try:
            prepared, outcome, message = await self.generate(body, prepared)
        finally:
            release()
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "logprobs": {"content": [_logprob(t) for t in outcome.tokens if not t.special]}
            if body.logprobs
            else None,
            "finish_reason": _FINISH[outcome.finish_reason],  # "stop" for a call too, as in TGI
        }
        usage = openai_usage(len(prepared.prompt), outcome)
        return {**self.envelope("chat.completion"), "choices": [choice], "usage": usage}

    def stream(self, body: ChatRequest, prepared: _Prepared, release: Release) -> Response:
        return self.runtime.streaming(_ChatStream(self, body, prepared).events(), release)


class _ChatStream:
    """One streamed chat reply: text deltas, or a call's deltas (TGI's `ToolCallDelta`)."""

    def __init__(self, chat: _Chat, body: ChatRequest, prepared: _Prepared) -> None:
        self.chat, self.body, self.prepared = chat, body, prepared
        self.call_id = next_tool_call_id(body.messages) if prepared.tools else ""

    def chunk(self, delta: dict[str, Any], finish: str | None, info: TokenInfo | None) -> bytes:
        logprobs = {"content": [_logprob(info)]} if self.body.logprobs and info is not None else None
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return event({**self.chat.envelope("chat.completion.chunk"), "choices": [choice], "usage": None})

    def call_chunk(
        self, name: str | None, arguments: str, finish: str | None, info: TokenInfo | None
    ) -> bytes:
        """TGI's `ToolCallDelta`: one call (index 0), its name in the first chunk only."""
        function = {"name": name, "arguments": arguments}
        call = {"index": 0, "id": self.call_id, "type": "function", "function": function}
        return self.chunk({"role": "assistant", "tool_calls": [call]}, finish, info)

    def tokens(self, prepared: _Prepared, outcome: Outcome) -> AsyncGenerator[TokenInfo, None]:
        return self.chat.runtime.stream(prepared.prompt, prepared.sampling, outcome)

    async def text_chunks(self, prepared: _Prepared, outcome: Outcome) -> AsyncGenerator[bytes, None]:
        async with contextlib.aclosing(self.tokens(prepared, outcome)) as tokens:
            async for info in tokens:
                if not info.special:
                    yield self.chunk({"role": "assistant", "content": info.text}, None, info)
        yield self.chunk({"role": "assistant", "content": ""}, _FINISH[outcome.finish_reason], None)

    async def call_chunks(self, outcome: Outcome, state: ToolStream) -> AsyncGenerator[bytes, None]:
        """The call's chunks; none if the model picks `no_tool` (its generation is stopped)."""
        async with contextlib.aclosing(self.tokens(self.prepared, outcome)) as tokens:
            async for info in tokens:
                delta = None if info.special else state.push(info.text)
                if delta == "no_tool":
                    return
                if isinstance(delta, ToolDelta):
                    yield self.call_chunk(delta.name, delta.arguments, None, info)
        last = state.finish()
        if last == "no_tool":
            return
        if isinstance(last, ToolDelta):
            yield self.call_chunk(last.name, last.arguments, None, None)
        # TGI sends no finish_reason after a call (its end-of-text token reads as no event);
        # here the last chunk carries it, with empty arguments, or as text if no call began.
        finish = _FINISH[outcome.finish_reason]
        if state.started:
            yield self.call_chunk(None, "", finish, None)
        else:
            yield self.chunk({"role": "assistant", "content": ""}, finish, None)

    async def events(self) -> AsyncGenerator[bytes, None]:
        current, outcome = self.prepared, Outcome()
        try:
            if current.tools:
                state = ToolStream()
                async with contextlib.aclosing(self.call_chunks(outcome, state)) as chunks:
                    async for item in chunks:
                        yield item
                if state.chose_no_tool:  # TGI starts again without the tools (server.rs, NoTool)
                    current = await run_in_threadpool(self.chat.prepare, self.body, False)
                    outcome = Outcome()
            if not current.tools:
                async with contextlib.aclosing(self.text_chunks(current, outcome)) as chunks:
                    async for item in chunks:
                        yield item
            if self.body.stream_options and self.body.stream_options.include_usage:
                usage = openai_usage(len(current.prompt), outcome)
                yield event({**self.chat.envelope("chat.completion.chunk"), "choices": [], "usage": usage})
            yield DONE
        except Exception as exc:
            yield self.chat.runtime.failure_event(exc)


def add_chat_route(app: FastAPI, runtime: Runtime, settings: ServerSettings) -> ChatHandler:
    """Register the chat routes on `app`; return the chat handler (`/invocations` reuses it)."""
    chat = _Chat(runtime, settings)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> Any:
        release, prepared = await runtime.admit_then(chat.prepare, body)
        if body.stream:
            return chat.stream(body, prepared, release)
        return await chat.complete(body, prepared, release)

    @app.post("/chat_tokenize")
    async def chat_tokenize(body: ChatRequest) -> dict[str, Any]:
        """The templated prompt and its tokens, as the chat route would send them (tools too)."""

        def tokens() -> tuple[str, list[tuple[int, str, int, int]]]:
            text, _ = chat.template(body, tools.plan(body))
            return text, runtime.ready_engine().offsets(text)

        text, offsets = await run_in_threadpool(tokens)
        return {
            "templated_text": text,
            "tokenize_response": [
                {"id": token, "text": piece, "start": start, "stop": stop}
                for token, piece, start, stop in offsets
            ],
        }

    return chat_completions
