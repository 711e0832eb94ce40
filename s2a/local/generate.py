"""TGI's generate routes: `POST /generate`, `POST /generate_stream` and the compat `POST /`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import Response

from s2a.local.engine import Outcome, Sampling, TokenInfo
from s2a.local.protocol import GenerateRequest, check_length, sampling
from s2a.local.sse import event

if TYPE_CHECKING:
    from s2a.local.runtime import Runtime
    from s2a.local.server import ServerSettings

logger = logging.getLogger(__name__)


def _token(info: TokenInfo) -> dict[str, Any]:
    return {"id": info.id, "text": info.text, "logprob": info.logprob, "special": info.special}


def _top(info: TokenInfo) -> list[dict[str, Any]]:
    return [{"id": i, "text": t, "logprob": lp, "special": s} for i, t, lp, s in info.top]


async def _numbered(items: AsyncIterator[TokenInfo]) -> AsyncIterator[tuple[int, TokenInfo]]:
    index = 0
    async for item in items:
        index += 1
        yield index, item


GenerateHandler = Callable[[GenerateRequest], Awaitable[Any]]


def add_generate_routes(app: FastAPI, runtime: Runtime, settings: ServerSettings) -> GenerateHandler:
    """Register the generate routes on `app`; return the handler `/invocations` uses.

    That handler answers as `/generate` and `/generate_stream` do: one object, not the compat
    route's one-element list (TGI's document gives `GenerateResponse` for `/invocations`).
    """

    def prepare(body: GenerateRequest) -> tuple[list[int], Sampling]:
        engine = runtime.ready_engine()
        params = body.parameters
        prompt = engine.tokenize(body.inputs) if body.inputs else []
        if params.truncate and params.truncate < len(prompt):  # TGI keeps the last `truncate` tokens
            prompt = prompt[-params.truncate :]
        budget = check_length(
            len(prompt), params.max_new_tokens, settings.max_input_tokens, settings.max_total_tokens
        )
        settings_ = sampling(params, budget)
        engine.check(settings_)
        return prompt, settings_

    async def generate_json(body: GenerateRequest) -> dict[str, Any]:
        release, (prompt, settings_) = await runtime.admit_then(prepare, body)
        try:
            outcome = await runtime.complete(prompt, settings_)
        finally:
            release()
        text = (body.inputs if body.parameters.return_full_text else "") + outcome.generated_text
        response: dict[str, Any] = {"generated_text": text}
        if body.parameters.details:
            details: dict[str, Any] = {
                "finish_reason": outcome.finish_reason,
                "generated_tokens": len(outcome.tokens),
                "seed": outcome.seed,
                "prefill": [],
                "tokens": [_token(t) for t in outcome.tokens],
            }
            if settings_.top_n_tokens:
                details["top_tokens"] = [_top(t) for t in outcome.tokens]
            response["details"] = details
        return response

    async def generate_sse(body: GenerateRequest) -> Response:
        release, (prompt, settings_) = await runtime.admit_then(prepare, body)

        async def events() -> AsyncIterator[bytes]:
            outcome = Outcome()
            try:
                # Each event goes out one token late: only after the engine stops is it
                # known which one is last and must carry `generated_text` and `details`.
                last: dict[str, Any] | None = None
                async for index, info in _numbered(runtime.stream(prompt, settings_, outcome)):
                    if last is not None:
                        yield event(last)
                    last = {"index": index, "token": _token(info)}
                    if settings_.top_n_tokens:
                        last["top_tokens"] = _top(info)
                    last.update(generated_text=None, details=None)
                if last is not None:
                    prefix = body.inputs if body.parameters.return_full_text else ""
                    last["generated_text"] = prefix + outcome.generated_text
                    if body.parameters.details:
                        last["details"] = {
                            "finish_reason": outcome.finish_reason,
                            "generated_tokens": len(outcome.tokens),
                            "seed": outcome.seed,
                            "input_length": len(prompt),
                        }
                    yield event(last)
            except Exception as exc:
                yield runtime.failure_event(exc)

        return runtime.streaming(events(), release)

    @app.post("/generate")
    async def generate(body: GenerateRequest) -> dict[str, Any]:
        return await generate_json(body)

    @app.post("/generate_stream")
    async def generate_stream(body: GenerateRequest) -> Response:
        return await generate_sse(body)

    @app.post("/")
    async def compat_generate(body: GenerateRequest) -> Any:
        if body.stream:
            return await generate_sse(body)
        return [await generate_json(body)]

    async def invocation(body: GenerateRequest) -> Any:
        if body.stream:
            return await generate_sse(body)
        return await generate_json(body)

    return invocation
