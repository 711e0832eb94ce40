"""An in-memory stand-in for a TGI server, plugged under huggingface_hub's HTTP client.

Unit tests use it to run the real client path (InferenceClient, HuggingFaceEndpoint,
ChatHuggingFace) with no socket. The integration suite runs against the real local server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from huggingface_hub import close_session, set_async_client_factory, set_client_factory
from huggingface_hub.utils._http import default_async_client_factory, default_client_factory

from tests.ledger import record

Reply = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Fault:
    """A failure for the next request: an HTTP status, or a transport error as httpx raises it.

    kinds: `status` (with `headers`, e.g. Retry-After), `connect` (refused), `timeout` (read
    timeout), `drop` (the server closed the connection without answering: it died mid-request),
    `stream_error` (a stream that starts, then carries TGI's error event).
    """

    kind: str
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)


def _last_user_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        return str(body["messages"][-1]["content"])
    return str(body.get("inputs", ""))


def plausible_reply(body: dict[str, Any]) -> str:
    """A reply of the right shape for each kind of call, for examples that only show the API."""
    grammar = body.get("response_format") or body.get("parameters", {}).get("grammar")
    text = _last_user_text(body)
    if grammar is not None and grammar.get("type") == "regex":  # scored: keep every sentence
        return "\n".join(f"{n} keep" for n in range(1, grammar["value"].count("(keep|drop)") + 1))
    if grammar is not None:
        return json.dumps({"keep": [1]})
    if body.get("messages", [{}])[0].get("role") == "system":
        return f"Context: none\nQuestion: {text.strip().splitlines()[-1]}"
    return "An answer."


@dataclass
class FakeTGI:
    """Answers TGI's chat and generate routes with `reply(request_body)`; records each request."""

    reply: Reply = _last_user_text
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)
    max_input_tokens: int = 4096
    max_total_tokens: int | None = None
    """Sent in `/info` when set (TGI always sends it; its absence is tested too)."""
    max_batch_size: int | None = None
    """Sent in `/info` when set, as the local server does (TGI does not)."""
    refuse: bool = False
    """Fail every request as a server that is down would."""
    faults: list[Fault] = field(default_factory=list)
    """Failures for the next requests, one each, in order; then requests succeed."""
    headers: list[httpx.Headers] = field(default_factory=list)
    """The headers of every request, in order."""
    finish_reason: str = "stop"
    """What every chat reply says about why it ended (`length`: cut off at max_tokens)."""
    cached_tokens: int | None = None
    """Sent as OpenAI's `usage.prompt_tokens_details.cached_tokens` when set (TGI sends none)."""
    logprobs: Callable[[dict[str, Any], str], list[dict[str, Any]]] | None = None
    """The chat reply's `logprobs.content` for (request body, reply text), sent when the request
    asks for logprobs; without it, none are sent (as from a backend that gives none)."""

    def _fault(self, fault: Fault, request: httpx.Request) -> httpx.Response:
        record("faults injected (in-memory TGI)")
        if fault.kind == "connect":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if fault.kind == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault.kind == "drop":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if fault.kind == "stream_error":
            first = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Con"}}]}
            error = {"error": "CUDA out of memory", "error_type": "generation"}
            payload = f"data: {json.dumps(first)}\n\ndata: {json.dumps(error)}\n\n"
            return httpx.Response(
                200, content=payload.encode(), headers={"content-type": "text/event-stream"}
            )
        error_type = {429: "overloaded", 503: "unhealthy", 422: "validation", 401: "authentication"}
        body = {"error": f"injected {fault.status}", "error_type": error_type.get(fault.status, "http")}
        return httpx.Response(fault.status, json=body, headers=fault.headers)

    def _chat(self, body: dict[str, Any]) -> httpx.Response:
        text = self.reply(body)
        logprobs = {"content": self.logprobs(body, text)} if body.get("logprobs") and self.logprobs else None
        usage: dict[str, Any] = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if body.get("stream"):
            events = [
                {
                    "object": "chat.completion.chunk",
                    "id": "",
                    "created": 0,
                    "model": "fake",
                    "system_fingerprint": "fake",
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}
                    ],
                }
                for piece in text.split(" ")
                if piece
            ]
            payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            return httpx.Response(
                200, content=payload.encode(), headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(
            200,
            json={
                "object": "chat.completion",
                "id": "",
                "created": 0,
                "model": "fake",
                "system_fingerprint": "fake",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": logprobs,
                        "finish_reason": self.finish_reason,
                    }
                ],
                "usage": usage,
            },
        )

    def _generate(self, body: dict[str, Any]) -> httpx.Response:
        text = self.reply(body)
        if body.get("stream"):
            events = [
                {
                    "index": 1,
                    "token": {"id": 1, "text": text, "logprob": 0.0, "special": False},
                    "generated_text": text,
                    "details": None,
                }
            ]
            payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
            return httpx.Response(
                200, content=payload.encode(), headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(200, json=[{"generated_text": text}])

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        if self.refuse:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if self.faults and request.url.path != "/info":
            self.requests.append((request.url.path, json.loads(request.content or b"{}")))
            return self._fault(self.faults.pop(0), request)
        if request.method == "GET" and request.url.path == "/info":
            self.hosts.add(request.url.host)
            info: dict[str, Any] = {"model_id": "fake", "max_input_tokens": self.max_input_tokens}
            if self.max_total_tokens is not None:
                info["max_total_tokens"] = self.max_total_tokens
            if self.max_batch_size is not None:
                info["max_batch_size"] = self.max_batch_size
            return httpx.Response(200, json=info)
        body = json.loads(request.content or b"{}")
        path = request.url.path
        self.hosts.add(request.url.host)
        self.requests.append((path, body))
        if path.endswith("/v1/chat/completions"):
            return self._chat(body)
        if path in {"", "/", "/generate", "/generate_stream"}:
            return self._generate(body)
        return httpx.Response(404, json={"error": f"no route {path}", "error_type": "not_found"})

    def bodies(self, route: str) -> list[dict[str, Any]]:
        """The bodies of the requests made to paths ending in `route`."""
        return [body for path, body in self.requests if path.endswith(route)]


@contextmanager
def serve(fake: FakeTGI) -> Iterator[FakeTGI]:
    """Route every huggingface_hub request to `fake` while the block runs."""
    transport = httpx.MockTransport(fake.handle)
    set_client_factory(lambda: httpx.Client(transport=transport))
    set_async_client_factory(lambda: httpx.AsyncClient(transport=transport))
    close_session()
    try:
        yield fake
    finally:
        close_session()
        set_client_factory(default_client_factory)
        set_async_client_factory(default_async_client_factory)
