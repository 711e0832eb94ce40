"""`S2ARunnable` over `tgi_chat_model` against a misbehaving server: `invoke`, `ainvoke`, streams.

The whole LangChain stack runs (ChatHuggingFace, HuggingFaceEndpoint, huggingface_hub,
httpx) over a real socket; only the server misbehaves.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_huggingface import ChatHuggingFace

from langchain_s2a import ContextQuestion, S2ARunnable, tgi_chat_model
from s2a import FallbackPolicy, S2AUnavailableError
from tests.faults.common import (
    CASES,
    CONTEXT,
    QUESTION,
    STREAM_CASES,
    TIMEOUT,
    WALL,
    Case,
    check_error,
    check_fallback,
    policy,
)
from tests.faults.misbehaving_tgi import Fault, MisbehavingTGI, refused_url

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

INPUT: ContextQuestion = {"context": CONTEXT, "question": QUESTION}


def runnable(
    url: str,
    fallback: FallbackPolicy,
    attempts: int = 3,
    *,
    streaming: bool = False,
    timeout: float = TIMEOUT,
) -> S2ARunnable:
    model = tgi_chat_model(url, timeout=timeout, connect_timeout=timeout)
    if streaming:
        model = model.model_copy(update={"streaming": True})
    return S2ARunnable(variant="separated", llm=model, fallback=fallback, retry=policy(attempts))


async def aclose(s2a: S2ARunnable) -> None:
    """Close the async client, which (unlike the sync one) owns its connections."""
    assert isinstance(s2a.llm, ChatHuggingFace)
    await s2a.llm.llm.async_client.close()


@pytest.mark.parametrize("case", CASES + STREAM_CASES, ids=str)
def test_invoke_raises_typed_or_falls_back(tgi: MisbehavingTGI, case: Case) -> None:
    streaming = case in STREAM_CASES
    tgi.faults = case.faults
    with pytest.raises(case.error) as caught:
        runnable(tgi.url, "raise", case.attempts, streaming=streaming, timeout=case.timeout).invoke(INPUT)
    check_error(caught.value, case, len(tgi.posts))
    tgi.faults = case.faults
    check_fallback(
        runnable(tgi.url, "original", case.attempts, streaming=streaming, timeout=case.timeout).invoke(INPUT),
        case,
    )
    assert all(seen.body is None or seen.body["stream"] is streaming for seen in tgi.posts)


@pytest.mark.parametrize("case", CASES + STREAM_CASES, ids=str)
async def test_ainvoke_raises_typed_or_falls_back(tgi: MisbehavingTGI, case: Case) -> None:
    s2a = runnable(tgi.url, "raise", case.attempts, streaming=case in STREAM_CASES, timeout=case.timeout)
    try:
        tgi.faults = case.faults
        with pytest.raises(case.error) as caught:
            await s2a.ainvoke(INPUT)
        check_error(caught.value, case, len(tgi.posts))
        tgi.faults = case.faults
        check_fallback(await s2a.model_copy(update={"fallback": "original"}).ainvoke(INPUT), case)
    finally:
        await aclose(s2a)


@pytest.mark.parametrize("fault", [Fault("partial_stream"), Fault("stream_error")], ids=lambda f: f.kind)
async def test_a_broken_stream_is_retried_to_a_whole_answer(tgi: MisbehavingTGI, fault: Fault) -> None:
    tgi.faults = [fault]
    s2a = runnable(tgi.url, "raise", streaming=True)
    try:
        result = await s2a.ainvoke(INPUT)
    finally:
        await aclose(s2a)
    assert result.fallback is None
    assert result.raw == tgi.reply  # the retried stream, not the broken one's first words
    assert len(tgi.posts) == 2


def test_a_stream_cut_at_a_close_is_not_taken_for_the_whole_answer(tgi: MisbehavingTGI) -> None:
    """Without chunked framing only the missing `finish_reason` and `[DONE]` show the cut."""
    tgi.faults = [Fault("partial_stream", chunked=False)]
    result = runnable(tgi.url, "original", streaming=True).invoke(f"{CONTEXT} {QUESTION}")
    assert result.fallback is not None or result.raw == tgi.reply, result
    assert result.question == QUESTION or result.fallback is not None


def test_refused_port_falls_back_fast() -> None:
    start = time.monotonic()
    result = runnable(refused_url(), "original").invoke(INPUT)
    assert time.monotonic() - start < 2 * TIMEOUT
    assert result.fallback is not None
    assert result.fallback.startswith("the S2A call failed: could not reach the model server after 3")
    assert (result.context, result.question) == (CONTEXT, QUESTION)
    with pytest.raises(S2AUnavailableError, match="Connection refused"):
        runnable(refused_url(), "raise").invoke(INPUT)


async def test_cancelling_ainvoke_propagates_and_never_falls_back(tgi: MisbehavingTGI) -> None:
    """With `fallback="original"`, a cancellation is still a cancellation, not a fallback."""
    tgi.faults = [Fault("hang")] * 3
    s2a = runnable(tgi.url, "original")
    assert isinstance(s2a.llm, ChatHuggingFace)
    s2a.llm.llm.async_client.timeout = WALL  # only the cancellation can end this call
    try:
        task = asyncio.create_task(s2a.ainvoke(INPUT))
        assert await asyncio.to_thread(tgi.hanging.wait, WALL / 4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(tgi.client_closed.wait, WALL / 4)
    finally:
        await aclose(s2a)
    assert len(tgi.posts) == 1
