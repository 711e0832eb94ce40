"""What the fault tests share: short timeouts, a fast retry policy, the input, and the faults.

Every client is built with `TIMEOUT` for connecting and for each read (`HANG_TIMEOUT` where
the server hangs every time), so a hung server costs under a second per attempt; `WALL`
bounds a whole test (see `conftest.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from s2a import RetryPolicy, S2ACallError, S2AResult, S2ATimeoutError, S2AUnavailableError
from tests.faults.misbehaving_tgi import Fault

TIMEOUT = 0.5
"""Seconds: the clients' connect and read timeouts."""
HANG_TIMEOUT = 0.25
"""Seconds: the read timeout against a server that hangs on every attempt (nothing else is read)."""
WALL = 20.0
"""Seconds: no test may take longer; the server then cuts every connection and the test fails."""

CONTEXT = "Paris is in France. I think it is in Spain."
QUESTION = "Where is Paris?"
ORIGINAL_PROMPT = f"{CONTEXT}\n\nQuestion: {QUESTION}"


def policy(attempts: int = 3) -> RetryPolicy:
    """Retries with near-zero backoff; a server's `Retry-After` is cut to 0.25 s."""
    return RetryPolicy(attempts=attempts, backoff=0.001, max_backoff=0.002, max_retry_after=0.25)


@dataclass(frozen=True)
class Case:
    """A fault, repeated for every attempt, and what the caller must see."""

    name: str
    fault: Fault
    error: type[S2ACallError]
    """The exact class raised with `fallback="raise"`."""
    attempts: int
    """Calls made, and so requests the server must have seen."""
    says: str
    """The start of the error's message (and of the fallback reason, after its prefix)."""
    advice: str
    """What the message tells the user to try."""
    timeout: float = TIMEOUT
    """The clients' timeouts for this case."""

    @property
    def faults(self) -> list[Fault]:
        """One fault per attempt: the call never succeeds."""
        return [self.fault] * self.attempts

    def __str__(self) -> str:
        return self.name


_UNREACHABLE = "could not reach the model server after 3 attempts"
_CHECK_SERVER = "Check the URL and that the server is running"
_CHECK_REQUEST = "not retried. Check the request"
_CHECK_LOG = "Check the server's log"

CASES = [
    Case(
        "hang",
        Fault("hang"),
        S2ATimeoutError,
        2,
        "the model call timed out after 2 attempts (ReadTimeout",
        "Raise the client's timeout",
        HANG_TIMEOUT,
    ),
    Case(
        "close_mid_request", Fault("close_mid_request"), S2AUnavailableError, 3, _UNREACHABLE, _CHECK_SERVER
    ),
    Case(
        "reset_mid_request",
        Fault("close_mid_request", read_body=False),
        S2AUnavailableError,
        3,
        _UNREACHABLE,
        _CHECK_SERVER,
    ),
    Case("close_mid_body", Fault("close_mid_body"), S2AUnavailableError, 3, _UNREACHABLE, _CHECK_SERVER),
    Case("garbage", Fault("garbage"), S2AUnavailableError, 3, _UNREACHABLE, _CHECK_SERVER),
    Case(
        "429",
        Fault("status", 429, retry_after="0"),
        S2AUnavailableError,
        3,
        "the model server is overloaded (HTTP 429) after 3 attempts",
        "Retry later",
    ),
    Case(
        "503",
        Fault("status", 503, retry_after="0"),
        S2AUnavailableError,
        3,
        "the model server is unavailable (HTTP 503) after 3 attempts",
        "allow more attempts",
    ),
    Case(
        "502",
        Fault("status", 502),
        S2AUnavailableError,
        3,
        "the model server is unavailable (HTTP 502) after 3 attempts",
        "allow more attempts",
    ),
    Case(
        "504",
        Fault("status", 504),
        S2AUnavailableError,
        3,
        "the model server is unavailable (HTTP 504) after 3 attempts",
        "allow more attempts",
    ),
    Case(
        "401",
        Fault("status", 401),
        S2ACallError,
        1,
        "the model server refused the API key (HTTP 401) after 1 attempt",
        "api_key=",
    ),
    Case(
        "500",
        Fault("status", 500),
        S2ACallError,
        1,
        "the model server failed while generating (HfHubHTTPError",
        _CHECK_LOG,
    ),
    Case(
        "424",
        Fault("status", 424),
        S2ACallError,
        1,
        "the model server failed while generating (HfHubHTTPError",
        _CHECK_LOG,
    ),
    Case(
        "400",
        Fault("status", 400),
        S2ACallError,
        1,
        "the model server refused the call (HTTP 400",
        _CHECK_REQUEST,
    ),
]
"""Every fault of a non-streamed call."""

STREAM_CASES = [
    Case("partial_stream", Fault("partial_stream"), S2AUnavailableError, 3, _UNREACHABLE, _CHECK_SERVER),
    Case(
        "stream_overloaded",
        Fault("stream_error", error_type="overloaded"),
        S2AUnavailableError,
        3,
        "the model server is overloaded (HTTP 429) after 3 attempts",
        "Retry later",
    ),
    Case(
        "stream_generation_error",
        Fault("stream_error", error_type="generation"),
        S2ACallError,
        1,
        "the model server failed while generating (GenerationError: injected)",
        _CHECK_LOG,
    ),
]
"""Every fault of a streamed call."""

RETRYABLE = [case for case in CASES if case.attempts > 1]


def check_error(error: S2ACallError, case: Case, seen: int) -> None:
    """The error is the case's class, counts the attempts the server saw, and says what to try."""
    assert type(error) is case.error
    assert error.attempts == case.attempts == seen
    assert str(error).startswith(case.says), str(error)
    assert case.advice in str(error)
    assert error.__cause__ is not None  # the client's own exception, for debugging


def check_fallback(result: S2AResult, case: Case) -> None:
    """The original context and question, unchanged, flagged with the failure."""
    assert result.fallback is not None
    assert result.fallback.startswith(f"the S2A call failed: {case.says}"), result.fallback
    assert (result.context, result.question, result.prompt) == (CONTEXT, QUESTION, ORIGINAL_PROMPT)
