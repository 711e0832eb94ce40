"""Input and result types shared by every adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import TypedDict

VariantName = Literal["separated", "unseparated", "keep_original", "instructed", "extractive", "scored"]
"""Names of the registered S2A variants (see `s2a.VARIANTS`)."""

Focus = Literal["objectivity", "relevance", "both"]
"""What the S2A step removes: opinions, irrelevant sentences, or both."""

FallbackPolicy = Literal["original", "raise"]
"""What happens when the model's output cannot be used."""

ScoredCalls = Literal["one", "per_sentence"]
"""How `scored` asks: one call with a decision per sentence, or one one-token call per sentence."""

ScoresFrom = Literal["logprobs", "text"]
"""Where `scored` read each P(keep): the decision tokens' probabilities, or (when the model
gives none) the decision text itself, as 1.0 or 0.0."""


class TokenLogprob(NamedTuple):
    """One generated token, its log-probability, and the most likely alternatives at its place."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()
    """(token, log-probability) of the most likely tokens at this place, the chosen one among them."""


class ChatMessage(TypedDict):
    """A framework-free chat message; adapters convert it to their own type."""

    role: Literal["system", "user"]
    content: str


class S2AInput(BaseModel):
    """What the S2A step reads.

    `question=None` is the paper's setting: one user prompt in which the question and
    the material around it are mixed, and the model separates them. When the question
    is known it is passed through verbatim: no model output can change or drop it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    context: str = Field(default="", strict=True)
    """The text to filter: the whole user prompt, retrieved text, or earlier chat turns."""
    question: str | None = Field(default=None, strict=True)
    """The question, when the caller knows it; `None` when it is inside `context`."""

    @model_validator(mode="after")
    def _not_empty(self) -> S2AInput:
        if self.question is not None and not self.question.strip():
            msg = "S2A input `question` is blank: pass the question, or None when it is inside `context`."
            raise ValueError(msg)
        if not self.context.strip() and self.question is None:
            msg = "S2A input is empty: give a non-empty `context` or `question`."
            raise ValueError(msg)
        return self

    @property
    def original_prompt(self) -> str:
        """The input as the answer step would see it without S2A."""
        if self.question is None:
            return self.context
        if not self.context.strip():
            return self.question
        return f"{self.context}\n\nQuestion: {self.question}"


class TokenUsage(BaseModel):
    """Token counts of the S2A call, as reported by the backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_tokens: int = 0
    """Tokens in the prompt sent to the model."""
    output_tokens: int = 0
    """Tokens the model generated."""
    total_tokens: int = 0
    """Sum of both, as the backend reports it."""
    cached_tokens: int | None = None
    """Of the prompt's tokens, those the server took from its prefix cache instead of reading
    them again, when it says (OpenAI's `usage.prompt_tokens_details.cached_tokens`; the local
    server reports llama.cpp's)."""


class StepCost(BaseModel):
    """What one S2A step cost, as its driver (`s2a._steps.run_plan`) counted it.

    Token counts are those the backend reported, summed over the step's calls; `None` when no
    call reported them (a backend without usage, or a step with no call).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    calls: int = 0
    """Model calls sent, retries included."""
    rounds: int = 0
    """Sequential rounds of calls: each waits for the one before (one for a step sent at once)."""
    prompt_tokens: int | None = None
    """Prompt tokens of every call."""
    cached_tokens: int | None = None
    """Of those, the ones the server took from its prefix cache, when it says."""
    generated_tokens: int | None = None
    """Tokens the model generated, every call together."""

    @classmethod
    def of(cls, calls: int, rounds: int, usages: Sequence[TokenUsage]) -> StepCost:
        """The cost of `calls` in `rounds`, from the usages the backend reported."""
        cached = [u.cached_tokens for u in usages if u.cached_tokens is not None]
        return cls(
            calls=calls,
            rounds=rounds,
            prompt_tokens=sum(u.input_tokens for u in usages) if usages else None,
            cached_tokens=sum(cached) if cached else None,
            generated_tokens=sum(u.output_tokens for u in usages) if usages else None,
        )


class S2AResult(BaseModel):
    """The regenerated context x' and everything needed to audit it.

    `str(result)` is `result.prompt`, so a result can be dropped wherever text is expected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    context: str
    """The context kept by the S2A step (the original context on fallback)."""
    question: str
    """The question the answer step must address; empty only if it could not be told apart."""
    prompt: str
    """The exact text the answer step should see, whatever the variant."""
    variant: VariantName
    """The variant that produced this result."""
    kept: list[int] | None = None
    """1-based numbers of the context sentences kept (`extractive` and `scored`)."""
    scores: dict[int, float] | None = None
    """`scored`: P(keep) of each sentence the model judged, by 1-based sentence number (the
    question's sentences are never judged, and always kept)."""
    opinions: dict[int, float] | None = None
    """`scored` with `focus` `objectivity` or `both`: P(opinion) of each sentence the opinion
    test judged, by 1-based sentence number; at `opinion_threshold` or above, it was dropped."""
    stance: dict[int, str] | None = None
    """`scored` with `focus` `objectivity` or `both` and `stance_rules`: the sentences the stance
    rules marked (`s2a._stance`: what someone believes the answer is, by its words), by 1-based
    sentence number, with the rule; each was dropped with no opinion test."""
    scores_from: ScoresFrom | None = None
    """`scored`: `logprobs`, or `text` when the model gave no probabilities (then every score
    is 1.0 or 0.0, the decision it wrote)."""
    raw: str | None = None
    """The model's raw output; `None` when the variant makes no call."""
    fallback: str | None = None
    """`None` when the S2A output was used, else why the original context was kept."""
    usage: TokenUsage | None = Field(default=None)
    """Token usage of the S2A call (summed over parts), when the backend reports it."""
    parts: int = 1
    """Parts the context was split into to fit the model's window, one S2A call each."""
    cost: StepCost | None = None
    """What the step cost: its calls, their sequential rounds and tokens (`None` when it was not
    run through the driver, e.g. `finish` on an output made elsewhere)."""

    def __str__(self) -> str:
        return self.prompt


def token_logprobs(content: Any) -> tuple[TokenLogprob, ...] | None:
    """OpenAI-style `logprobs.content` (dicts or huggingface_hub's objects) as the core's tokens."""
    if not content:
        return None

    def field(entry: Any, name: str) -> Any:
        return entry[name] if isinstance(entry, Mapping) else getattr(entry, name)

    return tuple(
        TokenLogprob(
            str(field(entry, "token")),
            float(field(entry, "logprob")),
            tuple(
                (str(field(t, "token")), float(field(t, "logprob")))
                for t in field(entry, "top_logprobs") or ()
            ),
        )
        for entry in content
    )


def token_usage(usage: Any) -> TokenUsage | None:
    """An OpenAI-shaped `usage` (TGI's, huggingface_hub's or the openai SDK's object) as a `TokenUsage`."""
    if usage is None or getattr(usage, "prompt_tokens", None) is None:
        return None
    return TokenUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens or 0,
        total_tokens=usage.total_tokens or 0,
        cached_tokens=_cached(usage),
    )


def _cached(usage: Any) -> int | None:
    """`prompt_tokens_details.cached_tokens`, where the server reports it (OpenAI's field)."""
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (
        details.get("cached_tokens") if isinstance(details, dict) else getattr(details, "cached_tokens", None)
    )
    return cached if isinstance(cached, int) else None
