"""The local server's guard: the optional Bearer API key (401) and the payload limit (413).

Both are TGI launcher options (`--api-key`, `--payload-limit`); refusals have TGI's error shape.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from s2a.cli import app as cli_app
from s2a.local.guard import DEFAULT_PAYLOAD_LIMIT, RequestGuard
from s2a.local.serve import LocalOptions
from s2a.local.server import ServerSettings, create_app
from tests.fake_engine import FakeEngine
from tests.unit.test_local_server import wait_ready

KEY = "s3cr3t-key-4f1c"
BODY = {"inputs": "hello there", "parameters": {"details": False, "max_new_tokens": 2}}


def settings(**overrides: object) -> ServerSettings:
    base: dict[str, object] = {
        "model_id": "fake/model",
        "max_concurrent_requests": 4,
        "max_input_tokens": 32,
        "max_total_tokens": 48,
    }
    return ServerSettings(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def keyed() -> Iterator[TestClient]:
    with TestClient(create_app(settings(api_key=SecretStr(KEY)), FakeEngine)) as client:
        wait_ready(client)
        yield client


def test_without_a_key_every_route_is_open() -> None:
    with TestClient(create_app(settings(), FakeEngine)) as client:
        wait_ready(client)
        assert client.post("/generate", json=BODY).status_code == 200
        assert client.get("/info").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", f"Basic {KEY}", "Bearer", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}"],
)
def test_a_request_without_the_right_key_gets_401_in_tgis_shape(
    keyed: TestClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for method, path in (("POST", "/generate"), ("POST", "/v1/chat/completions"), ("GET", "/info")):
        response = keyed.request(method, path, json=BODY if method == "POST" else None, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert body["error_type"] == "unauthorized"
        assert "Authorization: Bearer" in body["error"]
        assert KEY not in response.text


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_right_key_is_let_through(keyed: TestClient, scheme: str) -> None:
    response = keyed.post("/generate", json=BODY, headers={"Authorization": f"{scheme} {KEY}"})
    assert response.status_code == 200
    assert response.json()["generated_text"]


def test_health_stays_open_for_probes_and_metrics_do_not(keyed: TestClient) -> None:
    assert keyed.get("/health").status_code == 200
    assert keyed.get("/metrics").status_code == 401
    assert keyed.post("/health").status_code == 401  # only GET /health is open


def test_the_key_never_shows_in_logs_reprs_or_errors(
    keyed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    refused = keyed.post("/generate", json=BODY, headers={"Authorization": f"Bearer {KEY}-not"})
    accepted = keyed.post("/generate", json=BODY, headers={"Authorization": f"Bearer {KEY}"})
    assert (refused.status_code, accepted.status_code) == (401, 200)
    assert "missing or wrong API key" in caplog.text
    options = LocalOptions(api_key=SecretStr(KEY))
    shown = [caplog.text, refused.text, repr(options), str(options), repr(settings(api_key=SecretStr(KEY)))]
    shown.append(options.model_dump_json())
    assert all(KEY not in text for text in shown)


def test_a_body_over_the_limit_gets_413_whether_declared_or_chunked() -> None:
    limit = 200
    with TestClient(create_app(settings(payload_limit=limit), FakeEngine)) as client:
        wait_ready(client)
        big = b'{"inputs": "' + b"a" * limit + b'"}'
        declared = client.post("/generate", content=big, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413
        assert declared.json()["error_type"] == "payload_limit"
        assert str(limit) in declared.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the guard counts as it reads
            yield from (big[i : i + 50] for i in range(0, len(big), 50))

        chunked = client.post("/generate", content=chunks(), headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413
        # A body at the limit reaches the route, and the server still answers afterwards.
        small = b'{"inputs": "' + b"a" * (limit - 14) + b'"}'
        assert len(small) == limit
        assert client.post(
            "/generate", content=small, headers={"Content-Type": "application/json"}
        ).status_code in {
            200,
            422,
        }
        assert client.post("/generate", json=BODY).status_code == 200


def test_the_default_limit_is_tgis() -> None:
    assert DEFAULT_PAYLOAD_LIMIT == 2_000_000
    assert ServerSettings(model_id="m").payload_limit == DEFAULT_PAYLOAD_LIMIT
    assert LocalOptions().payload_limit == DEFAULT_PAYLOAD_LIMIT


def test_a_body_that_is_not_utf8_is_a_validation_error_not_a_500() -> None:
    with TestClient(create_app(settings(), FakeEngine)) as client:
        wait_ready(client)
        response = client.post(
            "/generate", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json()["error_type"] == "validation"


@pytest.mark.parametrize(("key", "limit"), [("", 10), (" padded", 10), ("ok", 0)])
def test_the_guard_refuses_settings_no_request_could_meet(key: str, limit: int) -> None:
    with pytest.raises(ValueError, match=r"API key|payload limit"):
        RequestGuard(create_app(settings(), FakeEngine), api_key=SecretStr(key), payload_limit=limit)


def test_serve_refuses_a_key_with_whitespace_and_listens_on_loopback_by_default() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--api-key", " padded"])
    assert result.exit_code == 2
    assert "whitespace" in result.output
    serve = next(
        c.callback for c in cli_app.registered_commands if c.callback and c.callback.__name__ == "serve"
    )
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
