"""`extractive`: the model picks the sentences to keep, the rest are deleted in place.

The question is found from the text's structure and never judged; the model picks, as JSON,
the other sentences to keep; the answer step sees the input with the rest deleted in place.
A context split into parts is judged part by part, each told the question found up front, and
the sentences the parts keep are deleted in place in the whole. `scored` builds its requests
and merges its parts here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from s2a._parsing import parse_selection
from s2a._parts import Part
from s2a._question import question_sentences
from s2a._sentences import (
    Span,
    delete_sentences,
    join_sentences,
    number_sentences,
    sentence_spans,
)
from s2a._types import S2AInput, S2AResult, TokenLogprob
from s2a.variants._base import (
    PartBuilder,
    Reading,
    S2AConfig,
    S2ARequest,
    _focus_text,
    _messages,
    part_reasons,
    reading_result,
    summed_usage,
)

logger = logging.getLogger(__name__)


def _keep_schema(count: int) -> dict[str, Any]:
    """`{"keep": [...]}` with numbers from 1 to `count`, each at most once."""
    top = max(count, 1)
    # The enum, not just minimum/maximum, is what grammar compilers turn into a rule, so a
    # constrained reply cannot name a sentence that does not exist.
    item = {"type": "integer", "minimum": 1, "maximum": top, "enum": list(range(1, top + 1))}
    numbers = {"type": "array", "items": item, "maxItems": top}
    return {
        "type": "object",
        "properties": {"keep": numbers},
        "required": ["keep"],
        "additionalProperties": False,
    }


def _judging(
    inp: S2AInput,
    spans: tuple[Span, ...] | None,
    asks: tuple[int, ...] | None,
    question: str | None,
) -> tuple[tuple[Span, ...], tuple[int, ...], tuple[int, ...], str]:
    """The sentences of `inp.context`, the question's among them, the others (shown), the question.

    The question comes from the caller (`inp.question`), or from the text's structure
    (`s2a._question`): never from the model.
    """
    text = inp.context
    spans = spans if spans is not None else tuple(sentence_spans(text))
    if asks is None:
        asks = () if inp.question is not None else tuple(question_sentences(text, spans))
    if question is None:
        question = (
            inp.question
            if inp.question is not None
            else join_sentences(text, list(spans), [a + 1 for a in asks])
        )
    return spans, asks, tuple(i for i in range(len(spans)) if i not in asks), question


Asking = Callable[[S2AConfig, str, str, int], tuple[str, dict[str, Any]]]
"""How a variant that judges sentences asks: `(config, question, numbered sentences, count)` to
the user message and the reply's constraint (`S2ARequest` fields: `json_schema`, `regex`, ...)."""


class JudgedBuilder(Protocol):
    """Builds a sentence-judging request; the sentences, question sentences and question may be given."""

    def __call__(
        self,
        inp: S2AInput,
        config: S2AConfig,
        spans: tuple[Span, ...] | None = None,
        *,
        asks: tuple[int, ...] | None = None,
        question: str | None = None,
    ) -> S2ARequest: ...


def judged_builder(asking: Asking) -> JudgedBuilder:
    """A request builder that states the question and numbers the other sentences, asking as `asking` does.

    With no sentence besides the question there is nothing to decide, and no call.
    """

    def build(
        inp: S2AInput,
        config: S2AConfig,
        spans: tuple[Span, ...] | None = None,
        *,
        asks: tuple[int, ...] | None = None,
        question: str | None = None,
    ) -> S2ARequest:
        spans, asks, shown, question = _judging(inp, spans, asks, question)
        if not shown:
            return S2ARequest(input=inp, config=config, spans=spans, asks=asks, question=question)
        user, constraint = asking(
            config,
            " ".join(question.split()),  # on one line, as the numbered sentences are
            number_sentences(inp.context[spans[i].start : spans[i].end] for i in shown),
            len(shown),
        )
        return S2ARequest(
            input=inp,
            config=config,
            messages=_messages(config, user),
            spans=spans,
            asks=asks,
            shown=shown,
            question=question,
            **constraint,
        )

    return build


def _ask_keep_list(
    config: S2AConfig, question: str, sentences: str, count: int
) -> tuple[str, dict[str, Any]]:
    """The keep-list call: the sentences to keep, as `{"keep": [...]}`."""
    user = config.prompts.extractive.format(focus=_focus_text(config), question=question, sentences=sentences)
    return user, {"json_schema": _keep_schema(count)}


build_extractive = judged_builder(_ask_keep_list)
"""`extractive`'s request: the question stated, the other sentences numbered, `{"keep": [...]}`."""


def nothing_judged(request: S2ARequest) -> Reading:
    """The reading when there is no sentence to judge: the question alone, kept as it is."""
    return extractive_outcome(request, ())


def extractive_outcome(request: S2ARequest, dropped: Iterable[int]) -> Reading:
    """What the answer step sees when the sentences `dropped` (indexes into `request.spans`) go.

    The user's own text with those sentences deleted in place: same order, same words, no
    frame (unless `answer_frame`). Nothing dropped gives the input itself, byte for byte.
    """
    inp, spans = request.input, list(request.spans)
    gone = sorted(set(dropped) - set(request.asks))
    kept = [i + 1 for i in range(len(spans)) if i not in gone]
    if inp.question is None:
        question = join_sentences(inp.context, spans, [a + 1 for a in request.asks])
        context = delete_sentences(inp.context, spans, [*gone, *request.asks])
        prompt = delete_sentences(inp.context, spans, gone)
    else:
        question = inp.question
        context = delete_sentences(inp.context, spans, gone)
        prompt = S2AInput(context=context, question=question).original_prompt
    if request.config.answer_frame:
        prompt = request.config.prompts.answer_separated.format(context=context, question=question).strip()
    return Reading(context=context, question=question, kept=kept, prompt=prompt)


def _parse_extractive(request: S2ARequest, raw: str, _logprobs: Sequence[TokenLogprob] | None) -> Reading:
    selection = parse_selection(raw, len(request.shown))
    keep = {request.shown[n - 1] for n in selection.keep}
    return extractive_outcome(request, [i for i in request.shown if i not in keep])


def judged_part(build: JudgedBuilder) -> PartBuilder:
    """A part's call: its sentences numbered, the whole input's question stated.

    The part's own question sentences (`asks`) are kept and not shown.
    """

    def part(
        whole: S2ARequest, text: str, spans: tuple[Span, ...], asks: tuple[int, ...], question: str | None
    ) -> S2ARequest:
        inp = S2AInput(context=text)
        if not text.strip():
            return build(inp, whole.config)
        return build(inp, whole.config, spans, asks=asks, question=question)

    return part


def _kept(parts: Sequence[Part], results: Sequence[S2AResult]) -> set[int]:
    """The whole context's sentence numbers that a part kept (all of a part that fell back)."""
    kept: set[int] = set()
    for part, result in zip(parts, results, strict=True):
        numbers = result.kept if result.kept is not None else range(1, len(part.spans) + 1)
        kept.update(part.sentences[number - 1] for number in numbers)
    return kept


def merge_extractive(whole: S2ARequest, parts: Sequence[Part], results: Sequence[S2AResult]) -> S2AResult:
    """The whole input's result from the sentences its parts kept, deleted in place in the whole."""
    kept = _kept(parts, results)
    outcome = extractive_outcome(whole, [i for i in range(len(whole.spans)) if i + 1 not in kept])
    raws = [r.raw for r in results if r.raw is not None]
    scores = {
        part.sentences[n - 1]: p
        for part, r in zip(parts, results, strict=True)
        for n, p in (r.scores or {}).items()
    }
    sources = {r.scores_from for r in results if r.scores_from is not None}
    return reading_result(
        whole,
        outcome,
        scores=scores or None,
        scores_from=("text" if "text" in sources else "logprobs") if sources else None,
        raw="\n\n".join(raws) if raws else None,
        fallback=part_reasons(parts, results),
        usage=summed_usage(results),
        parts=len(parts),
    )
