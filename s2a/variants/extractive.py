"""`extractive`: the model picks the sentences to keep, the rest are deleted in place.

The question is found from the text's structure and never judged; the model picks, as JSON,
the other sentences to keep; the answer step sees the input with the rest deleted in place.
`scored` builds its request here too and reads it as this variant does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from s2a._parsing import parse_selection
from s2a._question import question_sentences
from s2a._scores import (
    TOP_LOGPROBS,
    decisions_regex,
)
from s2a._sentences import (
    Span,
    delete_sentences,
    join_sentences,
    number_sentences,
    sentence_spans,
)
from s2a._types import (
    S2AInput,
    TokenLogprob,
)
from s2a.variants._base import S2AConfig, S2ARequest, _focus_text, _messages, _Outcome, _scored_focus

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


def _build_extractive(
    inp: S2AInput,
    config: S2AConfig,
    spans: tuple[Span, ...] | None = None,
    *,
    asks: tuple[int, ...] | None = None,
    question: str | None = None,
) -> S2ARequest:
    """The keep-list call: the question stated, the other sentences numbered, `{"keep": [...]}`.

    With no sentence besides the question there is nothing to decide, and no call.
    """
    spans, asks, shown, question = _judging(inp, spans, asks, question)
    if not shown:
        return S2ARequest(input=inp, config=config, spans=spans, asks=asks, question=question)
    scored = config.variant == "scored"
    user = (config.prompts.scored if scored else config.prompts.extractive).format(
        focus=_scored_focus(config) if scored else _focus_text(config),
        question=" ".join(question.split()),  # on one line, as the numbered sentences are
        sentences=number_sentences(inp.context[spans[i].start : spans[i].end] for i in shown),
    )
    return S2ARequest(
        input=inp,
        config=config,
        messages=_messages(config, user),
        json_schema=None if scored else _keep_schema(len(shown)),
        regex=decisions_regex(len(shown)) if scored else None,
        top_logprobs=TOP_LOGPROBS if scored else 0,
        spans=spans,
        asks=asks,
        shown=shown,
        question=question,
    )


def extractive_outcome(request: S2ARequest, dropped: Iterable[int]) -> _Outcome:
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
    return _Outcome(context=context, question=question, kept=kept, prompt=prompt)


def _parse_extractive(request: S2ARequest, raw: str, _logprobs: Sequence[TokenLogprob] | None) -> _Outcome:
    selection = parse_selection(raw, len(request.shown))
    keep = {request.shown[n - 1] for n in selection.keep}
    return extractive_outcome(request, [i for i in request.shown if i not in keep])
