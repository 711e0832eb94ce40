"""When the model call itself fails: what went wrong, whether to retry, and the fallback.

Sans-IO like the rest of the core: `RetryPolicy.delay` decides, the two loops below only
sleep and call (`time.sleep` or `asyncio.sleep`, the sole difference between them).

    failure = classify(exc)              # timeout, connection, HTTP status, or other
    wait = policy.delay(attempt, failure)  # seconds before the next try, or None: give up
    error = call_error(failure, attempts)  # the S2ACallError subclass that says what to try

Cancellation (`asyncio.CancelledError`, `KeyboardInterrupt`) is a `BaseException`: it is
never caught, retried or turned into a fallback.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from s2a._errors import S2ACallError, S2ATimeoutError, S2AUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

FailureKind = Literal["timeout", "connection", "status", "other"]

_TIMEOUT_NAMES = re.compile(r"Timeout|TimedOut", re.IGNORECASE)
_CONNECTION_NAMES = re.compile(
    r"Connect|RemoteProtocol|ReadError|WriteError|NetworkError|ServerDisconnected|ProtocolError"
)
_GENERATION_NAMES = re.compile(r"Generation")

UNAVAILABLE = frozenset({429, 502, 503, 504})
"""Overloaded (429), or unavailable for now: a gateway without a replica (502, 504), 503."""
GENERATION_FAILED = frozenset({424, 500})
"""TGI's statuses for a generation that failed on the server (not retried by default)."""
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_BEARER = re.compile(r"(Bearer\s+)[^\s'\"]+", re.IGNORECASE)


class RetryPolicy(BaseModel):
    """How a failed model call is retried: exponential backoff with full jitter, capped.

    Retried: timeouts, connection errors (refused, reset, the server gone mid-request) and
    the HTTP statuses in `statuses` (429 overloaded; 502, 503, 504 unavailable by default). A
    `Retry-After` header is honoured, up to `max_retry_after` seconds. Anything else (a 422
    for a bad request, a parse error) is not retried: trying again would fail the same way.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=3, ge=1)
    """Calls in all, the first included; 1 turns retrying off."""
    backoff: float = Field(default=0.5, ge=0.0)
    """Seconds: retry n waits a random time up to `backoff * 2 ** (n - 1)`."""
    max_backoff: float = Field(default=8.0, ge=0.0)
    """Seconds: the most one backoff can be."""
    max_retry_after: float = Field(default=30.0, ge=0.0)
    """Seconds: a server's longer `Retry-After` is cut to this."""
    statuses: frozenset[int] = UNAVAILABLE
    """HTTP statuses worth retrying."""

    def delay(self, attempt: int, failure: Failure, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when the call should not be retried."""
        if attempt >= self.attempts or not self.retries(failure):
            return None
        if failure.retry_after is not None:
            return min(failure.retry_after, self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return (rng or random).uniform(0.0, ceiling)

    def retries(self, failure: Failure) -> bool:
        """Whether this kind of failure is worth another attempt."""
        if failure.kind == "status":
            return failure.status in self.statuses
        return failure.kind in ("timeout", "connection")


DEFAULT_RETRY = RetryPolicy()
"""Three attempts, backoff from 0.5 s with full jitter up to 8 s, `Retry-After` up to 30 s."""

NO_RETRY = RetryPolicy(attempts=1)
"""A policy that never retries."""


@dataclass(frozen=True)
class Failure:
    """What a failed call's exception says."""

    kind: FailureKind
    error: BaseException
    status: int | None = None
    retry_after: float | None = None

    @property
    def summary(self) -> str:
        """`TypeName: message`, with credentials in URLs and bearer tokens masked."""
        return redact(f"{type(self.error).__name__}: {self.error}")


def redact(text: str) -> str:
    """Mask `user:password@` in URLs and `Bearer <token>` in `text`."""
    return _BEARER.sub(r"\1***", _USERINFO.sub("***@", text))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _status(exc: BaseException) -> tuple[int | None, Any]:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        status = getattr(exc, "status_code", None)
    return (status if isinstance(status, int) else None), response


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify(exc: BaseException) -> Failure:
    """Read an exception from any client (httpx, huggingface_hub, requests, openai, ...)."""
    for link in _chain(exc):
        status, response = _status(link)
        if status is not None:
            return Failure("status", exc, status=status, retry_after=_retry_after(response))
    for link in _chain(exc):
        names = " ".join(cls.__name__ for cls in type(link).__mro__)
        if "Overloaded" in names:  # TGI's `overloaded` error event, inside a stream
            return Failure("status", exc, status=429)
        if isinstance(link, TimeoutError) or _TIMEOUT_NAMES.search(names):
            return Failure("timeout", exc)
        if isinstance(link, ConnectionError) or _CONNECTION_NAMES.search(names):
            return Failure("connection", exc)
    return Failure("other", exc)


def call_error(failure: Failure, attempts: int) -> S2ACallError:
    """The typed error for a call that failed `attempts` times, saying what to try next."""
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    kind: type[S2ACallError] = S2ACallError
    if failure.kind == "timeout":
        kind, message = (
            S2ATimeoutError,
            (
                f"the model call timed out {tries} ({failure.summary}). Raise the client's timeout "
                "(e.g. tgi_chat_model(url, timeout=...)), lower max_new_tokens, or check the server's load"
            ),
        )
    elif failure.kind == "connection":
        kind, message = (
            S2AUnavailableError,
            (
                f"could not reach the model server {tries} ({failure.summary}). Check the URL and that "
                "the server is running"
            ),
        )
    elif failure.kind == "status" and failure.status in UNAVAILABLE:
        word = "overloaded" if failure.status == 429 else "unavailable"
        kind, message = (
            S2AUnavailableError,
            (
                f"the model server is {word} (HTTP {failure.status}) {tries}. Retry later, allow more "
                "attempts (retry=RetryPolicy(attempts=...)), or add capacity"
            ),
        )
    elif failure.kind == "status" and failure.status in (401, 403):
        message = (
            f"the model server refused the API key (HTTP {failure.status}) {tries}. Pass the "
            "server's key (TGI's --api-key): tgi_chat_model(url, api_key=...), s2a run --api-key"
        )
    elif failure.status in GENERATION_FAILED or _GENERATION_NAMES.search(type(failure.error).__name__):
        message = (
            f"the model server failed while generating ({failure.summary}) {tries}. Check the "
            "server's log; to retry such failures too, add the status to RetryPolicy(statuses=...)"
        )
    elif failure.kind == "status":
        message = (
            f"the model server refused the call (HTTP {failure.status}: {failure.summary}); not "
            "retried. Check the request: the prompt's length against the model's window "
            "(window_tokens= splits a long context into parts that fit), max_new_tokens"
        )
    else:
        message = (
            f"the model call failed ({failure.summary}); not retried: it was not a timeout, a "
            "connection error or an HTTP error. Check the model object and its settings"
        )
    return kind(message, failure, attempts)


def _after_failure(policy: RetryPolicy, attempt: int, exc: Exception, rng: random.Random | None) -> float:
    failure = classify(exc)
    wait = policy.delay(attempt, failure, rng)
    if wait is None:
        raise call_error(failure, attempt) from exc
    logger.warning("S2A: model call failed (%s); retry %d in %.2f s", failure.summary, attempt, wait)
    return wait


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Any] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """`call()`, retried per `policy`.

    Raises:
        S2ACallError: the call failed and will not be retried (its subclass says why).

    """
    attempt = 1
    while True:
        try:
            return call()
        except Exception as exc:  # every client's errors; BaseException (cancellation) passes
            sleep(_after_failure(policy, attempt, exc, rng))
        attempt += 1


async def acall_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """`await call()`, retried per `policy`; cancelling it cancels the call in flight.

    Raises:
        S2ACallError: the call failed and will not be retried (its subclass says why).

    """
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as exc:  # asyncio.CancelledError is a BaseException: never caught
            await sleep(_after_failure(policy, attempt, exc, rng))
        attempt += 1
