"""The server's API key never shows: not in reprs, dumps, logs, error messages or CLI output.

The server side (the local server's key) is in test_local_server_guard.py.
"""

from __future__ import annotations

import logging

import pytest
from langchain_core.load import dumpd, dumps
from pydantic import SecretStr
from typer.testing import CliRunner

from langchain_s2a import S2ARunnable, tgi_chat_model
from llamaindex_s2a import S2ANodePostprocessor, tgi_llm
from s2a import NO_RETRY, S2ACallError, S2AConfig, S2AInput, S2AUnavailableError
from s2a._client import run_s2a
from s2a.cli import app
from s2a.tgi import Decoding, inference_client
from tests.fake_tgi import FakeTGI, Fault

KEY = "tgi-key-0d2b7c9e51"
PROMPT = "Paris is in France. I think it is in Spain. Where is Paris?"


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # httpx, httpcore, huggingface_hub, s2a: every logger
    return caplog


@pytest.mark.parametrize("key", [KEY, SecretStr(KEY)], ids=["str", "SecretStr"])
def test_the_key_is_in_no_repr_or_serialisation(fake_tgi: FakeTGI, key: str | SecretStr) -> None:
    chat = tgi_chat_model("http://tgi.test", api_key=key)
    llm = tgi_llm("http://tgi.test", api_key=key)
    shown = [
        repr(chat),
        str(chat),
        dumps(chat),
        str(dumpd(chat)),
        repr(S2ARunnable(llm=chat)),
        dumps(S2ARunnable(llm=chat)),
        repr(llm),
        llm.to_json(),
        repr(S2ANodePostprocessor(llm=llm)),
        repr(inference_client("http://tgi.test", api_key=key)),
    ]
    assert all(KEY not in text for text in shown)
    assert fake_tgi.headers[-1]["authorization"] == f"Bearer {KEY}"  # it was sent, to the server


@pytest.mark.parametrize("status", [401, 403, 503])
def test_a_refused_call_names_the_failure_not_the_key(
    fake_tgi: FakeTGI, everything_logged: pytest.LogCaptureFixture, status: int
) -> None:
    fake_tgi.faults = [Fault("status", status=status)] * 3
    s2a = S2ARunnable(llm=tgi_chat_model("http://tgi.test", api_key=KEY), retry=NO_RETRY)
    flagged = s2a.invoke(PROMPT)
    assert flagged.fallback is not None
    assert str(status) in flagged.fallback
    with pytest.raises(S2ACallError) as raised:
        s2a.model_copy(update={"fallback": "raise"}).invoke(PROMPT)
    texts = [flagged.fallback, str(raised.value), repr(raised.value), everything_logged.text]
    texts += [str(link) for link in (raised.value.__cause__, raised.value.failure.error) if link]
    assert fake_tgi.headers[-1]["authorization"] == f"Bearer {KEY}"
    assert all(KEY not in text for text in texts)


def test_the_core_client_keeps_the_key_out_of_errors(
    fake_tgi: FakeTGI, everything_logged: pytest.LogCaptureFixture
) -> None:
    fake_tgi.refuse = True
    client = inference_client("http://tgi.test", api_key=SecretStr(KEY))
    with pytest.raises(S2AUnavailableError) as raised:
        run_s2a(client, S2AInput(context=PROMPT), S2AConfig(fallback="raise"), Decoding(), NO_RETRY)
    assert KEY not in str(raised.value)
    assert KEY not in everything_logged.text


def test_the_cli_never_prints_the_key(fake_tgi: FakeTGI) -> None:
    fake_tgi.faults = [Fault("status", status=401)] * 10
    url = "http://tgi.test"
    for args in (["--api-key", KEY], []):
        result = CliRunner().invoke(
            app, ["run", PROMPT, "--tgi-url", url, "--attempts", "1", *args], env={"S2A_API_KEY": KEY}
        )
        assert result.exit_code == 1
        assert "401" in result.output
        assert KEY not in result.output
    assert fake_tgi.headers[-1]["authorization"] == f"Bearer {KEY}"  # from the environment
