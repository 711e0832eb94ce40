"""The test server itself: its healthy answers are TGI's, and only 127.0.0.1 can be reached."""

from __future__ import annotations

import socket

import pytest
from pytest_socket import SocketConnectBlockedError

from s2a import Decoding, S2AConfig, S2AInput
from s2a._client import run_s2a
from s2a.tgi import inference_client
from tests.faults.common import CONTEXT, QUESTION, TIMEOUT, policy
from tests.faults.misbehaving_tgi import INFO, MisbehavingTGI, chat_chunk, chat_completion, error_body
from tests.openapi import validate, validate_named

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


def test_healthy_answers_match_tgis_openapi() -> None:
    validate(INFO, "/info", "get", 200)
    validate(chat_completion("Context: x\nQuestion: y"), "/v1/chat/completions", "post", 200)
    validate_named(chat_chunk("x", "stop"), "ChatCompletionChunk")
    for status in (422, 424, 429, 500):
        validate(error_body(status), "/v1/chat/completions", "post", status)


def test_a_healthy_call_goes_over_the_socket(tgi: MisbehavingTGI) -> None:
    client = inference_client(tgi.url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
    result = run_s2a(
        client,
        S2AInput(context=CONTEXT, question=QUESTION),
        S2AConfig(variant="separated"),
        Decoding(),
        policy(),
    )
    assert result.fallback is None
    assert result.context == "Paris is in France."
    (seen,) = tgi.posts
    assert (seen.method, seen.path, tgi.connections) == ("POST", "/v1/chat/completions", 1)
    assert seen.body is not None
    assert seen.body["messages"][-1]["role"] == "user"


def test_only_loopback_can_be_reached(loopback_only: list[str]) -> None:
    """127.0.0.2 is loopback too, so even a broken guard would send nothing off the machine."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.warns(UserWarning, match="127.0.0.2"),
        pytest.raises(SocketConnectBlockedError),
    ):
        sock.connect(("127.0.0.2", 9))
    assert loopback_only == ["127.0.0.2"]  # recorded: the fixture would fail the test
    loopback_only.clear()
