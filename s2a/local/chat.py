"""`POST /v1/chat/completions`: TGI's OpenAI-style chat route, plain and streaming."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from s2a.local.engine import Outcome, Sampling, TokenInfo
from s2a.local.protocol import (
    ChatRequest,
    RequestError,
    chat_parameters,
    check_length,
    openai_envelope,
    sampling,
)
from s2a.local.sse import DONE, event

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


def _usage(n_prompt: int, outcome: Outcome) -> dict[str, int]:
    generated = len(outcome.tokens)
    return {"prompt_tokens": n_prompt, "completion_tokens": generated, "total_tokens": n_prompt + generated}


ChatHandler = Callable[[ChatRequest], Awaitable[Any]]


def add_chat_route(app: FastAPI, runtime: Runtime, settings: ServerSettings) -> ChatHandler:
    """Register the chat routes on `app`; return the chat handler (`/invocations` reuses it)."""

    def envelope(kind: str) -> dict[str, Any]:
        return openai_envelope(kind, settings.model_id)

    def template(body: ChatRequest) -> tuple[str, list[int]]:
        engine = runtime.ready_engine()
        if not body.messages:
            msg = "`messages` cannot be empty"
            raise RequestError(msg)
        return engine.chat_prompt([{"role": m.role, "content": m.text()} for m in body.messages])

    def prepare(body: ChatRequest) -> tuple[list[int], Sampling]:
        engine = runtime.ready_engine()
        _, prompt = template(body)
        params = chat_parameters(body)
        budget = check_length(
            len(prompt), params.max_new_tokens, settings.max_input_tokens, settings.max_total_tokens
        )
        settings_ = replace(sampling(params, budget), presence_penalty=body.presence_penalty or 0.0)
        engine.check(settings_)
        return prompt, settings_

    async def complete(
        body: ChatRequest, prompt: list[int], settings_: Sampling, release: Release
    ) -> dict[str, Any]:
        try:
            outcome = await runtime.complete(prompt, settings_)
        finally:
            release()
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": outcome.generated_text},
            "logprobs": {"content": [_logprob(t) for t in outcome.tokens if not t.special]}
            if body.logprobs
            else None,
            "finish_reason": _FINISH[outcome.finish_reason],
        }
        return {**envelope("chat.completion"), "choices": [choice], "usage": _usage(len(prompt), outcome)}

    def stream(body: ChatRequest, prompt: list[int], settings_: Sampling, release: Release) -> Response:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def chunk(delta: dict[str, Any], finish: str | None, info: TokenInfo | None) -> bytes:
            logprobs = {"content": [_logprob(info)]} if body.logprobs and info is not None else None
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            return event({**envelope("chat.completion.chunk"), "choices": [choice], "usage": None})

        async def events() -> AsyncIterator[bytes]:
            outcome = Outcome()
            try:
                async for info in runtime.stream(prompt, settings_, outcome):
                    if not info.special:
                        yield chunk({"role": "assistant", "content": info.text}, None, info)
                yield chunk({"role": "assistant", "content": ""}, _FINISH[outcome.finish_reason], None)
                if include_usage:
                    usage = {
                        **envelope("chat.completion.chunk"),
                        "choices": [],
                        "usage": _usage(len(prompt), outcome),
                    }
                    yield event(usage)
                yield DONE
            except Exception as exc:
                yield runtime.failure_event(exc)

        return runtime.streaming(events(), release)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> Any:
        release, (prompt, settings_) = await runtime.admit_then(prepare, body)
        if body.stream:
            return stream(body, prompt, settings_, release)
        return await complete(body, prompt, settings_, release)

    @app.post("/chat_tokenize")
    async def chat_tokenize(body: ChatRequest) -> dict[str, Any]:
        """The templated prompt and its tokens, as the chat route would send them to the model."""

        def tokens() -> tuple[str, list[tuple[int, str, int, int]]]:
            text, _ = template(body)
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
