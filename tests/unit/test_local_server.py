"""The local TGI-compatible server over a fake engine: protocol, validation, errors, queueing.

Every response is checked against TGI's OpenAPI document. The same checks run against the
real model in tests/integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from s2a.local.engine import OnToken, Outcome, Sampling
from s2a.local.server import ServerSettings, create_app
from tests.fake_engine import FakeEngine
from tests.openapi import sse_events, validate, validate_named

SETTINGS = ServerSettings(
    model_id="fake/model", max_concurrent_requests=4, max_input_tokens=32, max_total_tokens=48
)


def make_app(engine: FakeEngine, settings: ServerSettings = SETTINGS) -> FastAPI:
    return create_app(settings, lambda: engine)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app(FakeEngine())) as test_client:
        wait_ready(test_client)
        yield test_client


def wait_ready(client: TestClient) -> None:
    for _ in range(200):
        if client.get("/health").status_code == 200:
            return
        asyncio.run(asyncio.sleep(0.01))
    pytest.fail("the fake engine never became ready")


def post(client: TestClient, path: str, body: dict[str, Any]) -> Any:  # starlette's response type
    return client.post(path, json=body)


def test_health_is_503_until_loaded_then_200() -> None:
    engine = FakeEngine()
    gate = engine.loaded

    def slow_load() -> FakeEngine:
        gate.wait(5)
        return engine

    with TestClient(create_app(SETTINGS, slow_load)) as client:
        response = client.get("/health")
        assert response.status_code == 503
        validate(response.json(), "/health", "get", 503)
        assert post(client, "/generate", {"inputs": "hi"}).status_code == 503
        gate.set()
        wait_ready(client)
        assert client.get("/health").content == b""


def test_failed_load_is_reported_by_health() -> None:
    def broken() -> FakeEngine:
        msg = "no such file"
        raise OSError(msg)

    with TestClient(create_app(SETTINGS, broken)) as client:
        for _ in range(100):
            body = client.get("/health").json()
            if body["error"] != "Model is loading":
                break
            asyncio.run(asyncio.sleep(0.01))
        assert body == {"error": "model failed to load: no such file", "error_type": "unhealthy"}


def test_info(client: TestClient) -> None:
    info = client.get("/info").json()
    validate(info, "/info", "get", 200)
    assert (info["model_id"], info["max_input_tokens"], info["max_total_tokens"]) == ("fake/model", 32, 48)
    assert info["max_concurrent_requests"] == 4


def test_generate(client: TestClient) -> None:
    response = post(client, "/generate", {"inputs": "the sky is", "parameters": {"max_new_tokens": 3}})
    body = response.json()
    validate(body, "/generate", "post", 200)
    assert body["generated_text"] == " echo the sky"
    assert body["details"]["finish_reason"] == "length"
    assert body["details"]["generated_tokens"] == 3
    full = post(
        client, "/generate", {"inputs": "a b", "parameters": {"return_full_text": True, "details": False}}
    )
    assert full.json() == {"generated_text": "a b echo a b"}


def test_generate_stops_at_eos_and_stop_sequences(client: TestClient) -> None:
    eos = post(client, "/generate", {"inputs": "a b"}).json()
    assert eos["details"]["finish_reason"] == "eos_token"
    assert eos["details"]["tokens"][-1]["special"] is True
    assert eos["generated_text"] == " echo a b"  # special tokens are not text
    stop = post(client, "/generate", {"inputs": "a b c", "parameters": {"stop": [" a"]}}).json()
    assert (stop["generated_text"], stop["details"]["finish_reason"]) == (" echo a", "stop_sequence")


def test_compat_route(client: TestClient) -> None:
    plain = post(client, "/", {"inputs": "x y"})
    validate(plain.json(), "/", "post", 200)
    assert plain.json()[0]["generated_text"] == " echo x y"
    streamed = post(client, "/", {"inputs": "x y", "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert json.loads(sse_events(streamed.text)[-1])["generated_text"] == " echo x y"


def test_generate_stream_framing(client: TestClient) -> None:
    response = post(client, "/generate_stream", {"inputs": "one two", "parameters": {"max_new_tokens": 10}})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(payload) for payload in sse_events(response.text)]
    for event in events:
        validate_named(event, "StreamResponse")
    assert [e["index"] for e in events] == [1, 2, 3, 4]
    assert all(e["generated_text"] is None and e["details"] is None for e in events[:-1])
    assert events[-1]["generated_text"] == " echo one two"
    assert events[-1]["details"] == {
        "finish_reason": "eos_token",
        "generated_tokens": 4,
        "seed": None,
        "input_length": 2,
    }
    assert "[DONE]" not in response.text


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"temperature": 0}, "`temperature` must be strictly positive"),
        ({"top_p": 0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"repetition_penalty": 0}, "`repetition_penalty` must be strictly positive"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
        ({"best_of": 2}, "`best_of` must be > 0 and <= 1. Given: 2"),
        ({"watermark": True}, "`watermark` is not supported by this server"),
        ({"adapter_id": "lora"}, "`adapter_id` is not supported by this server"),
        ({"grammar": {"type": "json", "value": "not json"}}, "grammar value is not valid JSON"),
        (
            {"max_new_tokens": 40},
            "`inputs` tokens + `max_new_tokens` must be <= 48. Given: 9 `inputs` tokens",
        ),
        ({"nonsense": 1}, "parameters.nonsense: Extra inputs are not permitted"),
    ],
)
def test_validation_errors_have_tgi_shape(
    client: TestClient, parameters: dict[str, Any], message: str
) -> None:
    body = {"inputs": "one two three four five six seven eight nine", "parameters": parameters}
    response = post(client, "/generate", body)
    assert response.status_code == 422
    validate(response.json(), "/generate", "post", 422)
    assert response.json()["error_type"] == "validation"
    assert message in response.json()["error"]
    streamed = post(client, "/generate_stream", body)
    assert streamed.status_code == 422
    (payload,) = sse_events(streamed.text)
    validate(json.loads(payload), "/generate_stream", "post", 422, "text/event-stream")


def test_input_limits(client: TestClient) -> None:
    empty = post(client, "/generate", {"inputs": ""})
    assert (empty.status_code, empty.json()["error"]) == (
        422,
        "Input validation error: `inputs` cannot be empty",
    )
    long = post(client, "/generate", {"inputs": " ".join(["w"] * 33)})
    assert long.json()["error"] == "Input validation error: `inputs` must have less than 32 tokens. Given: 33"
    truncated = post(client, "/generate", {"inputs": " ".join(["w"] * 33), "parameters": {"truncate": 3}})
    assert truncated.json()["generated_text"] == " echo w w w"
    missing = client.post("/generate", json={"parameters": {}})
    assert missing.status_code == 422
    assert missing.json()["error"].startswith("inputs:")


def test_chat_completion(client: TestClient) -> None:
    body = {
        "messages": [{"role": "system", "content": "be"}, {"role": "user", "content": "hi"}],
        "temperature": 0,
    }
    response = post(client, "/v1/chat/completions", body)
    completion = response.json()
    validate(completion, "/v1/chat/completions", "post", 200)
    assert completion["choices"][0]["message"] == {
        "role": "assistant",
        "content": " echo system: be user: hi",
    }
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 6,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 0},  # OpenAI's field: the fake engine caches nothing
    }
    chunked = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert (
        post(client, "/v1/chat/completions", {"messages": [{"role": "user", "content": chunked}]}).status_code
        == 200
    )


def test_chat_logprobs(client: TestClient) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "logprobs": True, "top_logprobs": 0}
    choice = post(client, "/v1/chat/completions", body).json()["choices"][0]
    assert [entry["token"] for entry in choice["logprobs"]["content"]] == [" echo", " user:", " hi"]


def test_chat_stream_ends_with_done_and_usage(client: TestClient) -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = post(client, "/v1/chat/completions", body)
    payloads = sse_events(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    for chunk in chunks:
        validate_named(chunk, "ChatCompletionChunk")
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"])
    assert text == " echo user: hi"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools.0.function.arguments: Field required",
        ),
        ({"n": 2}, "`n` must be 1"),
        ({"logit_bias": [1.0]}, "`logit_bias` is not supported"),
        ({"messages": []}, "`messages` cannot be empty"),
    ],
)
def test_chat_rejections(client: TestClient, extra: dict[str, Any], message: str) -> None:
    response = post(
        client, "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], **extra}
    )
    assert response.status_code == 422
    validate(response.json(), "/v1/chat/completions", "post", 422)
    assert message in response.json()["error"]


def test_chat_rejects_images(client: TestClient) -> None:
    content = [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]
    response = post(client, "/v1/chat/completions", {"messages": [{"role": "user", "content": content}]})
    assert response.status_code == 422
    assert "image inputs are not supported" in response.json()["error"]


def test_completions_plain_and_stream(client: TestClient) -> None:
    plain = post(client, "/v1/completions", {"prompt": "a b", "max_tokens": 8}).json()
    validate(plain, "/v1/completions", "post", 200)
    assert plain["choices"][0]["text"] == " echo a b"
    assert plain["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": 4,
        "total_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert post(client, "/v1/completions", {"prompt": ["a b"]}).json()["choices"][0]["text"] == " echo a b"
    payloads = sse_events(post(client, "/v1/completions", {"prompt": "a b", "stream": True}).text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    for chunk in chunks:
        validate(chunk, "/v1/completions", "post", 200, "text/event-stream")
    assert "".join(c["choices"][0]["text"] for c in chunks) == " echo a b"
    assert [c["choices"][0]["finish_reason"] for c in chunks][-2:] == ["", "stop"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": ["a", "b"]}, "one prompt per request"),
        ({"prompt": "a", "suffix": "z"}, "`suffix` is not supported"),
        ({"prompt": "a", "temperature": -1.0}, "`temperature` must be strictly positive"),
    ],
)
def test_completion_rejections(client: TestClient, body: dict[str, Any], message: str) -> None:
    response = post(client, "/v1/completions", body)
    assert response.status_code == 422
    validate(response.json(), "/v1/completions", "post", 422)
    assert message in response.json()["error"]


def test_models_list_serves_openai_clients_and_the_document(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    validate(models, "/v1/models", "get", 200)
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["fake/model"]


def test_chat_tokenize(client: TestClient) -> None:
    reply = post(client, "/chat_tokenize", {"messages": [{"role": "user", "content": "hi there"}]}).json()
    validate(reply, "/chat_tokenize", "post", 200)
    assert reply["templated_text"] == "user: hi there"
    assert [t["text"] for t in reply["tokenize_response"]] == ["user:", "hi", "there"]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"inputs": "a b", "parameters": {"details": False}}, lambda r: r["generated_text"]),
        ({"messages": [{"role": "user", "content": "a"}]}, lambda r: r["choices"][0]["message"]["content"]),
        ({"prompt": "a b"}, lambda r: r["choices"][0]["text"]),
    ],
    ids=["generate", "chat", "completion"],
)
def test_invocations_tells_the_three_requests_apart(
    client: TestClient, body: dict[str, Any], text: Callable[[dict[str, Any]], str]
) -> None:
    response = post(client, "/invocations", body)
    assert response.status_code == 200
    validate(response.json(), "/invocations", "post", 200)
    assert text(response.json()).startswith(" echo")


def test_invocations_rejects_what_no_request_type_accepts(client: TestClient) -> None:
    response = post(client, "/invocations", {"messages": "not a list"})
    assert response.status_code == 422
    assert response.json()["error_type"] == "validation"
    assert client.post("/invocations", content=b"\xff").status_code == 422


def test_regex_grammar_reaches_the_engine(client: TestClient) -> None:
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    grammar = {"type": "regex", "value": "[ab]+"}
    assert post(client, "/generate", {"inputs": "a", "parameters": {"grammar": grammar}}).status_code == 200
    assert (engine.samplings[-1].regex, engine.samplings[-1].json_schema) == ("[ab]+", None)
    chat = {"messages": [{"role": "user", "content": "a"}], "response_format": grammar}
    assert post(client, "/v1/chat/completions", chat).status_code == 200
    assert engine.samplings[-1].regex == "[ab]+"


def test_tokenize(client: TestClient) -> None:
    tokens = post(client, "/tokenize", {"inputs": "hello  world"}).json()
    validate(tokens, "/tokenize", "post", 200)
    assert [(t["text"], t["start"], t["stop"]) for t in tokens] == [("hello", 0, 5), ("world", 7, 12)]


def test_metrics(client: TestClient) -> None:
    post(client, "/generate", {"inputs": "a"})
    post(client, "/generate", {"inputs": "a", "parameters": {"temperature": -1}})
    text = client.get("/metrics").text
    assert "tgi_request_count_total 2.0" in text  # as in TGI: counted when admitted, before validation
    assert "tgi_request_success_total 1.0" in text
    assert 'tgi_request_failure_total{err="validation"} 1.0' in text
    assert "tgi_queue_size 0.0" in text


def test_unknown_route_has_error_shape(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert set(response.json()) == {"error", "error_type"}


async def test_overload_answers_429_and_each_admitted_request_gets_its_own_answer() -> None:
    """Requests beyond --max-concurrent-requests get 429; admitted ones are each answered once."""
    engine = FakeEngine(delay=0.02)
    app = make_app(engine)
    app.state.runtime.set_engine(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:

        async def ask(i: int) -> httpx.Response:
            await asyncio.sleep(i * 0.005)  # a known arrival order
            return await client.post("/generate", json={"inputs": f"request {i}"})

        responses = await asyncio.gather(*(ask(i) for i in range(7)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 4
    assert statuses.count(429) == 3
    for response in responses:
        if response.status_code == 429:
            assert response.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
            validate(response.json(), "/generate", "post", 429)
    answered = [i for i, r in enumerate(responses) if r.status_code == 200]
    for i in answered:  # every answer belongs to its own request
        assert responses[i].json()["generated_text"] == f" echo request {i}"
    assert sorted(engine.calls) == sorted(f"request {i}" for i in answered)


def test_uncompilable_grammar_is_refused_before_streaming(client: TestClient) -> None:
    grammar = {"type": "json", "value": {"type": "unsupported"}}
    response = post(client, "/generate_stream", {"inputs": "a", "parameters": {"grammar": grammar}})
    assert response.status_code == 422
    (payload,) = sse_events(response.text)
    assert "cannot be turned into a grammar" in json.loads(payload)["error"]


async def test_stream_slot_is_released_when_the_client_is_gone() -> None:
    """A client that disconnects before its stream starts must not hold a slot forever."""
    engine = FakeEngine()
    app = make_app(engine)
    runtime = app.state.runtime
    runtime.set_engine(engine)
    messages = [{"type": "http.request", "body": json.dumps({"inputs": "a b"}).encode(), "more_body": False}]

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        msg = "connection reset by peer"
        raise OSError(msg)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/generate_stream",
        "raw_path": b"/generate_stream",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    with contextlib.suppress(OSError):
        await app(scope, receive, send)
    assert runtime.in_flight == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate_stream", {"inputs": "a b c"}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a b c"}], "stream": True}),
    ],
)
def test_failure_mid_stream_is_an_error_event(path: str, body: dict[str, Any]) -> None:
    with TestClient(make_app(FakeEngine(fail_after=2))) as client:
        wait_ready(client)
        response = post(client, path, body)
        assert response.status_code == 200  # the stream had begun
        last = json.loads(sse_events(response.text)[-1])
        assert last == {
            "error": "Request failed during generation: the engine broke",
            "error_type": "generation",
        }
        assert 'tgi_request_failure_total{err="generation"} 1.0' in client.get("/metrics").text
        plain = post(client, "/generate", {"inputs": "a b c"})  # fails too, before any byte is sent
        assert plain.status_code == 424
        validate(plain.json(), "/generate", "post", 424)
        assert plain.json() == last
        assert client.get("/health").status_code == 200  # and the server goes on


@pytest.mark.parametrize(
    ("tool_choice", "status"),
    [
        ("auto", 200),
        ("none", 200),
        (None, 200),
        ("required", 422),
        ({"function": {"name": "f"}}, 422),
        ({"function": {}}, 422),
        ("sometimes", 422),
    ],
)
def test_tool_choice_is_read_as_tgi_types_it(client: TestClient, tool_choice: object, status: int) -> None:
    """Found by the fuzz: `{"function": {}}` (no name) was accepted."""
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "tool_choice": tool_choice}
    response = post(client, "/v1/chat/completions", body)
    assert response.status_code == status, response.text
    if status == 422:
        validate(response.json(), "/v1/chat/completions", "post", 422)


@pytest.mark.parametrize(
    ("limits", "status", "tokens"),
    [
        ({"max_completion_tokens": 2}, 200, 2),
        ({"max_tokens": 3, "max_completion_tokens": 3}, 200, 3),
        ({"max_tokens": 2, "max_completion_tokens": 3}, 422, None),
    ],
)
def test_max_completion_tokens_is_max_tokens(
    client: TestClient, limits: dict[str, int], status: int, tokens: int | None
) -> None:
    """OpenAI's newer name for the limit, which langchain-openai's ChatOpenAI sends."""
    body = {"messages": [{"role": "user", "content": "hi"}], **limits}
    response = post(client, "/v1/chat/completions", body)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["usage"]["completion_tokens"] == tokens
    else:
        assert "name the same limit" in response.json()["error"]


class CountingEngine(FakeEngine):
    """A fake engine that counts the generations running at once and the tokens each made."""

    def __init__(self, slots: int = 4) -> None:
        super().__init__(delay=0.05, slots=slots)
        self.running = 0
        self.most = 0
        self.lengths: list[int] = []
        self.guard = threading.Lock()
        self.started = threading.Event()

    def _generate(self, prompt: list[int], sampling: Sampling, on_token: OnToken) -> Outcome:
        with self.guard:
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.set()
        try:
            outcome = super()._generate(prompt, sampling, on_token)
        finally:
            with self.guard:
                self.running -= 1
        self.lengths.append(len(outcome.tokens))
        return outcome


async def test_a_cancelled_generation_stops_at_its_next_token_and_counts_until_then() -> None:
    """A client that goes away stops its generation; the runtime counts it until it has stopped."""
    engine = CountingEngine()
    engine.tokenize("echo <eos> a b c d e f g h")  # the vocabulary, before any thread reads it
    app = make_app(engine)
    app.state.runtime.set_engine(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        body = {"inputs": "a b c d e f g h", "parameters": {"max_new_tokens": 9}}
        first = asyncio.create_task(client.post("/generate", json=body))
        assert await asyncio.to_thread(engine.started.wait, 5)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert engine.running == 0  # the cancelled request returned only once its thread had stopped
        second = await client.post("/generate", json=body)
    assert second.status_code == 200
    assert engine.lengths[0] < 9 <= engine.lengths[1]
    assert app.state.runtime.in_flight == 0


async def test_requests_are_decoded_together_up_to_the_engine_slots() -> None:
    """The runtime adds no queue of its own: the engine runs `slots` requests at once."""
    engine = CountingEngine(slots=2)
    engine.tokenize("echo <eos> a b c")
    app = make_app(engine)
    app.state.runtime.set_engine(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        body = {"inputs": "a b c", "parameters": {"max_new_tokens": 4}}
        responses = await asyncio.gather(*(client.post("/generate", json=body) for _ in range(4)))
        metrics = (await client.get("/metrics")).text
    assert [r.status_code for r in responses] == [200] * 4
    assert engine.most == 2
    assert "tgi_batch_max_size 2.0" in metrics
    assert "tgi_batch_current_size 0.0" in metrics
