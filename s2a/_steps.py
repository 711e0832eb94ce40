"""Driving one S2A step: prepare, call (with retries), finish, falling back on a failed call.

The adapters hand in the model call; sync and async differ only in how it is awaited. A
context too long for one window is run part by part (`s2a._windows`): `run_plan`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from s2a._errors import S2ACallError
from s2a._faults import RetryPolicy, acall_with_retries, call_with_retries
from s2a._types import S2AResult, TokenLogprob, TokenUsage
from s2a._windows import StepPlan
from s2a.variants import S2ARequest, finish, original_result

logger = logging.getLogger(__name__)


class Reply(NamedTuple):
    """The model's text and, when the backend reports them, its token usage and a cut-off."""

    text: str
    usage: TokenUsage | None = None
    truncated: bool = False
    """The backend stopped at its token limit (`finish_reason` `length`)."""
    logprobs: Sequence[TokenLogprob] | None = None
    """The reply's tokens with their alternatives, when asked for (`request.top_logprobs`) and given."""


def call_failed(request: S2ARequest, error: S2ACallError) -> S2AResult:
    """The result when the model call failed: the original input, flagged, or the error raised.

    Raises:
        S2ACallError: `error`, when the policy is `fallback="raise"`.

    """
    if request.config.fallback == "raise":
        raise error
    logger.warning("S2A call failed (%s); keeping the original context", error)
    return original_result(request, f"the S2A call failed: {error}")


def run_step(request: S2ARequest, call: Callable[[S2ARequest], Reply], retry: RetryPolicy) -> S2AResult:
    """Run `request` through `call` (retried per `retry`) and read the reply."""
    if not request.needs_llm:
        return finish(request)
    try:
        reply = call_with_retries(lambda: call(request), retry)
    except S2ACallError as error:
        return call_failed(request, error)
    return finish(request, reply.text, reply.usage, truncated=reply.truncated, logprobs=reply.logprobs)


async def arun_step(
    request: S2ARequest, call: Callable[[S2ARequest], Awaitable[Reply]], retry: RetryPolicy
) -> S2AResult:
    """`run_step`, awaiting `call`; cancelling it cancels the call in flight."""
    if not request.needs_llm:
        return finish(request)
    try:
        reply = await acall_with_retries(lambda: call(request), retry)
    except S2ACallError as error:
        return call_failed(request, error)
    return finish(request, reply.text, reply.usage, truncated=reply.truncated, logprobs=reply.logprobs)


def run_plan(plan: StepPlan, call: Callable[[S2ARequest], Reply], retry: RetryPolicy) -> S2AResult:
    """Run every part of `plan` (one request when the context fits) and merge the results.

    One call at a time, in order, except the per-sentence calls of `scored` that
    `plan.waves()` groups together: those go from threads, so that a batching server
    decodes them together.
    """
    first: list[S2AResult] = []
    for wave in plan.waves():
        if plan.units and len(wave) > 1:
            with ThreadPoolExecutor(len(wave)) as pool:
                first += pool.map(lambda request: run_step(request, call, retry), wave)
        else:
            first += [run_step(request, call, retry) for request in wave]
    rest = [run_step(request, call, retry) for request in plan.rest(first)]
    return plan.merge(first, rest)


async def arun_plan(
    plan: StepPlan, call: Callable[[S2ARequest], Awaitable[Reply]], retry: RetryPolicy
) -> S2AResult:
    """`run_plan`, with the parts of each stage (each of `plan.waves()`) called concurrently."""
    first: list[S2AResult] = []
    for wave in plan.waves():
        first += await asyncio.gather(*(arun_step(request, call, retry) for request in wave))
    rest = await asyncio.gather(*(arun_step(request, call, retry) for request in plan.rest(first)))
    return plan.merge(first, rest)
