"""The S2A step for one text: split it if it must, build the requests, read and merge the replies.

This is the line every S2A step runs, with no I/O here (`s2a._steps.run_plan` makes the calls):

    plan = plan_step(inp, config, window_tokens=7000)
    result = run_plan(plan, call, retry)       # waves -> read each reply -> rest -> merge

The variant decides every step through its hooks (`s2a.variants.Variant`); this module asks,
and never looks at which variant it is.

1. **Split.** Nothing is cut. A context whose S2A prompt exceeds `window_tokens` is split at
   sentence boundaries (a sentence longer than a whole window at word boundaries) into parts
   that fit (`s2a._parts`); each part is one request (`Variant.part`).
2. **Requests.** When the question is known before any call (the caller's, or the one a
   variant finds in the text's structure), every part is sent at once. When it is inside the
   context and only the model's reply says it, the last part goes first: it holds the end of
   the prompt, where the question is; the question it yields is then given to the other parts
   (`rest`). If it yields none, the whole input is kept, flagged (unless the variant needs
   none: `Variant.needs_question`).
3. **Calls.** A variant may fan a request out into several calls (`Variant.calls`: `scored`,
   one call per sentence); `waves` says which go together.
4. **Read.** Each reply is parsed (`finish`, through `Variant.parse`), or its call's failure is applied
   per the fallback policy: a part whose call fails or whose reply is unusable keeps its
   original text, flagged, as a single call would.
5. **Merge.** A fanned-out request's results fold into one (`Variant.fold`), then the parts'
   results merge in order (`Variant.merge`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from s2a._errors import CALL_FAILED, S2ACallError, S2AParseError
from s2a._parsing import Unusable
from s2a._parts import Part, approx_tokens, prompt_tokens, split_parts
from s2a._sentences import Span, sentence_spans
from s2a._steps import Outcome
from s2a._types import S2AInput, S2AResult, StepCost, TokenLogprob, TokenUsage
from s2a.variants import VARIANTS, S2AConfig, S2ARequest, Variant, original_result
from s2a.variants._base import PartBuilder, Reading, found_question, reading_result

logger = logging.getLogger(__name__)

__all__ = [
    "QUESTION_SHARE",
    "StepPlan",
    "approx_tokens",
    "call_failed",
    "finish",
    "plan_step",
    "prepare",
    "request_tokens",
]

QUESTION_SHARE = 4
"""When the question is inside the context, 1/this of each window is kept for it."""


def request_tokens(request: S2ARequest, count_tokens: Callable[[str], int] = approx_tokens) -> int:
    """The size of the S2A call's prompt: every message's content."""
    return prompt_tokens(request.messages, count_tokens)


def _part(whole: S2ARequest, part: Part, question: str | None) -> S2ARequest:
    """One part's request: its text, its sentences, its question sentences, the question if known."""
    text = whole.input.context[part.span.start : part.span.end]
    asks = tuple(u for u, number in enumerate(part.sentences) if number - 1 in whole.asks)
    return _part_builder(whole)(whole, text, part.spans, asks, question)


def _part_builder(whole: S2ARequest) -> PartBuilder:
    build = VARIANTS[whole.config.variant].part
    if build is None:
        msg = f"the {whole.config.variant!r} variant cannot run on a part of a context"
        raise ValueError(msg)
    return build


def _budget(whole: S2ARequest, window_tokens: int, count_tokens: Callable[[str], int]) -> int:
    """Tokens left for the context in one window, after the prompt around it."""
    probe = "x"
    request = _part_builder(whole)(whole, probe, (Span(0, len(probe)),), (), whole.known_question)
    fixed = prompt_tokens(request.messages, count_tokens) - count_tokens(probe)
    budget = window_tokens - fixed
    if whole.known_question is None:
        budget -= budget // QUESTION_SHARE
    if budget < 1:
        msg = (
            f"window_tokens={window_tokens} leaves no room for the context: the S2A prompt "
            f"around it takes about {fixed} tokens"
        )
        raise ValueError(msg)
    return budget


@dataclass(frozen=True)
class StepPlan:
    """The S2A calls for one input: one request, or one per part of a context too long for one."""

    input: S2AInput
    config: S2AConfig
    whole: S2ARequest
    """The request for the whole input, as if it fitted one window."""
    parts: tuple[Part, ...]
    """The parts of `input.context`, in order; none when no split was needed."""
    first: tuple[S2ARequest, ...]
    """The requests to run first: every part's, or (question unknown) the last part's; or, when
    the variant fans them out (`Variant.calls`), their calls."""
    sources: tuple[S2ARequest, ...] = ()
    """When the variant fans requests out: the requests whose calls `first` holds."""
    groups: tuple[int, ...] = ()
    """For each call in `first`, the index of its request in `sources`."""

    @property
    def threaded(self) -> bool:
        """Whether the sync path sends a wave from threads: only fanned-out calls.

        So a batching server decodes them together; the parts of other plans go one at a
        time, in order.
        """
        return bool(self.sources)

    def waves(self) -> tuple[tuple[S2ARequest, ...], ...]:
        """`first` in the groups sent together, each after the one before.

        Fanned-out calls: the first alone, leaving the prefix the per-sentence calls share in
        the server's prompt cache, then `config.scored_concurrency` at a time. Other plans: one
        group.
        """
        if not self.sources:
            return (self.first,)
        head, tail, size = self.first[:1], self.first[1:], self.config.scored_concurrency
        return (head, *(tail[i : i + size] for i in range(0, len(tail), size)))

    def read(self, request: S2ARequest, outcome: Outcome) -> S2AResult:
        """One request's result from its reply (`None`: it needed no call), or its fallback.

        Raises:
            S2ACallError: the call failed and the policy is `fallback="raise"`.
            S2AParseError: the reply is unusable and the policy is `fallback="raise"`.

        """
        if outcome is None:
            return finish(request)
        if isinstance(outcome, S2ACallError):
            return call_failed(request, outcome)
        return finish(
            request, outcome.text, outcome.usage, truncated=outcome.truncated, logprobs=outcome.logprobs
        )

    @property
    def split(self) -> bool:
        """Whether the context was split into several parts."""
        return len(self.parts) > 1

    @property
    def at_once(self) -> bool:
        """Whether every part is sent in `first`: the question is known before any call."""
        return self.whole.known_question is not None

    def rest(self, first: Sequence[S2AResult]) -> tuple[S2ARequest, ...]:
        """The requests to run once `first` has results (empty when there is nothing more)."""
        if not self.split or self.at_once:
            return ()
        question = found_question(self.whole, first)
        if question is None and VARIANTS[self.config.variant].needs_question:
            return ()
        return tuple(_part(self.whole, part, question) for part in self.parts[:-1])

    def merge(
        self, first: Sequence[S2AResult], rest: Sequence[S2AResult] = (), cost: StepCost | None = None
    ) -> S2AResult:
        """The whole input's result from its parts' results, in the order of the parts, with `cost`."""
        merged = self._merge(first, rest)
        return merged if cost is None else merged.model_copy(update={"cost": cost})

    def _merge(self, first: Sequence[S2AResult], rest: Sequence[S2AResult]) -> S2AResult:
        variant = VARIANTS[self.config.variant]
        if self.sources:
            first = [self._fold(variant, k, source, first) for k, source in enumerate(self.sources)]
        if not self.split:
            (result,) = first
            return result
        if variant.merge is None:
            msg = f"the {variant.name!r} variant cannot merge the parts of a context"
            raise ValueError(msg)
        return variant.merge(self.whole, self.parts, list(first) if self.at_once else [*rest, *first])

    def _fold(self, variant: Variant, k: int, source: S2ARequest, results: Sequence[S2AResult]) -> S2AResult:
        """Request `k`'s result from its calls' results (a request that needed no call: as it is)."""
        if not source.needs_llm or variant.fold is None:
            return finish(source)
        mine = [i for i, group in enumerate(self.groups) if group == k]
        return variant.fold(source, [self.first[i] for i in mine], [results[i] for i in mine])


def call_failed(request: S2ARequest, error: S2ACallError) -> S2AResult:
    """The result when the model call failed: the original input, flagged, or the error raised.

    Raises:
        S2ACallError: `error`, when the policy is `fallback="raise"`.

    """
    if request.config.fallback == "raise":
        raise error
    logger.warning("S2A call failed (%s); keeping the original context", error)
    return original_result(request, f"{CALL_FAILED}: {error}")


def plan_step(
    inp: S2AInput,
    config: S2AConfig | None = None,
    *,
    window_tokens: int | None = None,
    count_tokens: Callable[[str], int] = approx_tokens,
) -> StepPlan:
    """Plan the S2A calls for `inp`, splitting its context if its prompt exceeds `window_tokens`.

    Raises:
        ValueError: `window_tokens` is too small to hold the S2A prompt around any context.

    """
    plan = _plan(inp, config or S2AConfig(), window_tokens, count_tokens)
    fan_out = VARIANTS[plan.config.variant].calls
    if fan_out is None:
        return plan
    calls = [(k, call) for k, request in enumerate(plan.first) for call in fan_out(request)]
    if [call for _, call in calls] == [request for request in plan.first if request.needs_llm]:
        return plan  # one call a request (`scored_calls="one"`, `focus="relevance"`): nothing to fold
    return replace(
        plan, sources=plan.first, first=tuple(c for _, c in calls), groups=tuple(k for k, _ in calls)
    )


def _plan(
    inp: S2AInput, config: S2AConfig, window_tokens: int | None, count_tokens: Callable[[str], int]
) -> StepPlan:
    whole = prepare(inp, config)
    if window_tokens is None or not whole.needs_llm or request_tokens(whole, count_tokens) <= window_tokens:
        return StepPlan(input=inp, config=config, whole=whole, parts=(), first=(whole,))
    spans = whole.spans or tuple(sentence_spans(inp.context))  # extractive has split it already
    budget = _budget(whole, window_tokens, count_tokens)
    parts = tuple(split_parts(inp.context, spans, budget, count_tokens))
    if len(parts) <= 1:
        return StepPlan(input=inp, config=config, whole=whole, parts=(), first=(whole,))
    logger.info("S2A: the context is split into %d parts to fit %d tokens", len(parts), window_tokens)
    question = whole.known_question
    first_parts = parts if question is not None else parts[-1:]
    return StepPlan(
        input=inp,
        config=config,
        whole=whole,
        parts=parts,
        first=tuple(_part(whole, p, question) for p in first_parts),
    )


def prepare(inp: S2AInput, config: S2AConfig | None = None) -> S2ARequest:
    """Build the S2A call for `inp` (no I/O). Check `request.needs_llm` before calling a model.

    Raises:
        TypeError: `inp` is not an `S2AInput`, or `config` not an `S2AConfig`.

    """
    if not isinstance(inp, S2AInput):
        msg = f"prepare() takes an S2AInput as `inp`, got {type(inp).__name__}: wrap text in S2AInput(...)"
        raise TypeError(msg)
    if config is not None and not isinstance(config, S2AConfig):
        msg = f"prepare() takes an S2AConfig as `config`, got {type(config).__name__}"
        raise TypeError(msg)
    config = config or S2AConfig()
    variant = VARIANTS[config.variant]
    if variant.build is None or (not inp.context.strip() and not variant.finds_question):
        return S2ARequest(input=inp, config=config)
    return variant.build(inp, config)


def _result(variant: Variant, request: S2ARequest, outcome: Reading, **extra: Any) -> S2AResult:
    prompt = outcome.prompt
    if prompt is None:
        prompt = variant.answer(request.config.prompts, request.input, outcome.context, outcome.question)
    return reading_result(request, outcome, prompt=prompt, **extra)


def finish(
    request: S2ARequest,
    output: str | None = None,
    usage: TokenUsage | None = None,
    *,
    truncated: bool = False,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> S2AResult:
    """Read the model's `output` for `request` and build the result, applying the fallback policy.

    `logprobs` are the reply's tokens with their alternatives, when the backend reports them
    (`scored` reads P(keep) from them; without them it reads the decisions as written).

    `truncated` says the backend stopped the reply at its token limit (TGI's `finish_reason`
    `length`): such a reply is not used, since the part cut off may be what had to be kept.

    Raises:
        S2AParseError: the output is unusable and the policy is `fallback="raise"`.
        ValueError: `output` is missing although the request needed a model call.
        TypeError: `request` is not an `S2ARequest`, or `output` is not a str.

    """
    if not isinstance(request, S2ARequest):
        msg = f"finish() takes the S2ARequest from prepare() as `request`, got {type(request).__name__}"
        raise TypeError(msg)
    if output is not None and not isinstance(output, str):
        msg = f"finish() takes the model's reply text as `output`, got {type(output).__name__}"
        raise TypeError(msg)
    variant = VARIANTS[request.config.variant]
    if not request.needs_llm:
        return _result(variant, request, variant.settle(request))
    if output is None or variant.parse is None:
        msg = f"the {variant.name!r} S2A step needs the model's output, got none"
        raise ValueError(msg)
    try:
        outcome = _read(variant.parse, request, output, logprobs, truncated=truncated)
    except Unusable as exc:
        if request.config.fallback == "raise":
            raise S2AParseError(exc.reason, output) from None
        logger.warning("S2A output unusable (%s); keeping the original context", exc.reason)
        return original_result(request, exc.reason, raw=output, usage=usage)
    return _result(variant, request, outcome, raw=output, usage=usage)


def _read(
    parse: Callable[[S2ARequest, str, Sequence[TokenLogprob] | None], Reading],
    request: S2ARequest,
    output: str,
    logprobs: Sequence[TokenLogprob] | None,
    *,
    truncated: bool,
) -> Reading:
    if truncated and request.max_new_tokens is None:  # a reply cut where asked is complete
        msg = "the reply was cut off at the token limit (raise max_new_tokens, or set a smaller window)"
        raise Unusable(msg)
    return parse(request, output, logprobs)
