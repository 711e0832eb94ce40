"""The one line every S2A step runs: split, requests, calls, parse, merge.

A plan (`s2a._windows.StepPlan` for a text, `s2a.selection.SelectionPlan` for retrieved
documents) has already split its input and built its requests, no I/O. This module makes the
calls, with retries, and hands every reply (or the error its call ended with) back to the
plan, which parses it and merges the parts:

    plan = plan_step(inp, config)                  # or plan_selection(texts, query, config)
    result = run_plan(plan, call, retry)           # or: await arun_plan(plan, acall, retry)

`call` is the adapter's: one model call for one request (`ModelCall`), returning a `Reply`.
Sync and async differ only in how it is awaited. A call that fails after its retries does not
stop the others: the plan's `read` decides, per its fallback policy, to keep that part of the
input as given (flagged) or to raise.

The driver also counts what the step cost and hands it to the plan's `merge`, which puts it on
the result (`S2AResult.cost`, `Selected.cost`): the calls sent (retries included), the rounds
(a wave sent together is one; the sync driver's unthreaded waves, one a call) and the tokens the
replies reported, cached prompt tokens included where the server says.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol, TypeVar

from s2a._errors import S2ACallError
from s2a._faults import RetryPolicy, acall_with_retries, call_with_retries
from s2a._types import ChatMessage, StepCost, TokenLogprob, TokenUsage


class Reply(NamedTuple):
    """The model's text and, when the backend reports them, its token usage and a cut-off."""

    text: str
    usage: TokenUsage | None = None
    truncated: bool = False
    """The backend stopped at its token limit (`finish_reason` `length`)."""
    logprobs: Sequence[TokenLogprob] | None = None
    """The reply's tokens with their alternatives, when asked for (`request.top_logprobs`) and given."""


Outcome = Reply | S2ACallError | None
"""What became of one request: the model's reply, the error its call ended with, or `None`
when it needed no call (`needs_llm` false)."""


class ModelCall(Protocol):
    """What an adapter needs to make one model call."""

    @property
    def messages(self) -> Sequence[ChatMessage]:
        """The chat messages to send."""
        ...

    @property
    def grammar(self) -> dict[str, Any] | None:
        """The reply's constraint in TGI's form, if any."""
        ...

    @property
    def top_logprobs(self) -> int:
        """Alternatives to report at each generated token; 0: none."""
        ...

    @property
    def max_new_tokens(self) -> int | None:
        """The most tokens the reply needs, when fewer than the caller's budget."""
        ...

    @property
    def needs_llm(self) -> bool:
        """Whether the model is called at all."""
        ...


CallT = TypeVar("CallT", bound=ModelCall)
ReadT = TypeVar("ReadT")
ResultT_co = TypeVar("ResultT_co", covariant=True)


class Plan(Protocol[CallT, ReadT, ResultT_co]):
    """An S2A step split into its requests, with no I/O: what `run_plan` drives."""

    @property
    def threaded(self) -> bool:
        """Whether the sync driver sends a wave's calls from threads, else one at a time, in order."""
        ...

    def waves(self) -> Sequence[Sequence[CallT]]:
        """The first requests, in the groups sent together, each group after the one before."""
        ...

    def read(self, call: CallT, outcome: Outcome) -> ReadT:
        """Parse one request's outcome, applying the fallback policy (which may raise)."""
        ...

    def rest(self, first: Sequence[ReadT]) -> Sequence[CallT]:
        """The requests that can be built only once the first are read (sent together)."""
        ...

    def merge(
        self, first: Sequence[ReadT], rest: Sequence[ReadT], cost: StepCost | None = None
    ) -> ResultT_co:
        """The step's result from every request's reading, in order, carrying what it cost."""
        ...


class _Meter:
    """The step's calls (retries included), its rounds of calls, and the usage each reply reported."""

    def __init__(self) -> None:
        self.calls = 0
        self.rounds = 0
        self.usages: list[TokenUsage] = []
        self._lock = threading.Lock()  # a threaded wave's calls return from several threads

    def round(self, requests: Sequence[ModelCall], *, together: bool) -> None:
        """Count a wave: one round when its calls go together, else one per call, each after the last."""
        sent = sum(1 for request in requests if request.needs_llm)
        self.rounds += min(sent, 1) if together else sent

    def reply(self, reply: Reply) -> Reply:
        with self._lock:
            self.calls += 1
            if reply.usage is not None:
                self.usages.append(reply.usage)
        return reply

    def failed(self) -> None:
        with self._lock:
            self.calls += 1

    def cost(self) -> StepCost:
        return StepCost.of(self.calls, self.rounds, self.usages)


def _outcome(request: CallT, call: Callable[[CallT], Reply], retry: RetryPolicy, meter: _Meter) -> Outcome:
    if not request.needs_llm:
        return None

    def metered() -> Reply:
        try:
            return meter.reply(call(request))
        except BaseException:
            meter.failed()
            raise

    try:
        return call_with_retries(metered, retry)
    except S2ACallError as error:
        return error


async def _aoutcome(
    request: CallT, call: Callable[[CallT], Awaitable[Reply]], retry: RetryPolicy, meter: _Meter
) -> Outcome:
    if not request.needs_llm:
        return None

    async def metered() -> Reply:
        try:
            return meter.reply(await call(request))
        except BaseException:
            meter.failed()
            raise

    try:
        return await acall_with_retries(metered, retry)
    except S2ACallError as error:
        return error


def run_plan(
    plan: Plan[CallT, ReadT, ResultT_co], call: Callable[[CallT], Reply], retry: RetryPolicy
) -> ResultT_co:
    """Make `plan`'s calls through `call` (each retried per `retry`), read them, and merge."""
    meter = _Meter()

    def wave(requests: Sequence[CallT]) -> list[ReadT]:
        meter.round(requests, together=plan.threaded)
        if plan.threaded and len(requests) > 1:
            with ThreadPoolExecutor(len(requests)) as pool:
                outcomes = list(pool.map(lambda request: _outcome(request, call, retry, meter), requests))
        else:
            outcomes = [_outcome(request, call, retry, meter) for request in requests]
        return [plan.read(request, outcome) for request, outcome in zip(requests, outcomes, strict=True)]

    first: list[ReadT] = []
    for requests in plan.waves():
        first += wave(requests)
    rest = wave(plan.rest(first))
    return plan.merge(first, rest, meter.cost())


async def arun_plan(
    plan: Plan[CallT, ReadT, ResultT_co], call: Callable[[CallT], Awaitable[Reply]], retry: RetryPolicy
) -> ResultT_co:
    """`run_plan`, with the calls of each wave made concurrently; cancelling it cancels them."""
    meter = _Meter()

    async def wave(requests: Sequence[CallT]) -> list[ReadT]:
        meter.round(requests, together=True)
        outcomes = await asyncio.gather(*(_aoutcome(request, call, retry, meter) for request in requests))
        return [plan.read(request, outcome) for request, outcome in zip(requests, outcomes, strict=True)]

    first: list[ReadT] = []
    for requests in plan.waves():
        first += await wave(requests)
    rest = await wave(plan.rest(first))
    return plan.merge(first, rest, meter.cost())
