"""Fuzzing the local server against TGI's OpenAPI document (schemathesis, in-process, fake engine).

For every operation the server implements, schemathesis generates requests that follow the
document (positive) and requests that break it (negative), sends them to the ASGI app and runs
its checks: no 5xx, documented status codes and content types, response bodies (and each SSE
event) valid against the document, schema-breaking requests refused. Afterwards the server
must still be healthy, with nothing left in flight.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case

from s2a.local.server import ServerSettings, create_app
from tests.fake_engine import FakeEngine
from tests.ledger import record
from tests.openapi import SPEC_PATH

EXAMPLES = int(os.environ.get("S2A_FUZZ_EXAMPLES", "30"))
"""Requests per operation and mode: 30 in CI (about 10 s); set S2A_FUZZ_EXAMPLES for a deeper run."""

STRICT_BODIES = (
    "GenerateRequest",
    "CompatGenerateRequest",
    "GenerateParameters",
    "ChatRequest",
    "CompletionRequest",
)
"""Request bodies this server closes to unknown fields (422), as its docs say."""


def _oas30_bounds(node: Any) -> Any:
    """Numeric `exclusiveMinimum: 0` (JSON Schema 6) as OpenAPI 3.0 says it: `minimum: 0` + `true`.

    TGI's generator writes the newer form into a 3.0.3 document; schemathesis cannot build
    requests from it.
    """
    if isinstance(node, list):
        return [_oas30_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _oas30_bounds(value) for key, value in node.items()}
    for exclusive, bound, tighter in (
        ("exclusiveMinimum", "minimum", max),
        ("exclusiveMaximum", "maximum", min),
    ):
        value = node.get(exclusive)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[bound] = tighter(node[bound], value) if bound in node else value
            node[exclusive] = True
    return node


def _sse_payloads(document: dict[str, Any]) -> None:
    """Read a `text/event-stream` schema as TGI means it: the JSON in each event's `data`.

    Before OpenAPI 3.2, schemathesis takes such a schema to describe the event itself
    (`{"data": "...", "event": ...}`). The chat stream's last event, `data: [DONE]`, is not
    JSON; TGI sends it and the document does not mention it.
    """
    for operations in document["paths"].values():
        for operation in operations.values():
            for response in operation["responses"].values():
                media = (response.get("content") or {}).get("text/event-stream")
                if media is None:
                    continue
                payload = {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": media["schema"],
                }
                data = {"anyOf": [{"enum": ["[DONE]"]}, payload]}
                media["schema"] = {"type": "object", "required": ["data"], "properties": {"data": data}}


INCLUSIVE_AS_IN_TGI = {"GenerateParameters": ("seed", "top_n_tokens", "frequency_penalty")}
"""Bounds the document makes exclusive and TGI's validation does not: it accepts `seed: 0`,
`top_n_tokens: 0` (no top tokens) and `frequency_penalty: -2.0`; so does this server."""


def tgi_document() -> dict[str, Any]:
    """TGI's document, restated where schemathesis would misread it (see the helpers)."""
    document: dict[str, Any] = _oas30_bounds(json.loads(SPEC_PATH.read_text(encoding="utf-8")))
    _sse_payloads(document)
    for name, fields in INCLUSIVE_AS_IN_TGI.items():
        for field in fields:
            document["components"]["schemas"][name]["properties"][field].pop("exclusiveMinimum")
    # Without this, most "valid" requests carry invented fields, get 422 and never reach generation.
    for name in STRICT_BODIES:
        document["components"]["schemas"][name]["additionalProperties"] = False
    return document


SCHEMA = schemathesis.openapi.from_dict(tgi_document())

EXCLUDED_CHECKS = [
    # Requests the document allows and this server refuses with 422 on purpose, as TGI does
    # for some: `top_p: 1.0`, `best_of: 2`, `watermark`, unusable tools, images, unknown message fields.
    checks.positive_data_acceptance,
]

TOKENIZE = ("POST /tokenize", "POST /chat_tokenize")
"""TGI answers an invalid body with 422 here as on every route, though its document lists only 200
and 404; and, like TGI, these read only what they tokenize, so they do not refuse sampling
parameters out of range (a `temperature` of 0) that the generate routes refuse."""

STRING_PROMPT = ("POST /v1/completions", "POST /invocations")
"""The document types a completion's `prompt` as a list of strings; TGI also takes one string (as
OpenAI clients send it), and so does this server, so a string is no "negative" request here."""

SETTINGS = ServerSettings(
    model_id="fake/model", max_concurrent_requests=4, max_input_tokens=256, max_total_tokens=512
)


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[FastAPI, TestClient]]:
    """One app for the whole module, so whatever the fuzz does to it accumulates."""
    engine = FakeEngine()
    app = create_app(SETTINGS, lambda: engine)
    app.state.runtime.set_engine(engine)
    with TestClient(app) as client:
        yield app, client


def _targets() -> list[Any]:
    targets = []
    for result in SCHEMA.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        has_body = bool(operation.body)
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if has_body else [GenerationMode.POSITIVE]
        targets += [pytest.param(operation, mode, id=f"{operation.label}-{mode.value}") for mode in modes]
    return targets


def test_every_served_operation_is_fuzzed() -> None:
    labels = {operation.label for operation, _ in (param.values for param in _targets())}
    assert {"POST /generate", "POST /generate_stream", "POST /v1/chat/completions", "GET /health"} <= labels
    assert {"POST /v1/completions", "GET /v1/models", "POST /chat_tokenize", "POST /invocations"} <= labels


@pytest.mark.parametrize(("operation", "mode"), _targets())
def test_fuzz(fuzzed: tuple[FastAPI, TestClient], operation: Any, mode: GenerationMode) -> None:
    app, client = fuzzed
    excluded = list(EXCLUDED_CHECKS)
    if operation.label in TOKENIZE:
        excluded += [checks.status_code_conformance, checks.negative_data_rejection]
    if operation.label in STRING_PROMPT and mode is GenerationMode.NEGATIVE:
        excluded += [checks.negative_data_rejection]
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def one(case: Case[Any]) -> None:
        response = case.call(app=app)
        statuses.append(response.status_code)
        record(f"fuzz requests (schemathesis), {mode.value}")
        case.validate_response(response, excluded_checks=excluded)  # not_a_server_error included
        assert app.state.runtime.in_flight == 0

    one()
    assert statuses
    assert all(status < 500 for status in statuses)
    record("fuzz 5xx responses", sum(status >= 500 for status in statuses))
    # The server survives: healthy, nothing queued, and it still answers a plain request.
    assert client.get("/health").status_code == 200
    assert "tgi_queue_size 0.0" in client.get("/metrics").text
    reply = client.post("/generate", json={"inputs": "still here", "parameters": {"details": False}})
    assert reply.json() == {"generated_text": " echo still here"}
