"""Admission, fair queueing and the thread bridge between the event loop and the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from s2a.local.engine import Outcome, Sampling, TokenInfo
from s2a.local.protocol import RequestError
from s2a.local.sse import event

logger = logging.getLogger(__name__)


class EngineLike(Protocol):
    """What the server needs from an engine (the real one wraps llama.cpp)."""

    n_ctx: int

    @property
    def has_chat_template(self) -> bool: ...

    def tokenize(self, text: str) -> list[int]: ...

    def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]: ...

    def offsets(self, text: str) -> list[tuple[int, str, int, int]]: ...

    def check(self, sampling: Sampling) -> None: ...

    def generate(
        self, prompt: list[int], sampling: Sampling, outcome: Outcome, cancel: threading.Event
    ) -> Iterator[TokenInfo]: ...


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
        self.queue = Gauge("tgi_queue_size", "Requests waiting for the model", registry=r)
        self.batch = Gauge("tgi_batch_current_size", "Requests being generated", registry=r)


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
    """Holds the engine once loaded; admits, queues (FIFO) and runs requests one at a time."""

    def __init__(self, max_concurrent_requests: int) -> None:
        self.max_concurrent_requests = max_concurrent_requests
        self.engine: EngineLike | None = None
        self.load_error: str | None = None
        self.metrics = Metrics()
        self._in_flight = 0
        self._turn = asyncio.Lock()  # asyncio.Lock wakes waiters in arrival order

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

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """`admit` for the length of a block."""
        release = self.admit()
        try:
            yield
        finally:
            release()

    def _generation_failed(self, exc: Exception) -> str:
        """Log and count a failed generation; the message the client gets."""
        logger.error("generation failed", exc_info=exc)
        self.metrics.failures.labels(err="generation").inc()
        return f"Request failed during generation: {exc}"

    def failure_event(self, exc: Exception) -> bytes:
        """The error event for a generation that failed after its stream began (status is 200 by then)."""
        return event({"error": self._generation_failed(exc), "error_type": "generation"})

    def streaming(self, events: AsyncIterator[bytes]) -> StreamingResponse:
        """An SSE response that holds an admission until the response is over.

        The release happens in the response's own ASGI call, which always runs: a client that
        disconnects before its stream starts must not keep a slot forever.
        """
        return _AdmittedStream(events, self.admit())

    @contextlib.asynccontextmanager
    async def turn(self, n_input: int) -> AsyncIterator[None]:
        """Wait for the model, in arrival order, and hold it."""
        self.metrics.queue.inc()
        try:
            await self._turn.acquire()
        finally:
            self.metrics.queue.dec()
        self.metrics.batch.inc()
        self.metrics.input_length.observe(n_input)
        try:
            yield
        finally:
            self.metrics.batch.dec()
            self._turn.release()

    def _finished(self, outcome: Outcome, started: float) -> None:
        self.metrics.successes.inc()
        self.metrics.generated.observe(len(outcome.tokens))
        self.metrics.duration.observe(time.perf_counter() - started)

    async def complete(self, prompt: list[int], sampling: Sampling) -> Outcome:
        """Generate to the end in a worker thread."""
        engine, outcome, started = self.ready_engine(), Outcome(), time.perf_counter()
        async with self.turn(len(prompt)):
            cancel = threading.Event()

            def run() -> None:
                for _ in engine.generate(prompt, sampling, outcome, cancel):
                    pass

            worker = asyncio.ensure_future(asyncio.to_thread(run))
            try:
                await asyncio.shield(worker)
            except asyncio.CancelledError:
                # Hold the model until the thread has stopped: the next request must not run
                # beside a generation that is still going.
                cancel.set()
                with contextlib.suppress(Exception):
                    await worker
                raise
            except Exception as exc:
                raise RequestError(self._generation_failed(exc), "generation") from exc
        self._finished(outcome, started)
        return outcome

    async def stream(
        self, prompt: list[int], sampling: Sampling, outcome: Outcome
    ) -> AsyncIterator[TokenInfo]:
        """Yield tokens as the worker thread produces them; stop it if the consumer goes away."""
        engine, started = self.ready_engine(), time.perf_counter()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[TokenInfo | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def run() -> None:
            try:
                for token in engine.generate(prompt, sampling, outcome, cancel):
                    loop.call_soon_threadsafe(queue.put_nowait, token)
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except Exception as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        async with self.turn(len(prompt)):
            worker = loop.run_in_executor(None, run)
            try:
                while (item := await queue.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            finally:
                cancel.set()
                await asyncio.shield(worker)
        self._finished(outcome, started)
