"""The local server against TGI's OpenAPI document, and TGI's own clients against the server.

Every route's responses (plain, streaming, errors) are validated against
../shared/tgi/openapi.json; huggingface_hub and langchain-huggingface are used unmodified.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import AsyncInferenceClient, InferenceClient
from huggingface_hub.errors import ValidationError as HubValidationError
from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import start_server, stop
from tests.openapi import sse_events, validate

SHORT = {"max_new_tokens": 6}


@pytest.fixture(scope="module")
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def repeatable(deterministic_url: str) -> Iterator[httpx.Client]:
    """A client of the one-slot, no-prompt-cache server, for tests that compare two replies."""
    with httpx.Client(base_url=deterministic_url, timeout=120) as client:
        yield client


def test_info_and_health(http: httpx.Client) -> None:
    info = http.get("/info")
    validate(info.json(), "/info", "get", 200)
    assert info.json()["model_sha"] == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert http.get("/health").status_code == 200


def test_generate(http: httpx.Client) -> None:
    body = http.post(
        "/generate", json={"inputs": "The sky is", "parameters": {**SHORT, "top_n_tokens": 2}}
    ).json()
    validate(body, "/generate", "post", 200)
    details = body["details"]
    assert details["generated_tokens"] == len(details["tokens"]) <= 6
    assert body["generated_text"] == "".join(t["text"] for t in details["tokens"] if not t["special"])
    assert all(len(top) == 2 for top in details["top_tokens"])


def test_compat_route_plain_and_stream(repeatable: httpx.Client) -> None:
    http = repeatable
    plain = http.post("/", json={"inputs": "The sky is", "parameters": SHORT})
    validate(plain.json(), "/", "post", 200)
    streamed = http.post("/", json={"inputs": "The sky is", "parameters": SHORT, "stream": True})
    for payload in sse_events(streamed.text):
        validate(json.loads(payload), "/", "post", 200, "text/event-stream")
    assert json.loads(sse_events(streamed.text)[-1])["generated_text"] == plain.json()[0]["generated_text"]


def test_generate_stream(http: httpx.Client) -> None:
    response = http.post("/generate_stream", json={"inputs": "The sky is", "parameters": SHORT})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(p) for p in sse_events(response.text)]
    for event in events:
        validate(event, "/generate_stream", "post", 200, "text/event-stream")
    assert events[-1]["details"]["finish_reason"] in {"length", "eos_token"}
    assert events[-1]["generated_text"] == "".join(
        e["token"]["text"] for e in events if not e["token"]["special"]
    )


def test_chat_plain_and_stream(repeatable: httpx.Client) -> None:
    http = repeatable
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Say hi."}],
        "max_tokens": 6,
        "temperature": 0,
    }
    plain = http.post("/v1/chat/completions", json=body).json()
    validate(plain, "/v1/chat/completions", "post", 200)
    streamed = http.post(
        "/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    payloads = sse_events(streamed.text)
    assert payloads[-1] == "[DONE]"
    for payload in payloads[:-1]:
        validate(json.loads(payload), "/v1/chat/completions", "post", 200, "text/event-stream")
    text = "".join(
        c["choices"][0]["delta"]["content"] for c in map(json.loads, payloads[:-1]) if c["choices"]
    )
    assert text == plain["choices"][0]["message"]["content"]


def test_grammar_constrained_json(http: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["red", "blue"]}},
        "required": ["colour"],
    }
    body = {
        "inputs": "Pick a colour:",
        "parameters": {"max_new_tokens": 20, "grammar": {"type": "json", "value": schema}},
    }
    reply = http.post("/generate", json=body).json()["generated_text"]
    assert json.loads(reply)["colour"] in {"red", "blue"}


def test_completions_plain_and_stream(repeatable: httpx.Client) -> None:
    http = repeatable
    body: dict[str, Any] = {"prompt": "The sky is", "max_tokens": 6, "temperature": 0}
    plain = http.post("/v1/completions", json=body).json()
    validate(plain, "/v1/completions", "post", 200)
    assert plain["object"] == "text_completion"
    assert 0 < plain["usage"]["completion_tokens"] <= 6
    payloads = sse_events(http.post("/v1/completions", json={**body, "stream": True}).text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    for chunk in chunks:
        validate(chunk, "/v1/completions", "post", 200, "text/event-stream")
    assert "".join(c["choices"][0]["text"] for c in chunks) == plain["choices"][0]["text"]


def test_models(http: httpx.Client) -> None:
    models = http.get("/v1/models").json()
    validate(models, "/v1/models", "get", 200)
    assert [m["id"] for m in models["data"]] == [http.get("/info").json()["model_id"]]


def test_chat_tokenize(http: httpx.Client) -> None:
    body = {"messages": [{"role": "user", "content": "Hello wörld"}]}
    reply = http.post("/chat_tokenize", json=body).json()
    validate(reply, "/chat_tokenize", "post", 200)
    text = reply["templated_text"]
    assert "Hello wörld" in text
    assert "".join(text[t["start"] : t["stop"]] for t in reply["tokenize_response"]) == text


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": "The sky is", "parameters": SHORT},
        {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 6},
        {"prompt": "The sky is", "max_tokens": 6},
    ],
    ids=["generate", "chat", "completion"],
)
def test_invocations(http: httpx.Client, body: dict[str, Any]) -> None:
    reply = http.post("/invocations", json=body)
    assert reply.status_code == 200
    validate(reply.json(), "/invocations", "post", 200)


def test_tokenize(http: httpx.Client) -> None:
    text = "Hello wörld"
    tokens = http.post("/tokenize", json={"inputs": text}).json()
    validate(tokens, "/tokenize", "post", 200)
    assert "".join(text[t["start"] : t["stop"]] for t in tokens) == text


def test_metrics_are_prometheus_text(http: httpx.Client) -> None:
    response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"tgi_request_count", "tgi_request_duration", "tgi_queue_size"} <= names


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", {"inputs": "x", "parameters": {"temperature": 0}}),
        ("/generate", {"inputs": "x", "parameters": {"grammar": {"type": "regex", "value": "(("}}}),
        (
            "/generate",
            {"inputs": "x", "parameters": {"grammar": {"type": "json", "value": {"type": "nope"}}}},
        ),
        ("/v1/completions", {"prompt": ["one", "two"]}),
        ("/", {"inputs": "x", "parameters": {"top_k": 0}}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "n": 3}),
        ("/v1/chat/completions", {"messages": "not a list"}),
    ],
)
def test_validation_errors(http: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = http.post(path, json=body)
    assert response.status_code == 422
    validate(response.json(), path, "post", 422)
    assert response.json()["error_type"] == "validation"


def test_stream_validation_error(http: httpx.Client) -> None:
    response = http.post("/generate_stream", json={"inputs": "x", "parameters": {"temperature": 0}})
    assert response.status_code == 422
    (payload,) = sse_events(response.text)
    validate(json.loads(payload), "/generate_stream", "post", 422, "text/event-stream")


def test_overload_answers_429(tmp_path: Path) -> None:
    """With --max-concurrent-requests 1, a second request while one runs is refused, not queued."""
    process, base_url = start_server(tmp_path / "serve.log", "--max-concurrent-requests", "1")
    try:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
                body = {"inputs": "Write a long poem about the sea.", "parameters": {"max_new_tokens": 40}}
                return await asyncio.gather(*(client.post("/generate", json=body) for _ in range(3)))

        statuses = sorted(r.status_code for r in asyncio.run(burst()))
    finally:
        stop(process)
    assert statuses[0] == 200
    assert 429 in statuses


# TGI's own clients, unmodified.


def test_huggingface_hub_client(server_url: str) -> None:
    client = InferenceClient(model=server_url)
    assert client.text_generation("The sky is", max_new_tokens=5).strip()
    output = client.text_generation("The sky is", max_new_tokens=5, details=True)
    assert output.details is not None
    assert output.details.generated_tokens <= 5
    assert len(list(client.text_generation("The sky is", max_new_tokens=5, stream=True))) >= 1
    chat = client.chat_completion([{"role": "user", "content": "Say hi."}], max_tokens=5, temperature=0)
    assert chat.choices[0].message.content
    stream = client.chat_completion([{"role": "user", "content": "Say hi."}], max_tokens=5, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    with pytest.raises(HubValidationError, match="temperature"):
        client.text_generation("x", temperature=0)


async def test_huggingface_hub_async_client(server_url: str) -> None:
    async with AsyncInferenceClient(model=server_url) as client:
        text = await client.text_generation("The sky is", max_new_tokens=5)
        chunks = [
            chunk async for chunk in await client.text_generation("The sky is", max_new_tokens=5, stream=True)
        ]
        chat = await client.chat_completion(
            [{"role": "user", "content": "Say hi."}], max_tokens=5, temperature=0
        )
    assert text.strip()
    assert "".join(chunks) == text
    assert chat.choices[0].message.content


async def test_langchain_huggingface(server_url: str) -> None:
    endpoint = HuggingFaceEndpoint(
        endpoint_url=server_url, max_new_tokens=5, temperature=None, top_p=None, typical_p=None
    )  # type: ignore[call-arg]
    assert endpoint.invoke("The sky is").strip()
    assert "".join(endpoint.stream("The sky is"))
    chat = ChatHuggingFace(llm=endpoint, temperature=0)
    assert chat.invoke("Say hi.").text
    try:
        chunks = [chunk.text async for chunk in chat.astream("Say hi.")]
    finally:
        await endpoint.async_client.close()
    assert "".join(chunks)
