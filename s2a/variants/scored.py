"""`scored`: a keep-or-drop decision per sentence, and its P(keep) from the decision token.

With `focus` `objectivity` or `both`, the stance rules and an opinion test per sentence too.
How `scored` fans out its calls (`scored_calls`) and decides from their replies
(`fold_scored`) is here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from s2a._errors import CALL_FAILED
from s2a._probe import LABEL as PROBE_LABEL
from s2a._probe import opinion_probabilities, probe
from s2a._scores import (
    ONE_DECISION_REGEX,
    OPINION_REGEX,
    TOP_LOGPROBS,
    Scores,
    decisions_regex,
    dropped,
    read_decision,
    read_decisions,
    read_opinion,
)
from s2a._sentences import (
    is_quoted,
    number_sentences,
    quoted_spans,
)
from s2a._stance import marked
from s2a._types import S2AResult, ScoresFrom, TokenLogprob
from s2a.variants._base import (
    Reading,
    S2AConfig,
    S2ARequest,
    _messages,
    _scored_focus,
    original_result,
    reading_result,
    summed_usage,
)
from s2a.variants.extractive import extractive_outcome, judged_builder

logger = logging.getLogger(__name__)


def _ask_decisions(
    config: S2AConfig, question: str, sentences: str, count: int
) -> tuple[str, dict[str, Any]]:
    """A `keep` or `drop` line per sentence, P(keep) read from each decision token's alternatives."""
    user = config.prompts.scored.format(focus=_scored_focus(config), question=question, sentences=sentences)
    return user, {"regex": decisions_regex(count), "top_logprobs": TOP_LOGPROBS}


build_scored = judged_builder(_ask_decisions)
"""`scored`'s request: the question stated, the other sentences numbered, a decision line for each."""


def per_sentence(request: S2ARequest) -> tuple[S2ARequest, ...]:
    """`scored_calls="per_sentence"`: one one-word call for each sentence `request` shows.

    Every call shows all the sentences and asks about one at the very end, so the calls of
    one text share their prompt up to that line (a prefix cache prefills it once). A sentence
    the stance rules mark is dropped whatever its P(keep), and is not asked about.
    """
    config, inp = request.config, request.input
    marks = stance_marks(request)
    sentences = number_sentences(
        inp.context[request.spans[i].start : request.spans[i].end] for i in request.shown
    )
    question = " ".join((request.question or "").split())
    return tuple(
        replace(
            request,
            messages=_messages(
                config,
                config.prompts.scored_each.format(
                    focus=_scored_focus(config), question=question, sentences=sentences, number=number
                ),
            ),
            regex=ONE_DECISION_REGEX,
            judged=index,
            max_new_tokens=1,
        )
        for number, index in enumerate(request.shown, start=1)
        if index not in marks
    )


def opinion_tests(request: S2ARequest) -> tuple[S2ARequest, ...]:
    """The opinion test of each sentence `request` shows: the sentence alone, `yes` or `no`.

    Asked with the question and the other sentences beside it, the default model takes "I
    think the answer is X" for a fact about the answer (P(keep) 0.2 to 0.46, as low as many a
    needed fact); asked of the sentence alone whether it states what the writer thinks, it
    tells the opinions of the dev split from its facts (docs/evaluation.md).

    A sentence mostly inside quotation marks is not tested: what the user quotes (an argument
    to comment on, a passage to check) is the material the question is about, not the user's
    opinion of the answer, and often states an opinion of its own.
    """
    config, inp = request.config, request.input
    quotes = quoted_spans(inp.context)
    marks = stance_marks(request)
    return tuple(
        replace(
            request,
            messages=_messages(
                config,
                config.prompts.scored_opinion.format(
                    sentence=inp.context[request.spans[index].start : request.spans[index].end]
                ),
            ),
            regex=OPINION_REGEX,
            judged=index,
            opinion=True,
            max_new_tokens=1,
        )
        for index in request.shown
        if not is_quoted(request.spans[index], quotes) and index not in marks
    )


def stance_marks(request: S2ARequest) -> dict[int, str]:
    """The sentences `request` shows that the stance rules mark, with the rule, by index into `spans`.

    Only with `focus` `objectivity` or `both` and `stance_rules` on; with `stance_probe`, the
    probe marks what the rules leave. A sentence mostly inside quotation marks is never marked,
    as it is never tested for opinion (`opinion_tests`).
    """
    config, inp = request.config, request.input
    if config.focus == "relevance" or not config.stance_rules:
        return {}
    quotes = quoted_spans(inp.context)
    question = request.question or ""
    found: dict[int, str] = {}
    unmarked: list[int] = []
    for index in request.shown:
        span = request.spans[index]
        if is_quoted(span, quotes):
            continue
        rule = marked(question, inp.context[span.start : span.end])
        if rule is not None:
            found[index] = rule
        else:
            unmarked.append(index)
    if config.stance_probe and unmarked:
        texts = [inp.context[request.spans[i].start : request.spans[i].end].strip() for i in unmarked]
        line = probe().threshold
        for index, p in zip(unmarked, opinion_probabilities(texts), strict=True):
            if p >= line:
                found[index] = f"{PROBE_LABEL} (P(opinion) {p:.2f})"
    return found


def scored_calls(request: S2ARequest) -> tuple[S2ARequest, ...]:
    """Every call `scored` makes for `request` (one text, or one part of it), in the order sent.

    Relevance (`focus` `relevance` or `both`): `request` itself, a decision per sentence
    (`scored_calls="one"`), or one call per sentence (`per_sentence`). Opinions (`focus`
    `objectivity` or `both`): one opinion test per sentence. None when nothing is to be judged.
    """
    if not request.needs_llm:
        return ()
    config = request.config
    relevance: tuple[S2ARequest, ...] = ()
    if config.focus != "objectivity":
        relevance = per_sentence(request) if config.scored_calls == "per_sentence" else (request,)
    opinions = opinion_tests(request) if config.focus != "relevance" else ()
    return (*relevance, *opinions)


def scored_outcome(
    request: S2ARequest,
    scores: dict[int, float],
    source: ScoresFrom,
    opinions: dict[int, float] | None = None,
) -> Reading:
    """Drop the sentences whose P(keep) is too low (`dropped`) or whose P(opinion) is too high.

    `scores` and `opinions` are by index into `request.spans`; a sentence missing from one of
    them (its call failed, or the focus does not ask) is not dropped on that count.
    """
    config = request.config
    stance = stance_marks(request)
    gone = dropped(scores, config.threshold, config.relative)
    gone |= {i for i, p in (opinions or {}).items() if p >= config.opinion_threshold}
    gone |= set(stance)
    outcome = extractive_outcome(request, gone)
    return replace(
        outcome,
        scores={i + 1: p for i, p in sorted(scores.items())} or None,
        opinions={i + 1: p for i, p in sorted(opinions.items())} if opinions is not None else None,
        stance={i + 1: rule for i, rule in sorted(stance.items())} or None,
        scores_from=source,
    )


def _parse_scored(request: S2ARequest, raw: str, logprobs: Sequence[TokenLogprob] | None) -> Reading:
    cut = request.max_new_tokens is not None
    if request.opinion and request.judged is not None:
        found: Scores = read_opinion(raw, logprobs, cut=cut)
        return scored_outcome(request, {}, found.source, {request.judged: found.values[0]})
    if request.judged is not None:
        found = read_decision(raw, logprobs, cut=cut)
        return scored_outcome(request, {request.judged: found.values[0]}, found.source)
    found = read_decisions(raw, len(request.shown), logprobs)
    return scored_outcome(request, dict(zip(request.shown, found.values, strict=True)), found.source)


def fold_scored(unit: S2ARequest, calls: Sequence[S2ARequest], results: Sequence[S2AResult]) -> S2AResult:
    """`unit`'s result from its calls (`scored_calls(unit)`) and their results, in the same order.

    A failed call's sentence is kept; when every call failed, the whole text is, flagged.
    """
    if not calls:  # only opinions asked, and every sentence is quoted or marked: nothing to test
        return reading_result(unit, scored_outcome(unit, {}, "text", None), scores_from=None)
    ok = [r for r in results if r.fallback is None]
    scores = {n - 1: p for r in ok for n, p in (r.scores or {}).items()}
    opinions = {n - 1: p for r in ok for n, p in (r.opinions or {}).items()}
    failed = [r.fallback for r in results if r.fallback is not None]
    if not scores and not opinions:
        reason = failed[0].removeprefix(f"{CALL_FAILED}: ")
        return original_result(unit, f"every S2A call failed: {reason}", usage=summed_usage(results))
    source: ScoresFrom = "text" if any(r.scores_from == "text" for r in ok) else "logprobs"
    asked_opinions = any(call.opinion for call in calls)
    outcome = scored_outcome(unit, scores, source, opinions if asked_opinions else None)
    raws = [r.raw for r in results if r.raw is not None]
    reasons = [
        _reason(call, r.fallback) for call, r in zip(calls, results, strict=True) if r.fallback is not None
    ]
    return reading_result(
        unit,
        outcome,
        raw="\n".join(raws) if raws else None,
        fallback="; ".join(reasons) or None,
        usage=summed_usage(results),
    )


def _reason(call: S2ARequest, fallback: str) -> str:
    """Why one of `scored`'s calls failed, naming the sentence it judged (or every sentence)."""
    if call.judged is None:
        return f"the keep-or-drop call: {fallback}"
    test = "opinion test" if call.opinion else "keep-or-drop call"
    return f"sentence {call.judged + 1} ({test}): {fallback}"
