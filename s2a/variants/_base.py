"""What every variant shares: the config, the request and the registry's entry type.

What a variant reads from a reply, the system and focus texts of the S2A prompts, and the
result that keeps the input as given (the fallback).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from s2a._parts import Part
from s2a._probe import require
from s2a._sentences import Span
from s2a._types import (
    ChatMessage,
    FallbackPolicy,
    Focus,
    S2AInput,
    S2AResult,
    ScoredCalls,
    ScoresFrom,
    TokenLogprob,
    TokenUsage,
    VariantName,
)
from s2a.prompts import DEFAULT_PROMPTS, S2APrompts

logger = logging.getLogger(__name__)


DEFAULT_THRESHOLD = 0.44
"""`scored`'s default threshold on P(keep), tuned on the whole development split (docs/evaluation.md)."""

DEFAULT_RELATIVE = 0.56
"""`scored`'s default relative threshold, tuned with `DEFAULT_THRESHOLD`."""

DEFAULT_OPINION_THRESHOLD = 0.75
"""`scored`'s default threshold on P(opinion), tuned on the whole development split: the lower edge
of the window (0.75 to 0.775) where every quality line held (docs/evaluation.md)."""


class S2AConfig(BaseModel):
    """How the S2A step runs; shared by every adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: VariantName = "scored"
    """Which variant to run (see the table in this module's docstring)."""
    focus: Focus = "both"
    """What to drop: opinions (`objectivity`), unrelated sentences (`relevance`), or both."""
    fallback: FallbackPolicy = "original"
    """On unusable output: keep the original context, flagged (`original`), or raise."""
    prompts: S2APrompts = DEFAULT_PROMPTS
    """The prompt templates (see `s2a.prompts`)."""
    answer_frame: bool = False
    """`extractive`: frame the answer prompt as the paper does (kept context, then "Answer the
    following question in an unbiased way ... Question: ..."), instead of giving the answer
    step the user's own text with the dropped sentences deleted in place."""
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0)
    """`scored`: a sentence whose P(keep) is at least this is kept."""
    relative: float | None = Field(default=DEFAULT_RELATIVE, ge=0.0, le=1.0)
    """`scored`: a sentence under `threshold` is still kept unless its P(keep) is also under this
    fraction of the highest P(keep) among the other sentences judged with it (a sentence judged
    alone is kept); `None`: the threshold alone decides."""
    opinion_threshold: float = Field(default=DEFAULT_OPINION_THRESHOLD, ge=0.0, le=1.0)
    """`scored` with `focus` `objectivity` or `both`: a sentence whose P(opinion), from the
    opinion test that reads it on its own, is at least this is dropped."""
    stance_rules: bool = True
    """`scored` with `focus` `objectivity` or `both`: drop, with no model call, the sentences whose
    words tell what someone believes the answer is (`s2a._stance`: first-person belief, what
    others or most people say, boosted assertions, doubt, musing, a closed question checking a
    candidate, and the asker's self-description before a question about the answerer's view);
    the model's opinion test judges the rest."""
    stance_probe: bool = Field(default=True, validate_default=True)
    """`scored` with `focus` `objectivity` or `both`: also drop, with no model call, the sentences
    that a linear probe over a small sentence embedder (`s2a._probe`: all-MiniLM-L6-v2 on
    onnxruntime, run beside any server) reads as an opinion about the answer. On the newest
    phrasing set, held out from both, `scored` took the opinion out of 70.9% of prompts
    without the probe and 89.7% with it (docs/evaluation.md). `False` leaves the rules and the
    model's opinion test."""
    scored_calls: ScoredCalls = "per_sentence"
    """`scored`: the keep-or-drop decisions in one call, a line per sentence (`one`), or in one
    single-token call per sentence over a shared prefix (`per_sentence`). The opinion tests
    (`focus` `objectivity` or `both`) are one call per sentence in either shape."""
    scored_concurrency: int = Field(default=1, ge=1, le=64)
    """`scored_calls="per_sentence"`: how many of one text's calls are in flight at once. The
    first always goes alone, so that it leaves the shared prefix in the server's prompt cache;
    the rest follow this many at a time. 1 suits llama.cpp (the local server), whose cache is
    per slot: calls sent together land in different slots and each prefills the whole prefix
    again. A TGI with a prefix cache shared by all requests can take more at once."""

    @field_validator("stance_probe")
    @classmethod
    def _probe_installed(cls, on: bool) -> bool:
        if on:
            require()
        return on


@dataclass(frozen=True)
class S2ARequest:
    """One prepared S2A step: what to send to the model, and what is needed to read the reply."""

    input: S2AInput
    """The input being filtered."""
    config: S2AConfig
    """The settings in force."""
    messages: tuple[ChatMessage, ...] = ()
    """The S2A call's messages; empty when no call is needed."""
    json_schema: dict[str, Any] | None = None
    """JSON schema the reply must follow, for backends that can constrain decoding."""
    regex: str | None = None
    """Regular expression the reply must match (`scored`), for backends that can constrain decoding."""
    top_logprobs: int = 0
    """Alternatives to report at each generated token (`scored` reads P(keep) from them); 0: none."""
    judged: int | None = None
    """`scored`'s calls about one sentence: the index (into `spans`) of the sentence judged."""
    opinion: bool = False
    """`scored`: this call is the opinion test of the sentence `judged` (P(yes) is P(opinion))."""
    max_new_tokens: int | None = None
    """The most tokens the reply needs, when fewer than the caller's budget: 1 for `scored`'s
    one-word calls, whose decision is read at the token that starts the word (the grammar
    makes that token start one of the two words). A reply cut there is complete."""
    spans: tuple[Span, ...] = field(default=())
    """Sentence spans of `input.context` (extractive variant)."""
    asks: tuple[int, ...] = ()
    """Indexes (into `spans`) of the sentences that state the question: always kept, never shown."""
    shown: tuple[int, ...] = ()
    """Indexes (into `spans`) of the sentences shown to the model, numbered from 1 in this order."""
    question: str | None = None
    """The question the model is told (extractive variant): the caller's, or the `asks` sentences."""

    @property
    def needs_llm(self) -> bool:
        """Whether the model must be called before `finish`."""
        return bool(self.messages)

    @property
    def known_question(self) -> str | None:
        """The question known before any call: the one the model is told, else the caller's.

        `None` when the question is inside the context and only the model's reply will say it
        (the rewriting variants on a prompt given whole).
        """
        return self.question if self.question is not None else self.input.question

    @property
    def grammar(self) -> dict[str, Any] | None:
        """The reply's constraint in TGI's form (`{"type": "json"|"regex", "value": ...}`), if any."""
        if self.json_schema is not None:
            return {"type": "json", "value": self.json_schema}
        if self.regex is not None:
            return {"type": "regex", "value": self.regex}
        return None

    def new_tokens(self, budget: int) -> int:
        """The reply's token limit within the caller's `budget`: `max_new_tokens` where it is fewer.

        Only for a reply constrained to its grammar: an unconstrained model may start its reply
        with anything, so a caller that does not send `grammar` keeps its own budget.
        """
        return budget if self.max_new_tokens is None else min(budget, self.max_new_tokens)


@dataclass(frozen=True)
class Reading:
    """What a variant read from a reply (or decided with none): the context kept, the question, ..."""

    context: str
    question: str
    kept: list[int] | None = None
    prompt: str | None = None
    """The answer prompt, when the variant builds it itself."""
    scores: dict[int, float] | None = None
    opinions: dict[int, float] | None = None
    stance: dict[int, str] | None = None
    scores_from: ScoresFrom | None = None


Answer = Callable[[S2APrompts, S2AInput, str, str], str]
"""Builds the answer step's prompt: `(prompts, input, context kept, question)`."""

PartBuilder = Callable[[S2ARequest, str, tuple[Span, ...], tuple[int, ...], str | None], S2ARequest]
"""Builds the call for one part of a split context: `(whole, text, spans, asks, question)`, where
`text` is the part's text, `spans` its sentences (in `text`), `asks` those among them that state
the question, and `question` the question known before the call (or `None`)."""

Merger = Callable[[S2ARequest, Sequence[Part], Sequence[S2AResult]], S2AResult]
"""The whole input's result from its parts' results, in the parts' order: `(whole, parts, results)`.
Fewer results than parts means the question was not found in the last part."""


def as_given(request: S2ARequest) -> Reading:
    """The reading of a request left as it came: its context and its question (if it has one)."""
    return Reading(context=request.input.context, question=request.input.question or "")


@dataclass(frozen=True)
class Variant:
    """A registered variant: its hooks on the line every S2A step runs.

    `build` a request, `parse` a reply, `answer` (the prompt the answer step sees); for a context
    split into parts, `part` (one part's request) and `merge` (the parts' results into one); for a
    request that makes several calls, `calls` (the calls) and `fold` (their results into one);
    `settle` for a request that needs no call.
    """

    name: VariantName
    description: str
    build: Callable[[S2AInput, S2AConfig], S2ARequest] | None
    """Builds the S2A call; `None` for variants that make no call."""
    parse: Callable[[S2ARequest, str, Sequence[TokenLogprob] | None], Reading] | None
    answer: Answer
    part: PartBuilder | None = None
    """Builds the call for one part of a context too long for one window (see `PartBuilder`)."""
    merge: Merger | None = None
    """Joins the parts' results (see `Merger`)."""
    calls: Callable[[S2ARequest], tuple[S2ARequest, ...]] | None = None
    """The calls one request makes, in the order sent, when they are not the request itself."""
    fold: Callable[[S2ARequest, Sequence[S2ARequest], Sequence[S2AResult]], S2AResult] | None = None
    """One request's result from its `calls` and their results, in the same order."""
    settle: Callable[[S2ARequest], Reading] = as_given
    """The reading of a request that needs no call; by default, the input as given."""
    finds_question: bool = False
    """The question is found from the text's structure, never asked of the model; such a variant
    also runs on a context with no text (the question alone)."""
    needs_question: bool = True
    """The parts of a split context other than the last wait for the question its reply gives;
    `False`: they run without one when it gives none."""

    def __post_init__(self) -> None:
        if (self.calls is None) != (self.fold is None):
            msg = f"variant {self.name!r}: `calls` and `fold` go together (the calls' results need folding)"
            raise ValueError(msg)


def reading_result(request: S2ARequest, reading: Reading, **extra: Any) -> S2AResult:
    """`request`'s result from what its variant read; `extra` sets (or overrides) other fields.

    Without an answer prompt in `reading` (or with an empty one), the prompt is the input as given.
    """
    fields: dict[str, Any] = {
        "context": reading.context,
        "question": reading.question,
        "prompt": reading.prompt or request.input.original_prompt,
        "variant": request.config.variant,
        "kept": reading.kept,
        "scores": reading.scores,
        "opinions": reading.opinions,
        "stance": reading.stance,
        "scores_from": reading.scores_from,
    }
    return S2AResult(**(fields | extra))


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


def summed_usage(results: Sequence[S2AResult]) -> TokenUsage | None:
    """The token usage of several results added up; `None` when none reports any."""
    usages = [r.usage for r in results if r.usage is not None]
    if not usages:
        return None
    return TokenUsage(
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        total_tokens=sum(u.total_tokens for u in usages),
    )


def found_question(whole: S2ARequest, results: Sequence[S2AResult]) -> str | None:
    """The question: the caller's, else the one the last part's usable reply gave (`None`: none)."""
    if whole.input.question is not None:
        return whole.input.question
    last = results[-1]
    return last.question if last.fallback is None and last.question.strip() else None


def part_reasons(parts: Sequence[Part], results: Sequence[S2AResult]) -> str | None:
    """Why some parts were kept as given, each named by its number; logged. `None`: none was."""
    reasons = [
        f"part {i} of {len(parts)}: {r.fallback}" for i, r in enumerate(results, start=1) if r.fallback
    ]
    if reasons:
        logger.warning("S2A kept %d of %d parts as given: %s", len(reasons), len(parts), "; ".join(reasons))
    return "; ".join(reasons) or None


def _focused(config: S2AConfig, opinion: str, other: str, join: str) -> str:
    """`opinion`, `other` or both (joined by `join`), as `config.focus` asks."""
    parts = {"objectivity": [opinion], "relevance": [other], "both": [opinion, other]}[config.focus]
    return join.join(parts)


def _focus_text(config: S2AConfig) -> str:
    prompts = config.prompts
    return _focused(config, prompts.focus_objectivity, prompts.focus_relevance, " ")


def _scored_focus(config: S2AConfig) -> str:
    """What `scored` drops, as the end of "drop: ..."."""
    prompts = config.prompts
    return _focused(config, prompts.scored_objectivity, prompts.scored_relevance, ", or ")


def _messages(config: S2AConfig, user: str) -> tuple[ChatMessage, ...]:
    return ({"role": "system", "content": config.prompts.system}, {"role": "user", "content": user})
