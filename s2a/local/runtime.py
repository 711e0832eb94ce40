"""Admission, metrics and the thread bridge between the event loop and the engine.

The engine batches and queues by itself (llama.cpp decodes `slots` requests together and
queues the rest in arrival order); the runtime only refuses what is beyond
`--max-concurrent-requests` and runs each generation on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from s2a.local.engine import EngineLike, OnToken, Outcome, Sampling, TokenInfo
from s2a.local.protocol import RequestError
from s2a.local.sse import event

logger = logging.getLogger(__name__)

Release = Callable[[], None]
"""Ends an admission; calling it again does nothing."""
_Body = TypeVar("_Body")
_Prepared = TypeVar("_Prepared")


class OverloadedError(RequestError):
    """More requests are in flight than `--max-concurrent-requests` allows."""

    def __init__(self) -> None:
        super().__init__("Model is overloaded", "overloaded")


class NotReadyError(RequestError):
    """The model is still loading, or failed to load."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "unhealthy")


@dataclass
class Metrics:
    """Prometheus metrics named as TGI names them."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("tgi_request_count", "Requests received", registry=r)
        self.successes = Counter("tgi_request_success", "Requests answered", registry=r)
        self.failures = Counter("tgi_request_failure", "Requests failed", ["err"], registry=r)
        self.duration = Histogram("tgi_request_duration", "Request duration (s)", registry=r)
        self.input_length = Histogram(
            "tgi_request_input_length", "Input tokens", buckets=(16, 64, 256, 1024, 4096, 16384), registry=r
        )
        self.generated = Histogram(
            "tgi_request_generated_tokens", "Generated tokens", buckets=(1, 8, 32, 128, 512, 2048), registry=r
        )
        self.prompt_tokens = Counter("s2a_prompt_tokens", "Prompt tokens of answered requests", registry=r)
        self.cached_tokens = Counter(
            "s2a_prompt_cached_tokens", "Prompt tokens taken from the prefix cache, not prefilled", registry=r
        )
        self.queue = Gauge("tgi_queue_size", "Requests waiting for a slot", registry=r)
        self.batch = Gauge("tgi_batch_current_size", "Requests being generated", registry=r)
        self.batch_max = Gauge("tgi_batch_max_size", "Requests decoded together at most", registry=r)


class _AdmittedStream(StreamingResponse):
    def __init__(self, events: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        super().__init__(events, media_type="text/event-stream")
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


class Runtime:
    """Holds the engine once loaded; admits requests and runs each generation on its own thread."""

    def __init__(self, max_concurrent_requests: int) -> None:
        self.max_concurrent_requests = max_concurrent_requests
        self.engine: EngineLike | None = None
        self.load_error: str | None = None
        self.metrics = Metrics()
        self._in_flight = 0
        self._generating = 0
        # One thread per admitted generation: each blocks in the engine until its reply is done.
        self._threads = ThreadPoolExecutor(max_concurrent_requests, thread_name_prefix="s2a-generate")

    def set_engine(self, engine: EngineLike) -> None:
        """The engine is loaded: serve with it."""
        self.metrics.batch_max.set(engine.slots)
        self.engine = engine

    def close(self) -> None:
        """Stop the engine; requests after this get 503. The owner of the app calls it when done."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet answered."""
        return self._in_flight

    def ready_engine(self) -> EngineLike:
        """The engine, or `NotReadyError` while it loads."""
        if self.engine is None:
            raise NotReadyError(self.load_error or "Model is loading")
        return self.engine

    def admit(self) -> Callable[[], None]:
        """Count a request in flight, or refuse it with 429; return its (idempotent) release."""
        if self._in_flight >= self.max_concurrent_requests:
            self.metrics.failures.labels(err="overloaded").inc()
            raise OverloadedError
        self._in_flight += 1
        self.metrics.requests.inc()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight -= 1

        return release

    def _generation_failed(self, exc: Exception) -> str:
        """Log and count a failed generation; the message the client gets."""
        logger.error("generation failed", exc_info=exc)
        self.metrics.failures.labels(err="generation").inc()
        return f"Request failed during generation: {exc}"

    def failure_event(self, exc: Exception) -> bytes:
        """The error event for a generation that failed after its stream began (status is 200 by then)."""
        return event({"error": self._generation_failed(exc), "error_type": "generation"})

    async def admit_then(
        self, prepare: Callable[[_Body], _Prepared], body: _Body
    ) -> tuple[Release, _Prepared]:
        """Admit a request (429 beyond the limit, before any work, as TGI does), then `prepare` it.

        `prepare` runs on a worker thread: templating and tokenizing are calls to the engine.
        Returns the admission's release with what `prepare` returned; a failed `prepare`
        releases the admission itself.
        """
        release = self.admit()
        try:
            return release, await run_in_threadpool(prepare, body)
        except BaseException:
            release()
            raise

    def streaming(self, events: AsyncIterator[bytes], release: Release) -> StreamingResponse:
        """An SSE response that holds its admission until the response is over.

        The release happens in the response's own ASGI call, which always runs: a client that
        disconnects before its stream starts must not keep a slot forever.
        """
        return _AdmittedStream(events, release)

    def _started(self, n_input: int) -> None:
        self._generating += 1
        self.metrics.input_length.observe(n_input)
        self._count_slots()

    def _ended(self) -> None:
        self._generating -= 1
        self._count_slots()

    def _count_slots(self) -> None:
        slots = self.engine.slots if self.engine is not None else 1
        self.metrics.batch.set(min(self._generating, slots))
        self.metrics.queue.set(max(0, self._generating - slots))

    def _finished(self, prompt: list[int], outcome: Outcome, started: float) -> None:
        self.metrics.successes.inc()
        self.metrics.prompt_tokens.inc(len(prompt))
        self.metrics.cached_tokens.inc(outcome.cached_tokens)
        self.metrics.generated.observe(len(outcome.tokens))
        self.metrics.duration.observe(time.perf_counter() - started)

    async def _run(self, prompt: list[int], sampling: Sampling, on_token: OnToken) -> Outcome:
        """Generate on a thread of its own; if the caller is cancelled, stop at the next token.

        The cancelled caller waits for the thread to stop, so what the runtime counts as in
        flight is what the engine still runs.
        """
        engine, loop = self.ready_engine(), asyncio.get_running_loop()
        cancel = threading.Event()

        def until_cancelled(info: TokenInfo) -> bool:
            return on_token(info) or cancel.is_set()

        def run() -> Outcome:
            if cancel.is_set():  # cancelled while waiting for a thread
                return Outcome()
            return engine.generate(prompt, sampling, until_cancelled)

        self._started(len(prompt))
        worker = loop.run_in_executor(self._threads, run)
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            cancel.set()
            with contextlib.suppress(Exception):
                await worker
            raise
        finally:
            self._ended()

    async def complete(self, prompt: list[int], sampling: Sampling) -> Outcome:
        """Generate to the end."""
        started = time.perf_counter()
        try:
            outcome = await self._run(prompt, sampling, lambda _info: False)
        except (asyncio.CancelledError, RequestError):
            raise
        except Exception as exc:
            raise RequestError(self._generation_failed(exc), "generation") from exc
        self._finished(prompt, outcome, started)
        return outcome

    async def stream(
        self, prompt: list[int], sampling: Sampling, outcome: Outcome
    ) -> AsyncGenerator[TokenInfo, None]:
        """Yield tokens as the engine produces them; stop it if the consumer goes away.

        `outcome` is filled in once the stream is exhausted.
        """
        started, loop = time.perf_counter(), asyncio.get_running_loop()
        queue: asyncio.Queue[TokenInfo | None] = asyncio.Queue()
        gone = threading.Event()

        def on_token(info: TokenInfo) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, info)
            return gone.is_set()

        task = asyncio.ensure_future(self._run(prompt, sampling, on_token))
        task.add_done_callback(lambda _task: queue.put_nowait(None))
        try:
            while (item := await queue.get()) is not None:
                yield item
            result = await task
        finally:
            gone.set()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for name in ("finish_reason", "generated_text", "tokens", "seed", "cached_tokens"):
            setattr(outcome, name, getattr(result, name))
        self._finished(prompt, outcome, started)
