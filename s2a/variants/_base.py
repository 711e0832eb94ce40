"""What every variant shares: the config, the request and the registry's entry type.

What a variant reads from a reply, and the system and focus texts of the S2A prompts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from s2a._sentences import (
    Span,
)
from s2a._types import (
    ChatMessage,
    FallbackPolicy,
    Focus,
    S2AInput,
    ScoredCalls,
    ScoresFrom,
    TokenLogprob,
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
class _Outcome:
    context: str
    question: str
    kept: list[int] | None = None
    prompt: str | None = None
    """The answer prompt, when the variant builds it itself."""
    scores: dict[int, float] | None = None
    opinions: dict[int, float] | None = None
    stance: dict[int, str] | None = None
    scores_from: ScoresFrom | None = None


@dataclass(frozen=True)
class Variant:
    """A registered variant: a prompt builder, a parser and an answer-prompt builder."""

    name: VariantName
    description: str
    build: Callable[[S2AInput, S2AConfig], S2ARequest] | None
    """Builds the S2A call; `None` for variants that make no call."""
    parse: Callable[[S2ARequest, str, Sequence[TokenLogprob] | None], _Outcome] | None
    answer: Callable[[S2APrompts, S2AInput, str, str], str]
    build_part: Callable[..., S2ARequest] | None = None
    """Builds the call for a part of a split context whose sentences are known (`prepare_part`);
    `None`: the part is prepared as a whole input. Set for the variants that find the question
    from the text's structure, which also run on a context with no text (the question alone)."""


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
