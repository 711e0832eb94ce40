"""HotpotQA, distractor setting: which of a question's paragraphs a filter keeps, and the answer.

Each record (`hotpotqa_distractor.jsonl` in the development split) is a real HotpotQA question
with its 10 Wikipedia paragraphs, 2 of them gold. A method keeps some of the paragraphs (a
`Selection`); the answer step then reads the kept ones, in their input order, and answers. Each
paragraph is one document or node whose text is `"<title>: <its sentences joined>"`: the title
often names the bridge entity, and LLMRerank's prompt, the S2A selection prompt and LangChain's
compressors all read the text alone.

Scoring is HotpotQA's own (`hotpot_evaluate_v1.py`): answers normalised (lower case,
punctuation and the articles a/an/the removed, whitespace collapsed), exact match and token F1,
with F1 0 when either side is yes/no/noanswer and they differ. What was kept is scored against
the gold paragraphs and their supporting sentences. This module is framework-free; the methods
that need LangChain or LlamaIndex are the adapters' (`langchain_s2a.evaluation`,
`llamaindex_s2a.evaluation`), reached through `s2a.evaluation.frameworks`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from s2a._fusion import bm25_ranking
from s2a.evaluation.records import Record
from s2a.evaluation.scoring import first_line
from s2a.evaluation.task import Task
from s2a.evaluation.tasks import TASKS

BM25_KS = (2, 3, 4, 5, 6)
S2A_SETTINGS: dict[str, dict[str, str | None]] = {
    "": {},
    "_threshold": {"fusion": None},
    "_keep_list": {"mode": "keep_list"},
    "_sentence": {"granularity": "sentence"},
    "_keep_list_sentence": {"mode": "keep_list", "granularity": "sentence"},
    "_relevance": {"focus": "relevance"},
}
"""The S2A filters' settings other than their defaults, by method-name suffix."""
RERANK_TOP_NS = (2, 3, 4)

METHODS: tuple[str, ...] = (
    "none",
    "oracle",
    *(f"bm25_k{k}" for k in BM25_KS),
    *(f"s2a_node{suffix}" for suffix in S2A_SETTINGS),
    *(f"s2a_compressor{suffix}" for suffix in S2A_SETTINGS),
    *(f"llm_rerank_top{n}" for n in RERANK_TOP_NS),
    "llm_chain_filter",
    "llm_chain_extractor",
    "llm_listwise_rerank",
)
"""Every method of the task, in the order tables show them."""

DEFAULT_METHODS = ("none", "oracle", *(f"bm25_k{k}" for k in BM25_KS), "s2a_node")

MODEL_FREE = frozenset(("none", "oracle", *(f"bm25_k{k}" for k in BM25_KS)))
"""The methods that need no model: what they keep comes from the record (`baseline_selection`)."""
RANKING = frozenset(
    m
    for m in METHODS
    if m.startswith(("bm25_k", "llm_rerank", "llm_listwise"))
    or (m.startswith("s2a_") and "keep_list" not in m)
)
"""Methods that return what they keep best first (scored on top-2 = gold); S2A's scored mode does."""

MIN_PARAGRAPHS = 3
"""Questions with fewer paragraphs (HotpotQA has a few with 2 or 4) leave nothing to filter at 2:
they are left out of both gold kept, tokens kept and top-2 = gold."""

ANSWER_PROMPT = "Answer in a few words, using the context.\n\nContext:\n{context}\n\nQuestion: {question}"
"""The answer step's user message (as `benchmarks/rag_peers.py` asks it); paragraphs one per line."""
NOTHING_KEPT = "(nothing)"


class Passage(BaseModel):
    """One paragraph of a question: a Wikipedia article's title and its first sentences."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    title: str
    sentences: list[str] = Field(min_length=1)
    supporting: bool
    """One of the question's gold paragraphs."""
    supporting_sentences: list[int] = []
    """The indices of the sentences HotpotQA marks as supporting facts."""

    @model_validator(mode="after")
    def _indices_in_range(self) -> Self:
        for index in self.supporting_sentences:
            if not 0 <= index < len(self.sentences):
                msg = f"supporting sentence {index} is out of range: the paragraph has {len(self.sentences)}"
                raise ValueError(msg)
        return self

    @property
    def text(self) -> str:
        """The paragraph as a document: `"<title>: <sentences joined>"` (they carry their own spaces)."""
        return f"{self.title}: {''.join(self.sentences).strip()}"


class HotpotRecord(Record):
    """A HotpotQA question in the distractor setting, with its paragraphs."""

    question: str = Field(min_length=1)
    answer: str
    type: Literal["bridge", "comparison"]
    level: str | None = None
    passages: list[Passage] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_gold(self) -> Self:
        if not any(p.supporting for p in self.passages):
            msg = "no passage is marked supporting: there is no gold paragraph to score a filter against"
            raise ValueError(msg)
        return self

    @property
    def gold(self) -> list[int]:
        """The gold paragraphs' indices, in input order."""
        return [i for i, p in enumerate(self.passages) if p.supporting]


@dataclass(frozen=True)
class Selection:
    """What a method kept of a question's paragraphs."""

    kept: list[int]
    """Paragraph indices, in the method's order: best first for a method that ranks, else input order."""
    texts: dict[int, str] = field(default_factory=dict)
    """The kept text of each paragraph the method cut down (to sentences, to an extract)."""
    scores: dict[int, float] = field(default_factory=dict)
    """The method's score of each paragraph it scored: BM25, P(keep), LLMRerank's relevance."""
    fallback: str | None = None
    """Why some of the filter's output was not used (S2A kept a window it could not read whole),
    or, when the filter raised, what it raised."""
    cost: tuple[float, int] | None = None
    """Seconds and model calls of a filter step made once for several methods (LLMRerank's one
    ranking, cut at each `top_n`): each method reports the step's cost. None: measured as it runs."""


class FilterRaisedError(Exception):
    """A filter failed on a question by its own doing (an unparsable reply), not the server's.

    It is that question's outcome (nothing kept, no answer), recorded and not retried; a server
    or connection failure is an error instead, retried on the next run.
    """


def answer_prompt(record: HotpotRecord, selection: Selection) -> str:
    """The answer step's user message: the kept paragraphs in input order, then the question."""
    texts = [selection.texts.get(i, record.passages[i].text) for i in sorted(selection.kept)]
    return ANSWER_PROMPT.format(context="\n".join(texts) or NOTHING_KEPT, question=record.question)


def as_hotpot(record: Record) -> HotpotRecord:
    """`record` as the task's record type (a TypeError for any other)."""
    if not isinstance(record, HotpotRecord):
        msg = f"the hotpotqa task reads HotpotRecord, got {type(record).__name__}"
        raise TypeError(msg)
    return record


# --- HotpotQA's answer scoring (hotpot_evaluate_v1.py) ------------------------------------------

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CLOSED = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """HotpotQA's normalisation: lower case, ASCII punctuation deleted, a/an/the removed, spaces collapsed."""
    without = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", without).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised prediction equals the normalised gold answer, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token F1 of the normalised answers; 0.0 when either is yes/no/noanswer and they differ."""
    predicted, truth = normalize_answer(prediction), normalize_answer(gold)
    if (predicted in _CLOSED or truth in _CLOSED) and predicted != truth:
        return 0.0
    predicted_tokens, truth_tokens = predicted.split(), truth.split()
    same = sum((Counter(predicted_tokens) & Counter(truth_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted_tokens), same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def answer_scores(record: HotpotRecord, reply: str) -> dict[str, float]:
    """Exact match and F1 of the reply's first line (the prediction) against the gold answer."""
    prediction = first_line(reply).strip()
    return {"exact_match": exact_match(prediction, record.answer), "f1": f1_score(prediction, record.answer)}


# --- what was kept -------------------------------------------------------------------------------


def words(text: str) -> int:
    """Whitespace-separated words: the tokenizer-free size of a text."""
    return len(text.split())


def _squashed(text: str) -> str:
    return " ".join(text.split())


def selection_scores(record: HotpotRecord, selection: Selection, *, ranks: bool) -> dict[str, float]:
    """What `selection` kept, scored against the gold paragraphs; each share is 0.0-1.0.

    `gold_recall`: gold paragraphs kept; `distractors_dropped`: the others dropped (absent with no
    others); `supporting_kept`: supporting sentences whose text (whitespace aside) is in the kept
    text, so a sentence counts wherever an extractor put it; `both_gold`, `tokens_kept` (words of
    the kept text over words of every paragraph) and, for a method that `ranks`, `top2_gold` (its
    first two are the two gold paragraphs) only with at least `MIN_PARAGRAPHS` paragraphs.
    """
    passages, gold, kept = record.passages, set(record.gold), set(selection.kept)
    texts = {i: selection.texts.get(i, passages[i].text) for i in kept}
    scores = {"gold_recall": len(gold & kept) / len(gold)}
    distractors = set(range(len(passages))) - gold
    if distractors:
        scores["distractors_dropped"] = len(distractors - kept) / len(distractors)
    supporting = [
        text
        for i in sorted(gold)
        for s in passages[i].supporting_sentences
        if (text := _squashed(passages[i].sentences[s]))
    ]
    if supporting:
        context = _squashed(" ".join(texts[i] for i in sorted(kept)))
        scores["supporting_kept"] = sum(s in context for s in supporting) / len(supporting)
    if len(passages) >= MIN_PARAGRAPHS:
        scores["both_gold"] = float(gold <= kept)
        scores["tokens_kept"] = sum(map(words, texts.values())) / sum(words(p.text) for p in passages)
        if ranks:
            scores["top2_gold"] = float(set(selection.kept[: len(gold)]) == gold)
    return scores


# --- BM25 ----------------------------------------------------------------------------------------


def bm25_top_k(record: HotpotRecord, k: int) -> Selection:
    """The `k` paragraphs BM25 ranks highest for the question (all of them when there are fewer)."""
    ranking = bm25_ranking([p.text for p in record.passages], record.question)
    return Selection(kept=[i for i, _ in ranking[:k]], scores=dict(ranking))


def baseline_selection(method: str, record: HotpotRecord) -> Selection | None:
    """`none`, `oracle` and `bm25_k<k>`, which need no model; None for any other method."""
    if method == "none":
        return Selection(kept=list(range(len(record.passages))))
    if method == "oracle":
        return Selection(kept=record.gold)
    if method.startswith("bm25_k") and method in METHODS:
        return bm25_top_k(record, int(method.removeprefix("bm25_k")))
    return None


def _answer_prompt_of(method: str) -> Callable[[Record], str]:
    """The answer step's prompt from what `method` (`none`, `oracle`) keeps."""

    def prompt(record: Record) -> str:
        hotpot = as_hotpot(record)
        selection = baseline_selection(method, hotpot)
        if selection is None:
            msg = f"{method!r} needs a model"
            raise ValueError(msg)
        return answer_prompt(hotpot, selection)

    return prompt


def _exact(record: Record, reply: str) -> float:
    return answer_scores(as_hotpot(record), reply)["exact_match"]


HOTPOTQA: Task = Task(
    name="hotpotqa",
    record_type=HotpotRecord,
    label_field="type",
    labels=("bridge", "comparison"),
    metrics=("exact_match", "f1"),
    system=TASKS["trivia_opinion"].system,  # the trivia task's: the answer alone, on the first line
    answer_tokens=48,
    prompt=_answer_prompt_of("none"),
    oracle=_answer_prompt_of("oracle"),
    exact=_exact,
    data="hotpotqa_distractor",
    methods=METHODS,
    default_methods=DEFAULT_METHODS,
)
"""The task: its records, answer step and methods (run by `s2a.evaluation.hotpotqa_run`)."""
