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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from s2a._errors import S2AParseError
from s2a._parsing import Unusable, parse_labelled, parse_rewrite, parse_selection
from s2a._question import is_question, question_sentences
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
    Span,
    delete_sentences,
    is_quoted,
    join_sentences,
    number_sentences,
    quoted_spans,
    sentence_spans,
    split_sentences,
)
from s2a._stance import marked
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

    Only with `focus` `objectivity` or `both` and `stance_rules` on; a sentence mostly inside
    quotation marks is never marked, as it is never tested for opinion (`opinion_tests`).
    """
    config, inp = request.config, request.input
    if config.focus == "relevance" or not config.stance_rules:
        return {}
    quotes = quoted_spans(inp.context)
    question = request.question or ""
    found: dict[int, str] = {}
    for index in request.shown:
        span = request.spans[index]
        if is_quoted(span, quotes):
            continue
        rule = marked(question, inp.context[span.start : span.end])
        if rule is not None:
            found[index] = rule
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


def scored_outcome(
    request: S2ARequest,
    scores: dict[int, float],
    source: ScoresFrom,
    opinions: dict[int, float] | None = None,
) -> _Outcome:
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


def _parse_scored(request: S2ARequest, raw: str, logprobs: Sequence[TokenLogprob] | None) -> _Outcome:
    cut = request.max_new_tokens is not None
    if request.opinion and request.judged is not None:
        found: Scores = read_opinion(raw, logprobs, cut=cut)
        return scored_outcome(request, {}, found.source, {request.judged: found.values[0]})
    if request.judged is not None:
        found = read_decision(raw, logprobs, cut=cut)
        return scored_outcome(request, {request.judged: found.values[0]}, found.source)
    found = read_decisions(raw, len(request.shown), logprobs)
    return scored_outcome(request, dict(zip(request.shown, found.values, strict=True)), found.source)


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
        ),
        "scored": Variant(
            "scored",
            "As extractive, but each sentence gets a keep-or-drop decision and its P(keep), read from "
            "the decision token's probabilities; the sentences under `threshold` (and `relative`) are "
            "deleted in place.",
            _build_extractive,
            _parse_scored,
            _answer_separated,
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
    if variant.build is None or (not inp.context.strip() and variant.name not in {"extractive", "scored"}):
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
    if config.variant in {"extractive", "scored"} and inp.context.strip():
        return _build_extractive(inp, config, spans, asks=asks, question=question)
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
