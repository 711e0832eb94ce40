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

For one request a caller calls itself, with no split and no fan-out, `s2a.prepare` builds it
and `s2a.finish` reads the reply (both on the step's line, `s2a._windows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from s2a._types import S2AInput, VariantName
from s2a.variants._base import (
    DEFAULT_OPINION_THRESHOLD,
    DEFAULT_RELATIVE,
    DEFAULT_THRESHOLD,
    S2AConfig,
    S2ARequest,
    Variant,
    original_result,
)
from s2a.variants.extractive import (
    _parse_extractive,
    build_extractive,
    extractive_outcome,
    judged_part,
    merge_extractive,
    nothing_judged,
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

__all__ = [
    "DEFAULT_OPINION_THRESHOLD",
    "DEFAULT_RELATIVE",
    "DEFAULT_THRESHOLD",
    "VARIANTS",
    "S2AConfig",
    "S2ARequest",
    "Variant",
    "extractive_outcome",
    "history_input",
    "opinion_tests",
    "original_result",
    "per_sentence",
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
            settle=nothing_judged,
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
            settle=nothing_judged,
            finds_question=True,
        ),
    }
)
"""The variant registry, by name."""


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
