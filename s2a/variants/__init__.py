"""The S2A variants: how each builds its call, reads the output and builds the answer prompt.

| variant         | S2A call                        | the answer step sees                          |
|-----------------|---------------------------------|-----------------------------------------------|
| `separated`     | rewrite into Context + Question | the kept context, then the question (default) |
| `unseparated`   | one rewritten prompt            | the rewrite                                   |
| `keep_original` | as `separated`                  | the original input and the kept parts         |
| `instructed`    | none                            | the original, told to ignore opinions/noise   |
| `extractive`    | sentence numbers, as JSON       | the input with the dropped sentences deleted  |
| `scored`        | keep/drop per sentence, P(keep) | as `extractive`, dropping P(keep) < threshold |

Every adapter drives a variant the same way, with no I/O here:

    request = prepare(S2AInput(...), config)      # the messages to send, if any
    output = <call the model with request.messages>   # sync or async: the only difference
    result = finish(request, output, usage)        # S2AResult, fallback applied

`scored` also reads the probabilities of the reply's tokens (`finish(..., logprobs=...)`), and
with `scored_calls="per_sentence"` makes one call per sentence: `s2a._windows.plan_step` plans
those calls and merges their results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from s2a._errors import S2AParseError
from s2a._parsing import Unusable
from s2a._sentences import Span
from s2a._types import S2AInput, S2AResult, TokenLogprob, TokenUsage, VariantName
from s2a.variants._base import (
    DEFAULT_OPINION_THRESHOLD,
    DEFAULT_RELATIVE,
    DEFAULT_THRESHOLD,
    S2AConfig,
    S2ARequest,
    Variant,
    _Outcome,
)
from s2a.variants.extractive import _build_extractive, _parse_extractive, extractive_outcome
from s2a.variants.rewrite import (
    _answer_instructed,
    _answer_keep_original,
    _answer_separated,
    _answer_unseparated,
    _build_rewrite,
    _parse_separated,
    _parse_unseparated,
)
from s2a.variants.scored import (
    _parse_scored,
    opinion_tests,
    per_sentence,
    scored_calls,
    scored_outcome,
    stance_marks,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_OPINION_THRESHOLD",
    "DEFAULT_RELATIVE",
    "DEFAULT_THRESHOLD",
    "VARIANTS",
    "S2AConfig",
    "S2ARequest",
    "Variant",
    "extractive_outcome",
    "finish",
    "history_input",
    "opinion_tests",
    "original_result",
    "per_sentence",
    "prepare",
    "prepare_part",
    "scored_calls",
    "scored_outcome",
    "stance_marks",
]

VARIANTS: Mapping[VariantName, Variant] = MappingProxyType(
    {
        "separated": Variant(
            "separated",
            "Rewrite into labelled context and question; answer from those (the paper's main form).",
            _build_rewrite("separated"),
            _parse_separated,
            _answer_separated,
        ),
        "unseparated": Variant(
            "unseparated",
            "Rewrite into one prompt with no split; answer from the rewrite.",
            _build_rewrite("unseparated"),
            _parse_unseparated,
            _answer_unseparated,
        ),
        "keep_original": Variant(
            "keep_original",
            "As separated, but the answer step also sees the original input.",
            _build_rewrite("separated"),
            _parse_separated,
            _answer_keep_original,
        ),
        "instructed": Variant(
            "instructed",
            "No rewrite: the answer step is told to ignore opinions and irrelevant text.",
            None,
            None,
            _answer_instructed,
        ),
        "extractive": Variant(
            "extractive",
            "The question from the text's structure; the model picks which other sentences to keep "
            "(JSON); the answer step sees the input with the others deleted in place.",
            _build_extractive,
            _parse_extractive,
            _answer_separated,
            _build_extractive,
        ),
        "scored": Variant(
            "scored",
            "As extractive, but each sentence gets a keep-or-drop decision and its P(keep), read from "
            "the decision token's probabilities; the sentences under `threshold` (and `relative`) are "
            "deleted in place.",
            _build_extractive,
            _parse_scored,
            _answer_separated,
            _build_extractive,
        ),
    }
)
"""The variant registry, by name."""


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
    if variant.build is None or (not inp.context.strip() and variant.build_part is None):
        return S2ARequest(input=inp, config=config)
    return variant.build(inp, config)


def prepare_part(
    inp: S2AInput,
    config: S2AConfig,
    spans: tuple[Span, ...],
    *,
    asks: tuple[int, ...] = (),
    question: str | None = None,
) -> S2ARequest:
    """`prepare` for a part of a split context whose sentences (`spans`, in `inp.context`) are known.

    `extractive` and `scored` number exactly these, so a part's numbers map back to the whole
    context's sentences without splitting anything again; `asks` are the part's question
    sentences and `question` the whole input's question, both found before the split.
    """
    build_part = VARIANTS[config.variant].build_part
    if build_part is not None and inp.context.strip():
        return build_part(inp, config, spans, asks=asks, question=question)
    return prepare(inp, config)


def _result(request: S2ARequest, outcome: _Outcome, **extra: Any) -> S2AResult:
    variant = VARIANTS[request.config.variant]
    prompt = outcome.prompt
    if prompt is None:
        prompt = variant.answer(request.config.prompts, request.input, outcome.context, outcome.question)
    return S2AResult(
        context=outcome.context,
        question=outcome.question,
        prompt=prompt,
        variant=variant.name,
        kept=outcome.kept,
        scores=outcome.scores,
        opinions=outcome.opinions,
        stance=outcome.stance,
        scores_from=outcome.scores_from,
        **extra,
    )


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
    inp = request.input
    variant = VARIANTS[request.config.variant]
    if not request.needs_llm:
        if request.question is not None:  # extractive, with nothing to decide
            return _result(request, extractive_outcome(request, ()))
        return _result(request, _Outcome(context=inp.context, question=inp.question or ""))
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
    return _result(request, outcome, raw=output, usage=usage)


def _read(
    parse: Callable[[S2ARequest, str, Sequence[TokenLogprob] | None], _Outcome],
    request: S2ARequest,
    output: str,
    logprobs: Sequence[TokenLogprob] | None,
    *,
    truncated: bool,
) -> _Outcome:
    if truncated and request.max_new_tokens is None:  # a reply cut where asked is complete
        msg = "the reply was cut off at the token limit (raise max_new_tokens, or set a smaller window)"
        raise Unusable(msg)
    return parse(request, output, logprobs)


def original_result(
    request: S2ARequest, reason: str, *, raw: str | None = None, usage: TokenUsage | None = None
) -> S2AResult:
    """The fallback: the input as given, unchanged, with `reason` in `fallback`."""
    inp = request.input
    return S2AResult(
        context=inp.context,
        question=inp.question or "",
        prompt=inp.original_prompt,
        variant=request.config.variant,
        raw=raw,
        fallback=reason,
        usage=usage,
    )


def history_input(turns: list[tuple[str, str]]) -> S2AInput:
    """Build an input from a chat history of `(role, text)` turns, oldest first.

    The last user turn is the question; every other turn (system messages included) is
    context to filter, rendered as `Role: text` lines.

    Raises:
        ValueError: there is no user turn.

    """
    last_user = next((i for i in range(len(turns) - 1, -1, -1) if turns[i][0] == "user"), None)
    if last_user is None:
        msg = "`messages` has no user message: the last user message is the question S2A needs"
        raise ValueError(msg)
    if not turns[last_user][1].strip():
        msg = "the last user message is blank: it is the question S2A needs"
        raise ValueError(msg)
    others = turns[:last_user] + turns[last_user + 1 :]
    context = "\n".join(f"{role.capitalize()}: {text}" for role, text in others if text.strip())
    return S2AInput(context=context, question=turns[last_user][1])
