"""The requests of the local server's load test and the checks of what comes back.

The load plan (who sends what), the probe (how a request carries its nonce), the request bodies
of the three routes, and the checks that a 200 belongs to its request (parsing the server-sent
events of /generate_stream) and that a 429 is TGI's overloaded error. `s2a.local.load` has the
whole load test's description.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import httpx

Route = Literal["generate", "generate_stream", "chat"]
PATHS: dict[Route, str] = {
    "generate": "/generate",
    "generate_stream": "/generate_stream",
    "chat": "/v1/chat/completions",
}
LOOPBACK = "127.0.0.1"
Kind = Literal["ok", "overloaded", "mismatched", "lost", "other"]


class NotLoopbackError(ValueError):
    """A URL other than http://127.0.0.1:PORT: this load test sends traffic nowhere else."""


def loopback_url(url: str) -> str:
    """`url` without a trailing slash, if it is `http://127.0.0.1[:PORT]`; else `NotLoopbackError`."""
    parsed = httpx.URL(url)
    if parsed.scheme != "http" or parsed.host != LOOPBACK or parsed.userinfo:
        msg = (
            f"{url!r} is not http://127.0.0.1:PORT: the load test only sends traffic to a server on "
            "this machine's loopback address (start one with `s2a serve`, or leave out --url)"
        )
        raise NotLoopbackError(msg)
    return url.rstrip("/")


@dataclass(frozen=True)
class Probe:
    """How a request carries its nonce `{n}`, and what an answer that belongs to it starts with."""

    prompt: str = "x{n},x{n},x{n},x"
    """The `inputs` of /generate and /generate_stream."""
    answer: str = "{n}"
    """What their generated text starts with."""
    chat_message: str = "Reply with the number {n} and nothing else."
    """The user message of /v1/chat/completions."""
    chat_answer: str = "{n}"
    """What the assistant's reply starts with."""


@dataclass(frozen=True)
class LoadPlan:
    """Who sends what: `clients` concurrent clients, `requests` requests each, at most."""

    clients: int = 64
    requests: int = 4
    routes: tuple[Route, ...] = ("generate",)
    """Requests take these routes in turn."""
    max_new_tokens: int = 3
    backoff: float = 0.25
    """Seconds (scaled by 0.5 to 1.5, fixed per request) a client waits after a 429."""
    deadline: float = 600.0
    """Seconds a round may last; requests unanswered by then are lost."""
    request_timeout: float = 300.0

    def __post_init__(self) -> None:
        if min(self.clients, self.requests, self.max_new_tokens) < 1 or not self.routes:
            msg = f"a load plan needs at least one client, request, new token and route: {self}"
            raise ValueError(msg)

    @property
    def total(self) -> int:
        """Requests the round sends if none is lost."""
        return self.clients * self.requests

    def nonce(self, client: int, index: int) -> str:
        """A number of the same width for every request of the round, none the same."""
        digits = 3
        while 9 * 10 ** (digits - 1) < self.total:
            digits += 1
        return str(10 ** (digits - 1) + client * self.requests + index)

    def route(self, client: int, index: int) -> Route:
        return self.routes[(client * self.requests + index) % len(self.routes)]

    def pause(self, client: int, index: int) -> float:
        """The wait after a 429, spread so the refused clients do not all come back at once."""
        return self.backoff * (0.5 + (37 * (client * self.requests + index) % 100) / 100)


@dataclass(frozen=True)
class Result:
    """One request and what came back."""

    client: int
    index: int
    route: Route
    nonce: str
    status: int | None
    """The HTTP status; None when no response came (lost)."""
    seconds: float
    problem: str | None = None
    """Why the response is neither a 200 that belongs to the request nor a well-formed 429."""

    @property
    def kind(self) -> Kind:
        if self.status is None:
            return "lost"
        if self.problem is None:
            return "ok" if self.status == 200 else "overloaded"
        return "mismatched" if self.status == 200 else "other"


def request_body(route: Route, nonce: str, plan: LoadPlan, probe: Probe) -> dict[str, Any]:
    """A greedy request carrying `nonce`."""
    if route == "chat":
        message = {"role": "user", "content": probe.chat_message.format(n=nonce)}
        return {"messages": [message], "max_tokens": plan.max_new_tokens, "temperature": 0}
    return {"inputs": probe.prompt.format(n=nonce), "parameters": {"max_new_tokens": plan.max_new_tokens}}


def sse_payloads(text: str) -> list[str]:
    """The `data:` payloads of a server-sent-event body."""
    return [line.removeprefix("data:").strip() for line in text.splitlines() if line.startswith("data:")]


def _spelled(tokens: list[dict[str, Any]]) -> str:
    return "".join(token["text"] for token in tokens if not token["special"])


def answer_text(route: Route, response: httpx.Response) -> str:
    """The generated text of a 200, after checking that its parts agree with one another."""
    if route == "chat":
        content: str = response.json()["choices"][0]["message"]["content"]
        return content
    if route == "generate":
        body = response.json()
        tokens = body["details"]["tokens"]
    else:
        events = [json.loads(payload) for payload in sse_payloads(response.text)]
        if errors := [e for e in events if "error" in e]:
            msg = f"the stream has an error event: {errors[0]}"
            raise ValueError(msg)
        if [e["index"] for e in events] != list(range(1, len(events) + 1)):
            msg = f"stream indices are not 1..{len(events)}"
            raise ValueError(msg)
        body, tokens = events[-1], [e["token"] for e in events]
    text: str = body["generated_text"]
    if _spelled(tokens) != text:
        msg = f"the tokens spell {_spelled(tokens)!r}, not the generated text {text!r}"
        raise ValueError(msg)
    return text


def _refusal_problem(route: Route, response: httpx.Response) -> str | None:
    """None if a 429 has TGI's `{"error": ..., "error_type": "overloaded"}` (an event on stream routes)."""
    payloads = sse_payloads(response.text) if route == "generate_stream" else [response.text]
    try:
        body = json.loads(payloads[0]) if len(payloads) == 1 else None
    except ValueError:
        body = None
    if (
        isinstance(body, dict)
        and set(body) == {"error", "error_type"}
        and body["error_type"] == "overloaded"
        and isinstance(body["error"], str)
    ):
        return None
    return f"429 without TGI's overloaded error: {response.text[:200]!r}"


def check(route: Route, nonce: str, response: httpx.Response, probe: Probe) -> str | None:
    """None for a 200 that belongs to the request of `nonce` or a 429 in TGI's shape; else what is wrong."""
    if response.status_code == 429:
        return _refusal_problem(route, response)
    if response.status_code != 200:
        return f"status {response.status_code}: {response.text[:200]!r}"
    try:
        text = answer_text(route, response)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return f"unreadable answer ({exc}): {response.text[:200]!r}"
    expected = (probe.chat_answer if route == "chat" else probe.answer).format(n=nonce)
    if not text.startswith(expected):
        return f"the answer {text!r} is not that of its request (it should start with {expected!r})"
    return None
