"""A context too long for the model's window: split it, run the S2A step on each part, merge.

Nothing is cut. The context is split at sentence boundaries (a sentence longer than a whole
window at word boundaries) into parts whose S2A prompts fit `window_tokens`; each part is
one S2A call, and the parts' results are joined in order. A part whose call fails or whose
reply is unusable keeps its original text, flagged, as a single call would.

When the question is known, every part is sent with it at once. When it is inside the
context (the paper's setting), the last part goes first: it holds the end of the prompt,
where the question is; the question it yields is then given to the other parts. If the last
part yields none, the whole input is kept, flagged (except `unseparated`, which needs none).

    plan = plan_step(inp, config, window_tokens=7000)
    first = [<run_step(r)> for r in plan.first]      # sync or async: the only difference
    rest = [<run_step(r)> for r in plan.rest(first)]
    result = plan.merge(first, rest)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from s2a._sentences import Span, sentence_spans
from s2a._types import S2AInput, S2AResult, TokenUsage
from s2a.variants import VARIANTS, S2AConfig, S2ARequest, original_result, prepare

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


def _chunks(text: str, budget: int, count_tokens: Callable[[str], int]) -> list[Span]:
    """Consecutive stretches of `text`, each as many whole sentences as fit `budget`."""
    chunks: list[Span] = []
    used = 0
    for span in sentence_spans(text):
        for unit in _pieces(text, span, budget, count_tokens):
            # A sentence also costs its separator and, in the extractive form, its "[n] ".
            price = count_tokens(text[unit.start : unit.end]) + 2
            if chunks and used + price <= budget:
                chunks[-1] = Span(chunks[-1].start, unit.end)
                used += price
            else:
                chunks.append(unit)
                used = price
    return chunks


def _budget(inp: S2AInput, config: S2AConfig, window_tokens: int, count_tokens: Callable[[str], int]) -> int:
    """Tokens left for the context in one window, after the prompt around it."""
    probe = "x"
    fixed = request_tokens(prepare(S2AInput(context=probe, question=inp.question), config), count_tokens)
    fixed -= count_tokens(probe)
    budget = window_tokens - fixed
    if inp.question is None:
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
    parts: tuple[Span, ...]
    """Where each part lies in `input.context`; one part when no split was needed."""
    first: tuple[S2ARequest, ...]
    """The requests to run first: every part's, or (question unknown) the last part's."""

    @property
    def split(self) -> bool:
        """Whether the context was split into several parts."""
        return len(self.parts) > 1

    def _part(self, index: int, question: str | None) -> S2AInput:
        span = self.parts[index]
        return S2AInput(context=self.input.context[span.start : span.end], question=question)

    def _question(self, first: Sequence[S2AResult]) -> str | None:
        if self.input.question is not None:
            return self.input.question
        found = first[-1]
        return found.question if found.fallback is None and found.question.strip() else None

    def rest(self, first: Sequence[S2AResult]) -> tuple[S2ARequest, ...]:
        """The requests to run once `first` has results (empty when there is nothing more)."""
        if not self.split or self.input.question is not None:
            return ()
        question = self._question(first)
        if question is None and self.config.variant != "unseparated":
            return ()
        return tuple(prepare(self._part(i, question), self.config) for i in range(len(self.parts) - 1))

    def merge(self, first: Sequence[S2AResult], rest: Sequence[S2AResult] = ()) -> S2AResult:
        """The whole input's result from its parts' results, in the order of the parts."""
        if not self.split:
            (result,) = first
            return result
        whole = S2ARequest(input=self.input, config=self.config)
        results = list(first) if self.input.question is not None else [*rest, *first]
        question = self._question(first)
        if len(results) != len(self.parts):  # the question was not found in the last part
            reason = first[-1].fallback or "the rewrite has no question"
            return original_result(whole, f"the question was not found in the last part: {reason}")
        return _merged(whole, self.parts, results, question or "")


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


def _kept(inp: S2AInput, parts: Sequence[Span], results: Sequence[S2AResult]) -> list[int]:
    """The whole context's sentence numbers that a part kept (all of a part that fell back)."""
    spans = sentence_spans(inp.context)
    kept: set[int] = set()
    for part, result in zip(parts, results, strict=True):
        text = inp.context[part.start : part.end]
        local = sentence_spans(text)
        numbers = result.kept if result.kept is not None else range(1, len(local) + 1)
        for number in numbers:
            start, end = part.start + local[number - 1].start, part.start + local[number - 1].end
            kept.update(i for i, s in enumerate(spans, start=1) if s.start < end and start < s.end)
    return sorted(kept)


def _merged(
    whole: S2ARequest, parts: Sequence[Span], results: Sequence[S2AResult], question: str
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
                pieces.append(_separator(inp.context, parts[index - 1], parts[index]))
            pieces.append(context.strip())
    context = "".join(pieces)
    reasons = [
        f"part {i} of {len(parts)}: {r.fallback}" for i, r in enumerate(results, start=1) if r.fallback
    ]
    if reasons:
        logger.warning("S2A kept %d of %d parts as given: %s", len(reasons), len(parts), "; ".join(reasons))
    usages = [r.usage for r in results if r.usage is not None]
    usage = (
        TokenUsage(
            input_tokens=sum(u.input_tokens for u in usages),
            output_tokens=sum(u.output_tokens for u in usages),
            total_tokens=sum(u.total_tokens for u in usages),
        )
        if usages
        else None
    )
    raws = [r.raw for r in results if r.raw is not None]
    return S2AResult(
        context=context,
        question=question,
        prompt=variant.answer(config.prompts, inp, context, question),
        variant=variant.name,
        kept=_kept(inp, parts, results) if config.variant == "extractive" else None,
        raw="\n\n".join(raws) if raws else None,
        fallback="; ".join(reasons) or None,
        usage=usage,
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
    config = config or S2AConfig()
    whole = prepare(inp, config)
    everything = (Span(0, len(inp.context)),)
    if window_tokens is None or not whole.needs_llm or request_tokens(whole, count_tokens) <= window_tokens:
        return StepPlan(input=inp, config=config, parts=everything, first=(whole,))
    parts = tuple(_chunks(inp.context, _budget(inp, config, window_tokens, count_tokens), count_tokens))
    if len(parts) <= 1:
        return StepPlan(input=inp, config=config, parts=everything, first=(whole,))
    logger.info("S2A: the context is split into %d parts to fit %d tokens", len(parts), window_tokens)
    plan = StepPlan(input=inp, config=config, parts=parts, first=())
    if inp.question is not None:
        first = tuple(prepare(plan._part(i, inp.question), config) for i in range(len(parts)))
    else:
        first = (prepare(plan._part(len(parts) - 1, None), config),)
    return StepPlan(input=inp, config=config, parts=parts, first=first)
