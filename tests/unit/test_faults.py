"""Faults of the model call: classification, retries with backoff and Retry-After, fallback."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.documents import Document

from langchain_s2a import S2ADocumentCompressor, S2ARunnable, tgi_chat_model
from s2a import RetryPolicy, S2ACallError, S2ATimeoutError, S2AUnavailableError
from s2a._faults import acall_with_retries, call_with_retries, classify, redact
from tests.fake_tgi import FakeTGI, Fault

FAST = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.002, max_retry_after=0.01)
PROMPT = "Paris is in France. I think it is in Spain. Where is Paris?"
REWRITE = "Context: Paris is in France.\nQuestion: Where is Paris?"
REQUEST = httpx.Request("POST", "http://tgi.test/v1/chat/completions")


def status_error(code: int, **headers: str) -> httpx.HTTPStatusError:
    response = httpx.Response(code, headers=headers, request=REQUEST)
    return httpx.HTTPStatusError(f"HTTP {code}", request=REQUEST, response=response)


@pytest.mark.parametrize(
    ("exc", "kind", "status"),
    [
        (httpx.ConnectError("refused", request=REQUEST), "connection", None),
        (httpx.RemoteProtocolError("Server disconnected", request=REQUEST), "connection", None),
        (httpx.ReadTimeout("timed out", request=REQUEST), "timeout", None),
        (TimeoutError(), "timeout", None),
        (status_error(503), "status", 503),
        (status_error(422), "status", 422),
        (ValueError("bad"), "other", None),
    ],
)
def test_classify(exc: BaseException, kind: str, status: int | None) -> None:
    failure = classify(exc)
    assert (failure.kind, failure.status) == (kind, status)


def test_classify_reads_wrapped_errors_and_retry_after() -> None:
    try:
        try:
            raise status_error(429, **{"Retry-After": "7"})
        except httpx.HTTPStatusError as inner:
            raise RuntimeError("wrapped by a framework") from inner
    except RuntimeError as outer:
        failure = classify(outer)
    assert (failure.kind, failure.status, failure.retry_after) == ("status", 429, 7.0)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    assert policy.delay(1, classify(status_error(503, **{"Retry-After": "2"}))) == 2.0
    assert policy.delay(1, classify(status_error(503, **{"Retry-After": "600"}))) == 5.0
    assert policy.delay(1, classify(status_error(422))) is None  # not worth retrying
    assert policy.delay(3, classify(status_error(503))) is None  # attempts used up


@given(attempt=st.integers(1, 10), seed=st.integers(0, 1000))
def test_backoff_is_jittered_and_capped(attempt: int, seed: int) -> None:
    policy = RetryPolicy(attempts=20, backoff=0.5, max_backoff=4.0)
    wait = policy.delay(attempt, classify(TimeoutError()), random.Random(seed))  # noqa: S311 - jitter
    assert wait is not None
    assert 0.0 <= wait <= min(4.0, 0.5 * 2 ** (attempt - 1))


def scripted(*outcomes: Any) -> tuple[list[int], Any]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)

    return calls, call


def test_retries_until_success_then_gives_up_with_a_typed_error() -> None:
    sleeps: list[float] = []
    calls, call = scripted(TimeoutError(), status_error(503), "ok")
    assert call_with_retries(call, FAST, sleep=sleeps.append) == "ok"
    assert len(calls) == 3
    assert len(sleeps) == 2
    calls, call = scripted(*[httpx.ConnectError("refused", request=REQUEST)] * 3)
    with pytest.raises(S2AUnavailableError, match="after 3 attempts") as caught:
        call_with_retries(call, FAST, sleep=sleeps.append)
    assert caught.value.attempts == 3
    calls, call = scripted(httpx.ReadTimeout("slow", request=REQUEST), *[TimeoutError()] * 2)
    with pytest.raises(S2ATimeoutError, match="Raise the client's timeout"):
        call_with_retries(call, FAST, sleep=sleeps.append)
    calls, call = scripted(status_error(422), "never")
    with pytest.raises(S2ACallError, match="HTTP 422") as refused:
        call_with_retries(call, FAST, sleep=sleeps.append)
    assert len(calls) == 1
    assert refused.value.status == 422


async def test_cancelling_an_async_call_is_not_retried_or_swallowed() -> None:
    started: list[int] = []

    async def hang() -> str:
        started.append(1)
        await asyncio.sleep(60)
        return "never"

    task = asyncio.create_task(acall_with_retries(hang, FAST))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert started == [1]


def test_credentials_are_masked_in_messages() -> None:
    text = redact("GET http://user:hunter2@tgi.test/ failed; Authorization: Bearer sekret-token")
    assert "hunter2" not in text
    assert "sekret-token" not in text


def test_runnable_retries_a_dropped_call_over_the_real_client(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda _body: REWRITE
    fake_tgi.faults = [Fault("drop"), Fault("status", 503, {"Retry-After": "0"})]
    result = S2ARunnable(variant="separated", llm=tgi_chat_model("http://tgi.test"), retry=FAST).invoke(
        PROMPT
    )
    assert result.fallback is None
    assert result.context == "Paris is in France."
    assert len(fake_tgi.bodies("/v1/chat/completions")) == 3


async def test_a_failed_call_falls_back_to_the_original_flagged(fake_tgi: FakeTGI) -> None:
    fake_tgi.faults = [Fault("connect")] * 3
    s2a = S2ARunnable(variant="separated", llm=tgi_chat_model("http://tgi.test"), retry=FAST)
    result = await s2a.ainvoke({"context": "I bet Spain. Paris is in France.", "question": "Where is Paris?"})
    assert result.fallback is not None
    assert result.fallback.startswith("the S2A call failed: could not reach the model server")
    assert result.question == "Where is Paris?"  # never dropped
    assert "Where is Paris?" in result.prompt
    fake_tgi.faults = [Fault("timeout")] * 3
    with pytest.raises(S2ATimeoutError):
        s2a.model_copy(update={"fallback": "raise"}).invoke(PROMPT)


def test_an_error_inside_a_stream_is_a_call_failure(fake_tgi: FakeTGI) -> None:
    fake_tgi.faults = [Fault("stream_error")]
    streaming = tgi_chat_model("http://tgi.test").model_copy(update={"streaming": True})
    result = S2ARunnable(variant="separated", llm=streaming, retry=FAST).invoke(PROMPT)
    assert result.fallback is not None
    assert "CUDA out of memory" in result.fallback
    assert result.prompt == PROMPT


def test_compressor_keeps_a_failed_windows_documents(fake_tgi: FakeTGI) -> None:
    fake_tgi.faults = [Fault("status", 429)] * 3
    docs = [Document("Paris is in France.", id="a"), Document("Bananas are yellow.", id="b")]
    compressor = S2ADocumentCompressor(llm=tgi_chat_model("http://tgi.test"), retry=FAST)
    selected = compressor.select(docs, "Where is Paris?")
    assert selected.keep == [0, 1]
    assert selected.fallback is not None
    assert "overloaded (HTTP 429)" in selected.fallback
    fake_tgi.faults = [Fault("status", 429)] * 3
    with pytest.raises(S2AUnavailableError):
        compressor.model_copy(update={"fallback": "raise"}).compress_documents(docs, "Where is Paris?")


def test_api_key_is_sent_but_never_shown_and_hub_token_never_sent(
    fake_tgi: FakeTGI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_users_own_hub_token")
    fake_tgi.reply = lambda _body: REWRITE
    S2ARunnable(variant="separated", llm=tgi_chat_model("http://tgi.test")).invoke(PROMPT)
    assert "hf_users_own_hub_token" not in str(fake_tgi.headers[-1])
    model = tgi_chat_model("http://tgi.test", api_key="sekret-key")
    S2ARunnable(variant="separated", llm=model).invoke(PROMPT)
    assert fake_tgi.headers[-1]["authorization"] == "Bearer sekret-key"
    assert "sekret-key" not in repr(model)
    assert "sekret-key" not in repr(S2ARunnable(variant="separated", llm=model))
