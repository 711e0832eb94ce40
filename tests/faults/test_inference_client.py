"""`s2a.tgi`'s clients against a misbehaving server: the core's retries, errors and fallback.

Sync: `run_s2a` over `inference_client`, as the CLI runs it. Async: the core's `arun_plan`
over `async_inference_client`. Each fault repeats until the policy gives up; the server's
count of requests must be the error's count of attempts (no hidden retry layer below).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from huggingface_hub import AsyncInferenceClient

from s2a import Decoding, FallbackPolicy, RetryPolicy, S2AConfig, S2AInput, S2AResult, S2AUnavailableError
from s2a._client import run_s2a
from s2a._faults import acall_with_retries
from s2a._steps import Reply, arun_plan
from s2a._windows import plan_step
from s2a.tgi import async_inference_client, inference_client
from s2a.variants import S2ARequest
from tests.faults.common import (
    CASES,
    CONTEXT,
    QUESTION,
    RETRYABLE,
    TIMEOUT,
    WALL,
    Case,
    check_error,
    check_fallback,
    policy,
)
from tests.faults.misbehaving_tgi import Fault, MisbehavingTGI, refused_url

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

S2A_INPUT = S2AInput(context=CONTEXT, question=QUESTION)


def run_sync(url: str, fallback: FallbackPolicy, retry: RetryPolicy, timeout: float = TIMEOUT) -> S2AResult:
    client = inference_client(url, timeout=timeout, connect_timeout=timeout)
    return run_s2a(client, S2A_INPUT, S2AConfig(variant="separated", fallback=fallback), Decoding(), retry)


async def chat(client: AsyncInferenceClient, request: S2ARequest) -> Reply:
    """`s2a._client.chat`, awaited (the core has no async twin of it)."""
    output = await client.chat_completion(messages=[dict(m) for m in request.messages], temperature=0.0)
    return Reply(output.choices[0].message.content or "")


async def run_async(
    url: str, fallback: FallbackPolicy, retry: RetryPolicy, timeout: float = TIMEOUT
) -> S2AResult:
    client = async_inference_client(url, timeout=timeout, connect_timeout=timeout)
    try:
        plan = plan_step(S2A_INPUT, S2AConfig(variant="separated", fallback=fallback))
        return await arun_plan(plan, lambda request: chat(client, request), retry)
    finally:
        await client.close()  # type: ignore[no-untyped-call] # huggingface_hub leaves it unannotated


@pytest.mark.parametrize("case", CASES, ids=str)
def test_sync_fault_raises_typed_or_falls_back(tgi: MisbehavingTGI, case: Case) -> None:
    tgi.faults = case.faults
    with pytest.raises(case.error) as caught:
        run_sync(tgi.url, "raise", policy(case.attempts), case.timeout)
    check_error(caught.value, case, len(tgi.posts))
    tgi.faults = case.faults
    check_fallback(run_sync(tgi.url, "original", policy(case.attempts), case.timeout), case)
    assert len(tgi.posts) == 2 * case.attempts


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_async_fault_raises_typed_or_falls_back(tgi: MisbehavingTGI, case: Case) -> None:
    tgi.faults = case.faults
    with pytest.raises(case.error) as caught:
        await run_async(tgi.url, "raise", policy(case.attempts), case.timeout)
    check_error(caught.value, case, len(tgi.posts))
    tgi.faults = case.faults
    check_fallback(await run_async(tgi.url, "original", policy(case.attempts), case.timeout), case)
    assert len(tgi.posts) == 2 * case.attempts


@pytest.mark.parametrize("case", RETRYABLE, ids=str)
def test_one_fault_is_retried_to_success(tgi: MisbehavingTGI, case: Case) -> None:
    tgi.faults = [case.fault]
    result = run_sync(tgi.url, "raise", policy())
    assert result.fallback is None
    assert result.context == "Paris is in France."
    first, second = tgi.posts
    assert first.body in (None, second.body)  # the same call, sent again (None: body never read)
    if case.fault.kind != "status":  # the failed connection is not reused
        assert first.connection != second.connection


def test_retry_after_is_honoured_up_to_the_policys_cap(tgi: MisbehavingTGI) -> None:
    """The server asks for 1 s; the policy cuts it to 0.25 s, not to its ~1 ms backoff."""
    tgi.faults = [Fault("status", 503, retry_after="1")]
    assert run_sync(tgi.url, "raise", policy()).fallback is None
    first, second = tgi.posts
    assert 0.25 <= second.at - first.at < 1.0


def test_refused_port_fails_fast_as_unavailable() -> None:
    start = time.monotonic()
    with pytest.raises(
        S2AUnavailableError, match="could not reach the model server after 3 attempts"
    ) as caught:
        run_sync(refused_url(), "raise", policy())
    assert time.monotonic() - start < 2 * TIMEOUT  # refused at once: no timeout was waited for
    assert caught.value.attempts == 3
    assert "Connection refused" in str(caught.value)
    assert "Check the URL and that the server is running" in str(caught.value)


async def test_async_refused_port_falls_back_fast() -> None:
    start = time.monotonic()
    result = await run_async(refused_url(), "original", policy())
    assert time.monotonic() - start < 2 * TIMEOUT
    assert result.fallback is not None
    assert result.fallback.startswith("the S2A call failed: could not reach the model server after 3")
    assert (result.context, result.question) == (CONTEXT, QUESTION)


async def test_cancelling_a_call_in_flight_closes_it_and_never_retries(tgi: MisbehavingTGI) -> None:
    tgi.faults = [Fault("hang")] * 3
    client = async_inference_client(tgi.url, timeout=WALL, connect_timeout=TIMEOUT)
    messages = [{"role": "user", "content": QUESTION}]
    try:
        task = asyncio.create_task(acall_with_retries(lambda: client.chat_completion(messages), policy()))
        assert await asyncio.to_thread(tgi.hanging.wait, WALL / 4)  # the request is on the server
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The connection is closed by the cancellation itself, before the client is.
        assert await asyncio.to_thread(tgi.client_closed.wait, WALL / 4)
    finally:
        await client.close()  # type: ignore[no-untyped-call] # huggingface_hub leaves it unannotated
    assert len(tgi.posts) == 1
    assert tgi.connections == 1
