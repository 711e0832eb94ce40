"""A server that speaks text-generation-inference's HTTP API (TGI 3.3.6) over a local model.

Routes: `POST /`, `/generate`, `/generate_stream`, `/v1/chat/completions`, `/v1/completions`,
`/tokenize`, `/chat_tokenize`, `/invocations`; `GET /info`, `/health`, `/metrics`, `/v1/models`.
Streams are framed as TGI's clients read them (`data: {json}` per event; the chat and completion
streams end with `data: [DONE]`; see sse.py). Errors are `{"error", "error_type"}`.
With an API key, every route but `GET /health` needs `Authorization: Bearer <key>` (guard.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from s2a.local.chat import add_chat_route
from s2a.local.chat_request import ChatRequest
from s2a.local.completions import CompletionRequest, add_completions_route
from s2a.local.engine import EngineLike, InputError
from s2a.local.generate import add_generate_routes
from s2a.local.guard import DEFAULT_PAYLOAD_LIMIT, RequestGuard
from s2a.local.protocol import GenerateRequest, RequestError
from s2a.local.runtime import Runtime
from s2a.local.sse import event

logger = logging.getLogger(__name__)

API_VERSION = "3.3.6"
_STATUS = {"validation": 422, "tool_error": 422, "overloaded": 429, "unhealthy": 503, "generation": 424}


@dataclass(frozen=True)
class ServerSettings:
    """Limits and identity of the local server (TGI's launcher names)."""

    model_id: str
    model_sha: str | None = None
    max_concurrent_requests: int = 128
    max_input_tokens: int = 7168
    max_total_tokens: int = 8192
    api_key: SecretStr | None = None
    """Bearer key every route but `GET /health` requires; None serves without one."""
    payload_limit: int = DEFAULT_PAYLOAD_LIMIT
    """Largest accepted request body, in bytes (413 beyond)."""
    max_batch_size: int = 1
    """Requests the engine decodes together (reported in /info as `max_batch_size`)."""


def error_response(message: str, error_type: str, *, stream: bool = False) -> Response:
    body = {"error": message, "error_type": error_type}
    status = _STATUS.get(error_type, 500)
    if stream:  # TGI answers stream routes' errors as an event, with the error status
        return Response(event(body), status_code=status, media_type="text/event-stream")
    return JSONResponse(body, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


def create_app(settings: ServerSettings, load: Callable[[], EngineLike]) -> FastAPI:
    """The ASGI app. `load` builds the engine; it runs in a thread while `/health` says 503."""
    runtime = Runtime(settings.max_concurrent_requests)

    def load_in_background() -> None:
        try:
            runtime.set_engine(load())
        except Exception as exc:
            logger.exception("model failed to load")
            runtime.load_error = f"model failed to load: {exc}"

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=load_in_background, name="s2a-model-loader", daemon=True).start()
        yield

    app = FastAPI(
        title="s2a local TGI-compatible server", version=API_VERSION, lifespan=lifespan, docs_url=None
    )
    app.state.runtime = runtime
    app.add_middleware(RequestGuard, api_key=settings.api_key, payload_limit=settings.payload_limit)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(
            _validation_message(exc), "validation", stream=request.url.path == "/generate_stream"
        )

    @app.exception_handler(RequestError)
    async def rejected(request: Request, exc: RequestError) -> Response:
        if exc.error_type == "validation":  # an admitted request refused (TGI counts these too)
            runtime.metrics.failures.labels(err="validation").inc()
        return error_response(str(exc), exc.error_type, stream=request.url.path == "/generate_stream")

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> Response:
        runtime.metrics.failures.labels(err="validation").inc()
        return error_response(str(exc), "validation", stream=request.url.path == "/generate_stream")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": not UTF-8, so not JSON
            message = "Input validation error: the request body is not valid UTF-8 JSON"
            return error_response(message, "validation", stream=request.url.path == "/generate_stream")
        return JSONResponse({"error": str(exc.detail), "error_type": "http"}, status_code=exc.status_code)

    generate = add_generate_routes(app, runtime, settings)
    chat = add_chat_route(app, runtime, settings)
    complete = add_completions_route(app, runtime, settings)
    started = int(time.time())

    @app.post("/invocations")
    async def invocations(request: Request) -> Any:
        """SageMaker's route: a chat, completion or generate request, told apart by its fields."""
        try:
            body = json.loads(await request.body())
        except ValueError:
            message = "Input validation error: the request body is not valid UTF-8 JSON"
            return error_response(message, "validation")
        kind = "messages" if isinstance(body, dict) and "messages" in body else None
        kind = kind or ("prompt" if isinstance(body, dict) and "prompt" in body else "inputs")
        try:
            if kind == "messages":
                return await chat(ChatRequest.model_validate(body))
            if kind == "prompt":
                return await complete(CompletionRequest.model_validate(body))
            return await generate(GenerateRequest.model_validate(body))
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        """The served model, in OpenAI's list shape with the model's own fields beside it.

        TGI's document gives one `ModelInfo`; OpenAI clients (`client.models.list()`) read a
        list under `data`. This answer is both.
        """
        model = {"id": settings.model_id, "object": "model", "created": started, "owned_by": "s2a"}
        return {**model, "object": "list", "data": [model]}

    @app.post("/tokenize")
    async def tokenize(body: GenerateRequest) -> list[dict[str, Any]]:
        engine = runtime.ready_engine()
        offsets = await run_in_threadpool(engine.offsets, body.inputs)
        return [
            {"id": token, "text": text, "start": start, "stop": stop} for token, text, start, stop in offsets
        ]

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {
            "model_id": settings.model_id,
            "model_sha": settings.model_sha,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": settings.max_concurrent_requests,
            "max_best_of": 1,
            "max_stop_sequences": 4,
            "max_input_tokens": settings.max_input_tokens,
            "max_total_tokens": settings.max_total_tokens,
            "validation_workers": 1,
            "max_client_batch_size": 1,
            "max_batch_size": settings.max_batch_size,
            "router": "s2a-local (llama.cpp server, xllamacpp)",
            "version": API_VERSION,
            "sha": None,
            "docker_label": None,
        }

    @app.get("/health")
    async def health() -> Response:
        if runtime.engine is None:
            return error_response(runtime.load_error or "Model is loading", "unhealthy")
        return Response(status_code=200)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
