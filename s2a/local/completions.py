"""`POST /v1/completions`: TGI's OpenAI-style text completion route, plain and streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from s2a.local.engine import Outcome, Sampling
from s2a.local.protocol import (
    INT32_MAX,
    INT64_MAX,
    Parameters,
    RequestError,
    check_length,
    openai_envelope,
    openai_parameters,
    openai_usage,
    sampling,
)
from s2a.local.sse import DONE, event

if TYPE_CHECKING:
    from s2a.local.runtime import Release, Runtime
    from s2a.local.server import ServerSettings

_FINISH = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}


class CompletionRequest(BaseModel):
    """TGI's `CompletionRequest`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str | list[str]
    model: str | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    max_tokens: int | None = Field(default=None, ge=0, le=INT32_MAX)
    seed: int | None = Field(default=None, ge=0, le=INT64_MAX)
    stop: list[str] | None = None
    stream: bool = False
    suffix: str | None = None
    temperature: float | None = None
    top_p: float | None = None


def completion_parameters(request: CompletionRequest) -> tuple[str, Parameters]:
    """The one prompt and the generation parameters of a completion request (TGI's mapping)."""
    prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
    if len(prompts) != 1:
        msg = f"this server completes one prompt per request (max_client_batch_size 1). Given: {len(prompts)}"
        raise RequestError(msg)
    if request.suffix is not None:
        msg = "`suffix` is not supported by this server"
        raise RequestError(msg)
    return prompts[0], openai_parameters(
        temperature=request.temperature,
        top_p=request.top_p,
        frequency_penalty=request.frequency_penalty,
        max_tokens=request.max_tokens,
        seed=request.seed,
        stop=request.stop,
        repetition_penalty=request.repetition_penalty,
    )


CompletionHandler = Callable[[CompletionRequest], Awaitable[Any]]


def add_completions_route(app: FastAPI, runtime: Runtime, settings: ServerSettings) -> CompletionHandler:
    """Register the completion route on `app`; return its handler (`/invocations` reuses it)."""

    def envelope(kind: str) -> dict[str, Any]:
        return openai_envelope(kind, settings.model_id)

    def prepare(body: CompletionRequest) -> tuple[list[int], Sampling]:
        engine = runtime.ready_engine()
        text, params = completion_parameters(body)
        prompt = engine.tokenize(text) if text else []
        budget = check_length(
            len(prompt), params.max_new_tokens, settings.max_input_tokens, settings.max_total_tokens
        )
        settings_ = sampling(params, budget)
        engine.check(settings_)
        return prompt, settings_

    def stream(prompt: list[int], settings_: Sampling, release: Release) -> Response:
        def chunk(text: str, finish: str) -> bytes:
            # TGI's chunks carry "" until the last one: the document's finish_reason is a string.
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            return event({**envelope("text_completion"), "choices": [choice]})

        async def events() -> AsyncIterator[bytes]:
            outcome = Outcome()
            try:
                async for info in runtime.stream(prompt, settings_, outcome):
                    if not info.special:
                        yield chunk(info.text, "")
                yield chunk("", _FINISH[outcome.finish_reason])
                yield DONE
            except Exception as exc:
                yield runtime.failure_event(exc)

        return runtime.streaming(events(), release)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> Any:
        release, (prompt, settings_) = await runtime.admit_then(prepare, body)
        if body.stream:
            return stream(prompt, settings_, release)
        try:
            outcome = await runtime.complete(prompt, settings_)
        finally:
            release()
        choice = {
            "index": 0,
            "text": outcome.generated_text,
            "logprobs": None,
            "finish_reason": _FINISH[outcome.finish_reason],
        }
        return {
            **envelope("text_completion"),
            "choices": [choice],
            "usage": openai_usage(len(prompt), outcome),
        }

    return completions
