"""The rewriting variants: `separated`, `unseparated`, `keep_original` and `instructed`.

How each builds its call (one rewrite; `instructed` makes none), reads the rewrite and builds
the answer prompt. A context split into parts is rewritten part by part; the rewrites are
joined in order, the question once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from s2a._parsing import Unusable, parse_labelled, parse_rewrite
from s2a._parts import Part
from s2a._question import is_question
from s2a._sentences import Span, split_sentences
from s2a._types import S2AInput, S2AResult, TokenLogprob
from s2a.prompts import S2APrompts
from s2a.variants._base import (
    Answer,
    Merger,
    PartBuilder,
    Reading,
    S2AConfig,
    S2ARequest,
    _focus_text,
    _messages,
    found_question,
    original_result,
    part_reasons,
    summed_usage,
)

logger = logging.getLogger(__name__)


def _build_rewrite(template_name: str) -> Callable[[S2AInput, S2AConfig], S2ARequest]:
    def build(inp: S2AInput, config: S2AConfig) -> S2ARequest:
        template: str = getattr(config.prompts, template_name)
        user = template.format(focus=_focus_text(config), text=inp.original_prompt)
        return S2ARequest(input=inp, config=config, messages=_messages(config, user))

    return build


def rewrite_part(build: Callable[[S2AInput, S2AConfig], S2ARequest]) -> PartBuilder:
    """A part's rewrite call: the part's text, with the question when it is known."""

    def part(
        whole: S2ARequest, text: str, _spans: tuple[Span, ...], _asks: tuple[int, ...], question: str | None
    ) -> S2ARequest:
        inp = S2AInput(context=text, question=question)
        if not text.strip():
            return S2ARequest(input=inp, config=whole.config)
        return build(inp, whole.config)

    return part


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


def rewrite_merge(answer: Answer, *, restated: bool = False) -> Merger:
    """The parts' rewrites joined in order, and the answer prompt built once from them.

    `restated`: each part's rewrite ends with the question (`unseparated`), dropped from each
    before the join. Without the question from the last part (and none given), the whole input
    is kept, flagged.
    """

    def merge(whole: S2ARequest, parts: Sequence[Part], results: Sequence[S2AResult]) -> S2AResult:
        inp, config = whole.input, whole.config
        question = found_question(whole, results)
        if len(results) != len(parts):
            reason = results[-1].fallback or "the rewrite has no question"
            return original_result(whole, f"the question was not found in the last part: {reason}")
        question = question or ""
        pieces: list[str] = []
        for index, result in enumerate(results):
            context = result.context
            if restated and result.fallback is None:
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
            prompt=answer(config.prompts, inp, context, question),
            variant=config.variant,
            kept=None,
            raw="\n\n".join(raws) if raws else None,
            fallback=part_reasons(parts, results),
            usage=summed_usage(results),
            parts=len(parts),
        )

    return merge


def _question_from_tail(context: str) -> tuple[str, str] | None:
    """The last paragraph of a rewrite whose Question label went missing, if it is a question."""
    head, _, tail = context.strip().rpartition("\n")
    if tail.strip().endswith("?"):
        return head.strip(), tail.strip()
    return None


def _parse_separated(request: S2ARequest, raw: str, _logprobs: Sequence[TokenLogprob] | None) -> Reading:
    rewrite = parse_labelled(raw)
    if request.input.question is not None:
        return Reading(context=rewrite.context, question=request.input.question)
    if rewrite.question:
        return Reading(context=rewrite.context, question=rewrite.question)
    recovered = _question_from_tail(rewrite.context)
    if recovered is None:
        msg = "the rewrite has no question"
        raise Unusable(msg)
    return Reading(context=recovered[0], question=recovered[1])


def _asks(text: str) -> str | None:
    """The last sentence of `text` that is a question, if any."""
    return next((s for s in reversed(split_sentences(text)) if is_question(s)), None)


def _parse_unseparated(request: S2ARequest, raw: str, _logprobs: Sequence[TokenLogprob] | None) -> Reading:
    text = parse_rewrite(raw)
    question = request.input.question
    if question is None:
        found = _asks(text)
        if found is None and _asks(request.input.context) is not None:
            # The prompt asked something and the rewrite asks nothing: the question was lost
            # (an answer, or JSON, instead of a rewrite). A prompt that is a request, with no
            # question mark, cannot be checked this way, and its rewrite is used as it is.
            msg = "the rewrite has no question, and the prompt had one"
            raise Unusable(msg)
        question = found or ""
    return Reading(context=text, question=question)


def _answer_separated(prompts: S2APrompts, _inp: S2AInput, context: str, question: str) -> str:
    return prompts.answer_separated.format(context=context, question=question).strip()


def _answer_unseparated(_prompts: S2APrompts, inp: S2AInput, context: str, question: str) -> str:
    if inp.question is not None and question not in context:
        return f"{context}\n\nQuestion: {question}".strip()
    return context


def _answer_keep_original(prompts: S2APrompts, inp: S2AInput, context: str, question: str) -> str:
    return prompts.answer_keep_original.format(
        original=inp.original_prompt, context=context, question=question
    ).strip()


def _answer_instructed(prompts: S2APrompts, inp: S2AInput, _context: str, _question: str) -> str:
    return prompts.answer_instructed.format(original=inp.original_prompt).strip()
