"""The S2A variants: how each builds its call, reads the output and builds the answer prompt.

| variant         | S2A call                        | the answer step sees                          |
|-----------------|---------------------------------|-----------------------------------------------|
| `separated`     | rewrite into Context + Question | the kept context, then the question           |
| `unseparated`   | one rewritten prompt            | the rewrite                                   |
| `keep_original` | as `separated`                  | the original input and the kept parts         |
| `instructed`    | none                            | the original, told to ignore opinions/noise   |
| `extractive`    | sentence numbers, as JSON       | the input with the dropped sentences deleted  |
| `scored`        | keep/drop per sentence, P(keep) | as `extractive`, dropping P(keep) < threshold |

`scored` is the default (`S2AConfig.variant`).

Each variant is a set of hooks on the line every S2A step runs (`s2a._windows.plan_step`, then
`s2a._steps.run_plan`): `build` its request, `calls` (what `scored` fans a request out into),
`parse` each reply, `fold` the calls' results, `part` and `merge` for a context split into
parts, `answer` for the prompt the answer step sees. Each family's hooks live in a module of
its own: `rewrite` (`separated`, `unseparated`, `keep_original`, `instructed`), `extractive`,
`scored`.

For one request a caller calls itself, with no split and no fan-out, `prepare` builds it and
`finish` reads the reply (`scored` then decides every sentence in one call, as with
`scored_calls="one"`):

    request = prepare(S2AInput(...), S2AConfig(variant="separated"))
    result = finish(request, <the model's reply to request.messages>)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from s2a._errors import S2AParseError
from s2a._parsing import Unusable
from s2a._types import S2AInput, S2AResult, TokenLogprob, TokenUsage, VariantName
from s2a.variants._base import (
    DEFAULT_OPINION_THRESHOLD,
    DEFAULT_RELATIVE,
    DEFAULT_THRESHOLD,
    Reading,
    S2AConfig,
    S2ARequest,
    Variant,
    original_result,
    reading_result,
)
from s2a.variants.extractive import (
    _parse_extractive,
    build_extractive,
    extractive_outcome,
    judged_part,
    merge_extractive,
)
from s2a.variants.rewrite import (
    _answer_instructed,
    _answer_keep_original,
    _answer_separated,
    _answer_unseparated,
    _build_rewrite,
    _parse_separated,
    _parse_unseparated,
    rewrite_merge,
    rewrite_part,
)
from s2a.variants.scored import (
    _parse_scored,
    build_scored,
    fold_scored,
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
    "scored_calls",
    "scored_outcome",
    "stance_marks",
]

_separated = _build_rewrite("separated")
_unseparated = _build_rewrite("unseparated")

VARIANTS: Mapping[VariantName, Variant] = MappingProxyType(
    {
        "separated": Variant(
            "separated",
            "Rewrite into labelled context and question; answer from those (the paper's main form).",
            _separated,
            _parse_separated,
            _answer_separated,
            part=rewrite_part(_separated),
            merge=rewrite_merge(_answer_separated),
        ),
        "unseparated": Variant(
            "unseparated",
            "Rewrite into one prompt with no split; answer from the rewrite.",
            _unseparated,
            _parse_unseparated,
            _answer_unseparated,
            part=rewrite_part(_unseparated),
            merge=rewrite_merge(_answer_unseparated, restated=True),
            needs_question=False,
        ),
        "keep_original": Variant(
            "keep_original",
            "As separated, but the answer step also sees the original input.",
            _separated,
            _parse_separated,
            _answer_keep_original,
            part=rewrite_part(_separated),
            merge=rewrite_merge(_answer_keep_original),
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
            build_extractive,
            _parse_extractive,
            _answer_separated,
            part=judged_part(build_extractive),
            merge=merge_extractive,
            finds_question=True,
        ),
        "scored": Variant(
            "scored",
            "As extractive, but each sentence gets a keep-or-drop decision and its P(keep), read from "
            "the decision token's probabilities; the sentences under `threshold` (and `relative`) are "
            "deleted in place.",
            build_scored,
            _parse_scored,
            _answer_separated,
            part=judged_part(build_scored),
            merge=merge_extractive,
            calls=scored_calls,
            fold=fold_scored,
            finds_question=True,
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
    if variant.build is None or (not inp.context.strip() and not variant.finds_question):
        return S2ARequest(input=inp, config=config)
    return variant.build(inp, config)


def _result(request: S2ARequest, outcome: Reading, **extra: Any) -> S2AResult:
    prompt = outcome.prompt
    if prompt is None:
        variant = VARIANTS[request.config.variant]
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
    inp = request.input
    variant = VARIANTS[request.config.variant]
    if not request.needs_llm:
        if variant.finds_question:  # extractive or scored, with nothing to decide
            return _result(request, extractive_outcome(request, ()))
        return _result(request, Reading(context=inp.context, question=inp.question or ""))
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
