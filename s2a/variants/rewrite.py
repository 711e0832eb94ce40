"""The rewriting variants: `separated`, `unseparated`, `keep_original` and `instructed`.

How each builds its call (one rewrite; `instructed` makes none), reads the rewrite and builds
the answer prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from s2a._parsing import Unusable, parse_labelled, parse_rewrite
from s2a._question import is_question
from s2a._sentences import (
    split_sentences,
)
from s2a._types import (
    S2AInput,
    TokenLogprob,
)
from s2a.prompts import S2APrompts
from s2a.variants._base import S2AConfig, S2ARequest, _focus_text, _messages, _Outcome

logger = logging.getLogger(__name__)


def _build_rewrite(template_name: str) -> Callable[[S2AInput, S2AConfig], S2ARequest]:
    def build(inp: S2AInput, config: S2AConfig) -> S2ARequest:
        template: str = getattr(config.prompts, template_name)
        user = template.format(focus=_focus_text(config), text=inp.original_prompt)
        return S2ARequest(input=inp, config=config, messages=_messages(config, user))

    return build


def _question_from_tail(context: str) -> tuple[str, str] | None:
    """The last paragraph of a rewrite whose Question label went missing, if it is a question."""
    head, _, tail = context.strip().rpartition("\n")
    if tail.strip().endswith("?"):
        return head.strip(), tail.strip()
    return None


def _parse_separated(request: S2ARequest, raw: str, _logprobs: Sequence[TokenLogprob] | None) -> _Outcome:
    rewrite = parse_labelled(raw)
    if request.input.question is not None:
        return _Outcome(context=rewrite.context, question=request.input.question)
    if rewrite.question:
        return _Outcome(context=rewrite.context, question=rewrite.question)
    recovered = _question_from_tail(rewrite.context)
    if recovered is None:
        msg = "the rewrite has no question"
        raise Unusable(msg)
    return _Outcome(context=recovered[0], question=recovered[1])


def _asks(text: str) -> str | None:
    """The last sentence of `text` that is a question, if any."""
    return next((s for s in reversed(split_sentences(text)) if is_question(s)), None)


def _parse_unseparated(request: S2ARequest, raw: str, _logprobs: Sequence[TokenLogprob] | None) -> _Outcome:
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
    return _Outcome(context=text, question=question)


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
