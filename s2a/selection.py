"""Selecting retrieved documents (or their sentences) with one S2A call per window.

The RAG adapters (`llamaindex_s2a.S2ANodePostprocessor`, `langchain_s2a.S2ADocumentCompressor`)
drive this through the line every S2A step runs (`s2a._steps.run_plan`), with no I/O here:

    plan = plan_selection(texts, query, config, granularity="document")
    selected = run_plan(plan, call, retry)     # call: a Window -> the model's Reply
    selected = finish_selection(plan, replies)  # the same, from replies already in hand

Items are numbered; the model answers with the numbers to keep (`mode="keep_list"`), or with a
keep-or-drop line per item whose P(keep) is read from the decision token (`mode="scored"`: the
items at or above `threshold` are kept, best first, at most `top_k`). Either way the output is
always a subset of the input, verbatim. Item sets too large for the model's window are split into
windows that fit, each its own call; the kept sets are merged in the original order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from s2a._errors import CALL_FAILED, S2ACallError, S2AParseError
from s2a._fusion import Fusion, bm25_order, fused_keep, fused_order
from s2a._parsing import Unusable, parse_selection
from s2a._parts import approx_tokens, pack, prompt_tokens
from s2a._scores import dropped, read_decisions
from s2a._selection_windows import REPLY_TOKENS_PER_ITEM, SelectionMode, Window, make_window, render
from s2a._sentences import Span, join_sentences, sentence_spans
from s2a._steps import Outcome, Reply
from s2a._types import ScoresFrom, StepCost
from s2a.variants import DEFAULT_THRESHOLD, S2AConfig

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FUSION",
    "DEFAULT_MODE",
    "DEFAULT_RAG_RELATIVE",
    "DEFAULT_RAG_THRESHOLD",
    "REPLY_TOKENS_PER_ITEM",
    "Granularity",
    "Selected",
    "SelectionMode",
    "SelectionPlan",
    "Window",
    "WindowRead",
    "applied_fusion",
    "finish_selection",
    "plan_selection",
]

Granularity = Literal["document", "sentence"]
"""Keep or drop whole documents, or sentences inside them."""


DEFAULT_MODE: SelectionMode = "scored"
"""The RAG adapters' default mode."""

DEFAULT_RAG_THRESHOLD = 0.4
"""The RAG adapters' default threshold on P(keep), in `scored` mode, tuned on examples/corpus.py
(docs/rag.md) so that the answering documents are kept. With `fusion`, a document at or over it
is always kept, and the fusion's rules keep more."""

DEFAULT_RAG_RELATIVE = 0.6
"""The RAG adapters' default relative threshold (see `S2AConfig.relative`), tuned with it; not
used with `fusion`."""

DEFAULT_FUSION = Fusion()
"""The RAG adapters' default: whole documents, `scored`, P(keep) fused with BM25, titles and
bridges (`s2a._fusion`), chosen on HotpotQA (docs/rag.md)."""


def applied_fusion(fusion: Fusion | None, mode: SelectionMode, granularity: Granularity) -> Fusion | None:
    """The adapters' `fusion` setting where it applies (scored whole documents), else None."""
    return fusion if mode == "scored" and granularity == "document" else None


@dataclass(frozen=True)
class SelectionPlan:
    """The calls needed to select from `texts` for `query`."""

    texts: tuple[str, ...]
    query: str
    granularity: Granularity
    config: S2AConfig
    windows: tuple[Window, ...]
    spans: tuple[tuple[Span, ...], ...] = ()
    mode: SelectionMode = "keep_list"
    threshold: float = DEFAULT_THRESHOLD
    relative: float | None = None
    top_k: int | None = None
    fusion: Fusion | None = None
    """`scored` documents: P(keep) fused with BM25's order (`lexical`), the query's and the kept
    documents' naming of `titles` (see `s2a._fusion`)."""
    titles: tuple[str | None, ...] = ()
    lexical: tuple[int, ...] = ()

    threaded = False
    """The sync path calls the windows one at a time, in order; the async path, concurrently."""

    def waves(self) -> tuple[tuple[Window, ...]]:
        """Every window, sent together."""
        return (self.windows,)

    def rest(self, _first: Sequence[WindowRead]) -> tuple[Window, ...]:
        """Nothing waits for the first replies."""
        return ()

    def read(self, window: Window, outcome: Outcome) -> WindowRead:
        """A window's decisions from its reply, or (unusable, or its call failed) all its items kept.

        Raises:
            S2AParseError: the reply is unusable and the policy is `fallback="raise"`.
            S2ACallError: the call failed and the policy is `fallback="raise"`.

        """
        if outcome is None:
            msg = "a selection window always calls the model, so it always has an outcome"
            raise ValueError(msg)
        where = ""
        if len(self.windows) > 1:
            number = next(i for i, w in enumerate(self.windows, start=1) if w is window)
            where = f" (window {number} of {len(self.windows)})"
        if isinstance(outcome, S2ACallError):
            if self.config.fallback == "raise":
                raise outcome
            logger.warning("S2A selection call failed (%s%s); keeping its items", outcome, where)
            return WindowRead(window, None, fallback=f"{CALL_FAILED}: {outcome}{where}")
        try:
            judged, source = _decisions(self, window, outcome)
        except Unusable as exc:
            if self.config.fallback == "raise":
                raise S2AParseError(exc.reason, outcome.text) from None
            logger.warning("S2A selection unusable (%s%s); keeping its items", exc.reason, where)
            return WindowRead(window, outcome.text, fallback=exc.reason + where)
        return WindowRead(window, outcome.text, judged, source)

    def merge(
        self, first: Sequence[WindowRead], _rest: Sequence[WindowRead] = (), cost: StepCost | None = None
    ) -> Selected:
        """What is kept, from every window's reading, in the original order, with what it cost."""
        selected = _merged(self, first)
        selected.cost = cost
        return selected


@dataclass(frozen=True)
class WindowRead:
    """What one window's reply says: each unit's P(keep) (`keep_list`: 1.0 or 0.0), or why it cannot."""

    window: Window
    raw: str | None
    """The reply; `None` when the call failed."""
    judged: dict[tuple[int, int | None], float] | None = None
    """`None` when the window fell back: its items are all kept."""
    source: ScoresFrom = "text"
    fallback: str | None = None


@dataclass
class Selected:
    """What was kept: document indices in their original order, and each kept document's text."""

    keep: list[int]
    texts: dict[int, str]
    raw: list[str | None] = field(default_factory=list)
    """Each window's reply; `None` for a window whose call failed."""
    fallback: str | None = None
    """`None`, or why some window's output was not used (its documents were all kept)."""
    scores: dict[int, float] = field(default_factory=dict)
    """`scored`: each judged document's P(keep) (for sentences, its best sentence's), by index."""
    scores_from: ScoresFrom | None = None
    """`scored`: `logprobs`, or `text` when some decision came without probabilities."""
    cost: StepCost | None = None
    """What the step cost, as the driver counted it (`None` when read by `finish_selection`)."""

    @property
    def ranked(self) -> list[int]:
        """The kept documents, highest P(keep) first (original order among equals, and without scores)."""
        return sorted(self.keep, key=lambda doc: -self.scores.get(doc, 1.0))

    @property
    def calls(self) -> int:
        """Windows sent to the LLM (retries not counted)."""
        return len(self.raw)


def plan_selection(
    texts: Sequence[str],
    query: str,
    config: S2AConfig | None = None,
    *,
    granularity: Granularity = "document",
    window_tokens: int | None = None,
    count_tokens: Callable[[str], int] = approx_tokens,
    mode: SelectionMode = "keep_list",
    top_k: int | None = None,
    fusion: Fusion | None = None,
    titles: Sequence[str | None] | None = None,
) -> SelectionPlan:
    """Plan the calls that select from `texts`; split into windows of at most `window_tokens`.

    With `mode="scored"`, the items whose P(keep) passes `config.threshold` (and
    `config.relative`) are kept, and of those at most `top_k` (the most likely to be needed).
    With `fusion` as well (whole documents only), the documents at or over the threshold and
    those `s2a._fusion.fused_keep` adds by rank, title and bridge (`titles[i]`: document i's
    title, or None); `top_k` then keeps the best by fused rank.

    Raises:
        ValueError: the query is empty, the granularity or mode is unknown, `top_k` < 1, `fusion`
            is asked for with sentences or a keep list, or `titles` does not match `texts`.
        TypeError: a text or the query is not a str.

    """
    config = config or S2AConfig()
    if not isinstance(query, str):
        msg = f"query must be a str, got {type(query).__name__}"
        raise TypeError(msg)
    if not query.strip():
        msg = "query is empty: S2A selects what helps answer a question"
        raise ValueError(msg)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            msg = f"document {i} must be a str, got {type(text).__name__}"
            raise TypeError(msg)
    if granularity not in ("document", "sentence"):
        msg = f"granularity must be 'document' or 'sentence', got {granularity!r}"
        raise ValueError(msg)
    if mode not in ("keep_list", "scored"):
        msg = f"mode must be 'keep_list' or 'scored', got {mode!r}"
        raise ValueError(msg)
    if top_k is not None and top_k < 1:
        msg = f"top_k must be at least 1 (or None for no limit), got {top_k!r}"
        raise ValueError(msg)
    if fusion is not None and (mode != "scored" or granularity != "document"):
        msg = (
            "fusion ranks whole documents by P(keep): it needs mode='scored' and "
            f"granularity='document' (got {mode!r}, {granularity!r}); pass fusion=None"
        )
        raise ValueError(msg)
    if titles is not None and len(titles) != len(texts):
        msg = f"titles must have one entry per text ({len(texts)}), got {len(titles)}"
        raise ValueError(msg)

    spans = tuple(tuple(sentence_spans(t)) for t in texts) if granularity == "sentence" else ()
    all_units: list[tuple[int, int | None]] = (
        [(d, s) for d in range(len(texts)) for s in range(len(spans[d]))]
        if granularity == "sentence"
        else [(d, None) for d in range(len(texts)) if texts[d].strip()]
    )
    unit_name = "sentences" if granularity == "sentence" else "documents"

    def window(units: Sequence[tuple[int, int | None]]) -> Window:
        return make_window(texts, spans, units, query=query, config=config, unit_name=unit_name, mode=mode)

    def cost(unit: tuple[int, int | None]) -> int:
        return count_tokens(render(texts, spans, [unit])) + REPLY_TOKENS_PER_ITEM

    groups = [all_units] if all_units else []
    if window_tokens is not None:
        budget = window_tokens - prompt_tokens(window([]).messages, count_tokens)

        def priced(unit: tuple[int, int | None]) -> int:
            price = cost(unit)
            if price > budget:  # never cut an item: it gets a window of its own, and a warning
                logger.warning("S2A: one item alone exceeds the window (%d > %d tokens)", price, budget)
            return price

        groups = pack(all_units, budget, priced)
    return SelectionPlan(
        texts=tuple(texts),
        query=query,
        granularity=granularity,
        config=config,
        windows=tuple(window(group) for group in groups),
        spans=spans,
        mode=mode,
        threshold=config.threshold,
        relative=config.relative,
        top_k=top_k,
        fusion=fusion,
        titles=tuple(titles) if titles is not None else (None,) * len(texts),
        lexical=tuple(bm25_order(texts, query)) if fusion is not None else (),
    )


def _decisions(
    plan: SelectionPlan, window: Window, reply: Reply
) -> tuple[dict[tuple[int, int | None], float], ScoresFrom]:
    """P(keep) of each unit of `window` (`keep_list`: 1.0 for the numbers kept, else 0.0), and its source."""
    if plan.mode == "scored":
        scores = read_decisions(reply.text, len(window.units), reply.logprobs)
        return dict(zip(window.units, scores.values, strict=True)), scores.source
    keep = set(parse_selection(reply.text, len(window.units)).keep)
    return {unit: 1.0 if n in keep else 0.0 for n, unit in enumerate(window.units, start=1)}, "text"


def _merged(plan: SelectionPlan, reads: Sequence[WindowRead]) -> Selected:
    kept_units: set[tuple[int, int | None]] = set()
    scores: dict[tuple[int, int | None], float] = {}
    for read in reads:
        if read.judged is None:
            kept_units.update(read.window.units)
        elif plan.mode == "scored":
            scores.update(read.judged)
        else:
            kept_units.update(unit for unit, p in read.judged.items() if p == 1.0)  # the numbers listed
    documents = {doc: max(p for (d, _), p in scores.items() if d == doc) for doc, _ in scores}
    rank = {doc: -p for doc, p in documents.items()}
    if plan.fusion is not None and documents:
        fused = fused_keep(
            documents,
            plan.threshold,
            texts=plan.texts,
            query=plan.query,
            titles=plan.titles,
            lexical=plan.lexical,
            fusion=plan.fusion,
        )
        kept_units.update((doc, None) for doc in fused)
        rank = {doc: float(r) for r, doc in enumerate(fused_order(documents, plan.lexical))}
    else:
        gone = dropped(scores, plan.threshold, plan.relative)
        kept_units.update(unit for unit in scores if unit not in gone)

    keep = sorted({doc for doc, _ in kept_units})
    if plan.top_k is not None and len(keep) > plan.top_k:
        best = sorted(keep, key=lambda doc: rank.get(doc, -1.0))[: plan.top_k]
        keep = sorted(best)
        kept_units = {unit for unit in kept_units if unit[0] in best}
    if plan.granularity == "document":
        texts = {doc: plan.texts[doc] for doc in keep}
    else:
        texts = {
            doc: join_sentences(
                plan.texts[doc],
                list(plan.spans[doc]),
                [s + 1 for d, s in kept_units if d == doc and s is not None],
            )
            for doc in keep
        }
    from_text = any(read.judged is not None and read.source == "text" for read in reads)
    return Selected(
        keep=keep,
        texts=texts,
        raw=[read.raw for read in reads],
        fallback="; ".join(read.fallback for read in reads if read.fallback) or None,
        scores=documents,
        scores_from=("text" if from_text else "logprobs") if plan.mode == "scored" else None,
    )


def finish_selection(plan: SelectionPlan, outputs: Sequence[str | Reply | S2ACallError]) -> Selected:
    """What is kept, from the windows' replies already in hand (what `run_plan` does after its calls).

    A window's output is the model's reply (its text, or a `Reply` with the tokens'
    alternatives), or the `S2ACallError` its call ended with; either way an unusable window
    keeps its items, flagged, unless the policy is `fallback="raise"`.

    Raises:
        S2AParseError: a reply is unusable and the policy is `fallback="raise"`.
        S2ACallError: a window's call failed and the policy is `fallback="raise"`.
        ValueError: the number of outputs is not the number of windows.

    """
    if len(outputs) != len(plan.windows):
        msg = f"expected {len(plan.windows)} model outputs (one per window), got {len(outputs)}"
        raise ValueError(msg)
    reads = [
        plan.read(window, Reply(output) if isinstance(output, str) else output)
        for window, output in zip(plan.windows, outputs, strict=True)
    ]
    return plan.merge(reads)
