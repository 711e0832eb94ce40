"""A context too long for the model's window: split it, run the S2A step on each part, merge.

Nothing is cut. The context is split at sentence boundaries (a sentence longer than a whole
window at word boundaries) into parts whose S2A prompts fit `window_tokens`; each part is
one S2A call, and the parts' results are joined in order. A part whose call fails or whose
reply is unusable keeps its original text, flagged, as a single call would.

When the question is known, every part is sent with it at once; so it is for `extractive`,
which finds the question in the text's structure before the split. When it is inside the
context (the paper's setting) of a rewriting variant, the last part goes first: it holds the
end of the prompt, where the question is; the question it yields is then given to the other
parts. If the last part yields none, the whole input is kept, flagged (except `unseparated`,
which needs none).

`scored` turns each of those requests into its calls (`s2a.variants.scored_calls`: one call
per sentence with `scored_calls="per_sentence"`, and an opinion test per sentence with
`focus` `objectivity` or `both`); `units` holds the requests they came from, and their
results are folded back into one result each before the merge. `plan.waves()` says which
calls go together. `s2a._steps.run_plan` drives it (the RAG selection runs the same line):

    plan = plan_step(inp, config, window_tokens=7000)
    result = run_plan(plan, call, retry)       # waves -> read each reply -> rest -> merge
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from s2a._errors import S2ACallError
from s2a._sentences import Span, sentence_spans
from s2a._steps import Outcome
from s2a._types import S2AInput, S2AResult, ScoresFrom, StepCost, TokenUsage
from s2a.variants import (
    VARIANTS,
    S2AConfig,
    S2ARequest,
    extractive_outcome,
    finish,
    original_result,
    prepare,
    prepare_part,
    scored_calls,
    scored_outcome,
)

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\S+\s*")

QUESTION_SHARE = 4
"""When the question is inside the context, 1/this of each window is kept for it."""


def approx_tokens(text: str) -> int:
    """A conservative token estimate when no tokenizer is given.

    About 3 characters a token for ASCII text; every other character counts as a token, so
    Chinese or Arabic text is not underestimated.
    """
    ascii_chars = sum(char.isascii() for char in text)
    return ascii_chars // 3 + (len(text) - ascii_chars) + 1


def request_tokens(request: S2ARequest, count_tokens: Callable[[str], int] = approx_tokens) -> int:
    """The size of the S2A call's prompt: every message's content."""
    return sum(count_tokens(message["content"]) for message in request.messages)


def _trimmed(text: str, span: Span) -> Span:
    piece = text[span.start : span.end]
    return Span(span.start, span.end - (len(piece) - len(piece.rstrip())))


def _pieces(text: str, span: Span, budget: int, count_tokens: Callable[[str], int]) -> list[Span]:
    """`span` whole, or cut at word boundaries into pieces that fit (a word too long, anywhere).

    A piece's cost is the sum of its words' (an overestimate), so the cut is linear in the text.
    """
    if count_tokens(text[span.start : span.end]) <= budget:
        return [span]
    pieces: list[Span] = []
    start = end = span.start  # the piece being built: text[start:end], costing `used`
    used = 0
    for word in _WORD.finditer(text, span.start, span.end):
        price = count_tokens(word.group())
        if end > start and used + price > budget:
            pieces.append(Span(start, end))
            start, used = word.start(), 0
        if price > budget:  # one word longer than a window: cut it at characters
            step = max(1, budget // 2)
            while word.end() - start > step and count_tokens(text[start : word.end()]) > budget:
                pieces.append(Span(start, start + step))
                start += step
            price = count_tokens(text[start : word.end()])
        end = word.end()
        used += price
    if end > start:
        pieces.append(Span(start, end))
    return [_trimmed(text, piece) for piece in pieces]


@dataclass(frozen=True)
class Part:
    """A stretch of the context sent in one call, and the sentences (or pieces) it shows."""

    span: Span
    """Where the part lies in the whole context."""
    units: tuple[Span, ...]
    """Its sentences, or pieces of a sentence too long for a window, relative to the part."""
    sentences: tuple[int, ...]
    """For each unit, the number (1-based) of the whole context's sentence it comes from."""


def _chunks(text: str, spans: Sequence[Span], budget: int, count_tokens: Callable[[str], int]) -> list[Part]:
    """Consecutive stretches of `text`, each as many whole sentences (`spans`) as fit `budget`."""
    groups: list[list[tuple[Span, int]]] = []
    used = 0
    for number, span in enumerate(spans, start=1):
        for unit in _pieces(text, span, budget, count_tokens):
            # A sentence also costs its separator and, in the extractive form, its "[n] ".
            price = count_tokens(text[unit.start : unit.end]) + 2
            if groups and used + price <= budget:
                groups[-1].append((unit, number))
                used += price
            else:
                groups.append([(unit, number)])
                used = price
    parts = []
    for group in groups:
        start = group[0][0].start
        units: list[tuple[Span, int]] = []
        for unit, number in group:  # the pieces of one sentence in one part show as one unit
            if units and units[-1][1] == number:
                units[-1] = (Span(units[-1][0].start, unit.end), number)
            else:
                units.append((unit, number))
        parts.append(
            Part(
                span=Span(start, group[-1][0].end),
                units=tuple(Span(unit.start - start, unit.end - start) for unit, _ in units),
                sentences=tuple(number for _, number in units),
            )
        )
    return parts


def _budget(whole: S2ARequest, window_tokens: int, count_tokens: Callable[[str], int]) -> int:
    """Tokens left for the context in one window, after the prompt around it."""
    inp, config = whole.input, whole.config
    probe = "x"
    if whole.question is not None:  # extractive: every part states the question found up front
        probe_request = prepare_part(S2AInput(context=probe), config, (Span(0, 1),), question=whole.question)
    else:
        probe_request = prepare(S2AInput(context=probe, question=inp.question), config)
    fixed = request_tokens(probe_request, count_tokens) - count_tokens(probe)
    budget = window_tokens - fixed
    if inp.question is None and whole.question is None:
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
    """The requests to run first: every part's, or (question unknown) the last part's."""
    units: tuple[S2ARequest, ...] = ()
    """`scored`, when it makes more than one call a text: the requests whose calls `first` holds."""
    groups: tuple[int, ...] = ()
    """For each request in `first`, the index of its request in `units`."""

    @property
    def threaded(self) -> bool:
        """Whether the sync path sends a wave from threads: only `scored`'s calls.

        So a batching server decodes them together; the parts of other plans go one at a
        time, in order.
        """
        return bool(self.units)

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

    def waves(self) -> tuple[tuple[S2ARequest, ...], ...]:
        """`first` in the groups sent together, each after the one before.

        `scored`'s calls: the first alone, leaving the prefix the per-sentence calls share in
        the server's prompt cache, then `config.scored_concurrency` at a time. Other plans: one
        group.
        """
        if not self.units:
            return (self.first,)
        head, tail, size = self.first[:1], self.first[1:], self.config.scored_concurrency
        return (head, *(tail[i : i + size] for i in range(0, len(tail), size)))

    @property
    def split(self) -> bool:
        """Whether the context was split into several parts."""
        return len(self.parts) > 1

    @property
    def at_once(self) -> bool:
        """Whether every part is sent in `first`: the question is known before any call."""
        return self.input.question is not None or self.whole.question is not None

    def _question(self, first: Sequence[S2AResult]) -> str | None:
        if self.input.question is not None:
            return self.input.question
        found = first[-1]
        return found.question if found.fallback is None and found.question.strip() else None

    def rest(self, first: Sequence[S2AResult]) -> tuple[S2ARequest, ...]:
        """The requests to run once `first` has results (empty when there is nothing more)."""
        if not self.split or self.at_once:
            return ()
        question = self._question(first)
        if question is None and self.config.variant != "unseparated":
            return ()
        return tuple(_request(self.input, part, question, self.config) for part in self.parts[:-1])

    def merge(
        self, first: Sequence[S2AResult], rest: Sequence[S2AResult] = (), cost: StepCost | None = None
    ) -> S2AResult:
        """The whole input's result from its parts' results, in the order of the parts, with `cost`."""
        merged = self._merge(first, rest)
        return merged if cost is None else merged.model_copy(update={"cost": cost})

    def _merge(self, first: Sequence[S2AResult], rest: Sequence[S2AResult]) -> S2AResult:
        if self.units:
            first = [
                _folded(unit, [r for r, g in zip(first, self.groups, strict=True) if g == k])
                for k, unit in enumerate(self.units)
            ]
        if not self.split:
            (result,) = first
            return result
        if self.whole.question is not None:
            return _merged_extractive(self.whole, self.parts, first)
        whole = S2ARequest(input=self.input, config=self.config)
        results = list(first) if self.at_once else [*rest, *first]
        question = self._question(first)
        if len(results) != len(self.parts):  # the question was not found in the last part
            reason = first[-1].fallback or "the rewrite has no question"
            return original_result(whole, f"the question was not found in the last part: {reason}")
        return _merged(whole, self.parts, results, question or "")


def call_failed(request: S2ARequest, error: S2ACallError) -> S2AResult:
    """The result when the model call failed: the original input, flagged, or the error raised.

    Raises:
        S2ACallError: `error`, when the policy is `fallback="raise"`.

    """
    if request.config.fallback == "raise":
        raise error
    logger.warning("S2A call failed (%s); keeping the original context", error)
    return original_result(request, f"the S2A call failed: {error}")


def _request(inp: S2AInput, part: Part, question: str | None, config: S2AConfig) -> S2ARequest:
    text = inp.context[part.span.start : part.span.end]
    return prepare_part(S2AInput(context=text, question=question), config, part.units)


def _extractive_request(whole: S2ARequest, part: Part) -> S2ARequest:
    """A part's keep-list call: its sentences, the question stated, its question sentences kept."""
    text = whole.input.context[part.span.start : part.span.end]
    asks = tuple(u for u, number in enumerate(part.sentences) if number - 1 in whole.asks)
    return prepare_part(S2AInput(context=text), whole.config, part.units, asks=asks, question=whole.question)


def _separator(text: str, before: Span, after: Span) -> str:
    """What joins two parts: nothing inside a word cut to fit, else a line break or a space."""
    gap = text[before.end : after.start]
    if not gap:
        return ""
    return "\n" if "\n" in gap else " "


def _without_question(context: str, question: str) -> str:
    """An `unseparated` part's rewrite without its restated question (the answer adds it once)."""
    stripped = context.rstrip()
    if question and stripped.endswith(question):
        stripped = stripped[: -len(question)].rstrip()
        stripped = stripped.removesuffix("Question:").rstrip()
    return stripped


def _kept(parts: Sequence[Part], results: Sequence[S2AResult]) -> list[int]:
    """The whole context's sentence numbers that a part kept (all of a part that fell back)."""
    kept: set[int] = set()
    for part, result in zip(parts, results, strict=True):
        numbers = result.kept if result.kept is not None else range(1, len(part.units) + 1)
        kept.update(part.sentences[number - 1] for number in numbers)
    return sorted(kept)


def _usage(results: Sequence[S2AResult]) -> TokenUsage | None:
    usages = [r.usage for r in results if r.usage is not None]
    if not usages:
        return None
    return TokenUsage(
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        total_tokens=sum(u.total_tokens for u in usages),
    )


def _reasons(parts: Sequence[Part], results: Sequence[S2AResult]) -> str | None:
    reasons = [
        f"part {i} of {len(parts)}: {r.fallback}" for i, r in enumerate(results, start=1) if r.fallback
    ]
    if reasons:
        logger.warning("S2A kept %d of %d parts as given: %s", len(reasons), len(parts), "; ".join(reasons))
    return "; ".join(reasons) or None


def _folded(unit: S2ARequest, results: Sequence[S2AResult]) -> S2AResult:
    """One request's result from the results of its calls (`scored_calls`); a failed call's sentence kept."""
    if not unit.needs_llm:
        return finish(unit)
    calls = scored_calls(unit)
    if not calls:  # only opinions asked, and every sentence is quoted or marked: nothing to test
        kept = scored_outcome(unit, {}, "text", None)
        prompt = kept.prompt or unit.input.original_prompt
        return S2AResult(
            context=kept.context,
            question=kept.question,
            prompt=prompt,
            variant="scored",
            kept=kept.kept,
            stance=kept.stance,
        )
    ok = [r for r in results if r.fallback is None]
    scores = {n - 1: p for r in ok for n, p in (r.scores or {}).items()}
    opinions = {n - 1: p for r in ok for n, p in (r.opinions or {}).items()}
    failed = [r.fallback for r in results if r.fallback is not None]
    if not scores and not opinions:
        reason = failed[0].removeprefix("the S2A call failed: ")
        return original_result(unit, f"every S2A call failed: {reason}", usage=_usage(results))
    source: ScoresFrom = "text" if any(r.scores_from == "text" for r in ok) else "logprobs"
    asked_opinions = any(call.opinion for call in calls)
    outcome = scored_outcome(unit, scores, source, opinions if asked_opinions else None)
    raws = [r.raw for r in results if r.raw is not None]
    reasons = [
        _reason(call, r.fallback) for call, r in zip(calls, results, strict=True) if r.fallback is not None
    ]
    return S2AResult(
        context=outcome.context,
        question=outcome.question,
        prompt=outcome.prompt or unit.input.original_prompt,
        variant="scored",
        kept=outcome.kept,
        scores=outcome.scores,
        opinions=outcome.opinions,
        stance=outcome.stance,
        scores_from=outcome.scores_from,
        raw="\n".join(raws) if raws else None,
        fallback="; ".join(reasons) or None,
        usage=_usage(results),
    )


def _reason(call: S2ARequest, fallback: str) -> str:
    """Why one of `scored`'s calls failed, naming the sentence it judged (or every sentence)."""
    if call.judged is None:
        return f"the keep-or-drop call: {fallback}"
    test = "opinion test" if call.opinion else "keep-or-drop call"
    return f"sentence {call.judged + 1} ({test}): {fallback}"


def _merged_extractive(whole: S2ARequest, parts: Sequence[Part], results: Sequence[S2AResult]) -> S2AResult:
    """The whole input's result from the sentences its parts kept, deleted in place in the whole."""
    kept = set(_kept(parts, results))
    outcome = extractive_outcome(whole, [i for i in range(len(whole.spans)) if i + 1 not in kept])
    raws = [r.raw for r in results if r.raw is not None]
    scores = {
        part.sentences[n - 1]: p
        for part, r in zip(parts, results, strict=True)
        for n, p in (r.scores or {}).items()
    }
    sources = {r.scores_from for r in results if r.scores_from is not None}
    return S2AResult(
        context=outcome.context,
        question=outcome.question,
        prompt=outcome.prompt or whole.input.original_prompt,
        variant=whole.config.variant,
        kept=outcome.kept,
        scores=scores or None,
        scores_from=("text" if "text" in sources else "logprobs") if sources else None,
        raw="\n\n".join(raws) if raws else None,
        fallback=_reasons(parts, results),
        usage=_usage(results),
        parts=len(parts),
    )


def _merged(
    whole: S2ARequest, parts: Sequence[Part], results: Sequence[S2AResult], question: str
) -> S2AResult:
    inp, config = whole.input, whole.config
    variant = VARIANTS[config.variant]
    pieces: list[str] = []
    for index, result in enumerate(results):
        context = result.context
        if config.variant == "unseparated" and result.fallback is None:
            context = _without_question(context, question)
        if context.strip():
            if pieces:
                pieces.append(_separator(inp.context, parts[index - 1].span, parts[index].span))
            pieces.append(context.strip())
    context = "".join(pieces)
    raws = [r.raw for r in results if r.raw is not None]
    return S2AResult(
        context=context,
        question=question,
        prompt=variant.answer(config.prompts, inp, context, question),
        variant=variant.name,
        kept=None,
        raw="\n\n".join(raws) if raws else None,
        fallback=_reasons(parts, results),
        usage=_usage(results),
        parts=len(parts),
    )


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
    if plan.config.variant != "scored":
        return plan
    calls = [(k, call) for k, unit in enumerate(plan.first) for call in scored_calls(unit)]
    if [call for _, call in calls] == [unit for unit in plan.first if unit.needs_llm]:
        return plan  # one call a text (`scored_calls="one"`, `focus="relevance"`): nothing to fold
    return replace(
        plan, units=plan.first, first=tuple(c for _, c in calls), groups=tuple(k for k, _ in calls)
    )


def _plan(
    inp: S2AInput, config: S2AConfig, window_tokens: int | None, count_tokens: Callable[[str], int]
) -> StepPlan:
    whole = prepare(inp, config)
    if window_tokens is None or not whole.needs_llm or request_tokens(whole, count_tokens) <= window_tokens:
        return StepPlan(input=inp, config=config, whole=whole, parts=(), first=(whole,))
    spans = whole.spans or tuple(sentence_spans(inp.context))  # extractive has split it already
    budget = _budget(whole, window_tokens, count_tokens)
    parts = tuple(_chunks(inp.context, spans, budget, count_tokens))
    if len(parts) <= 1:
        return StepPlan(input=inp, config=config, whole=whole, parts=(), first=(whole,))
    logger.info("S2A: the context is split into %d parts to fit %d tokens", len(parts), window_tokens)
    if whole.question is not None:
        first = tuple(_extractive_request(whole, part) for part in parts)
    elif inp.question is not None:
        first = tuple(_request(inp, part, inp.question, config) for part in parts)
    else:
        first = (_request(inp, parts[-1], None, config),)
    return StepPlan(input=inp, config=config, whole=whole, parts=parts, first=first)
