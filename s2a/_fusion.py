"""Which documents a `scored` selection keeps: P(keep) fused with free signals (docs/rag.md, "HotpotQA").

On real retrieved paragraphs a small model's P(keep) ranks the needed ones only loosely (on
HotpotQA its top 4 held both gold paragraphs in 55-71% of questions, a BM25 ranking's top 4 in
62-73%), and two kinds of needed paragraph it misses most are the ones a lexical reading never
misses: a paragraph whose subject the question names, and the "bridge" of a two-hop question,
which another needed paragraph names. So a document is kept when any of these holds:

1. the model is sure of it: P(keep) reaches the threshold (the relative test does not apply:
   the other rules keep what stands out);
2. its title is named in the query;
3. while fewer than `share` of the documents are kept by 1-2, the next by reciprocal-rank fusion
   of the model's P(keep) ranking and BM25's ranking of the documents for the query;
4. its title is named in a document kept by 1-3 (the "bridge"; with `hop`, only within that
   many fused ranks past the share).

Rules 2-4 never keep a document the model scores under `floor`: a lexical match does not
overrule a model that is sure a document is not needed (a planted opinion shares the
question's words as much as the answer does).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RRF_K = 60
"""Reciprocal-rank fusion's constant (Cormack et al., 2009): a document scores 1 / (60 + rank)."""

MIN_NAME = 4
"""Titles shorter than this many characters are never looked for in text ("It", "Io")."""


@dataclass(frozen=True)
class Fusion:
    """How a `scored` selection fuses P(keep) with BM25, titles and bridges (see the module's docstring).

    The defaults were chosen on the even questions of HotpotQA's development split and checked on
    the odd ones (docs/rag.md, "HotpotQA"); `share` sets the compression: on 10 paragraphs, 0.3
    keeps 3 by rank, plus the titles named and the bridges.
    """

    share: float = 0.3
    """Keep at least this share of the documents (rounded up), best fused rank first."""
    hop: int | None = None
    """A bridge is kept when it is within this many fused ranks past the share (None: at any rank)."""
    floor: float = 0.1
    """Rank, title and bridge never keep a document whose P(keep) is under this."""
    title_key: str | None = "title"
    """The metadata key of a document's title, which the adapters read (None: no title or bridge rule)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.share <= 1.0:
            msg = f"Fusion.share must be in (0, 1], got {self.share!r}"
            raise ValueError(msg)
        if self.hop is not None and self.hop < 0:
            msg = f"Fusion.hop must be at least 0, got {self.hop!r}"
            raise ValueError(msg)
        if not 0.0 <= self.floor <= 1.0:
            msg = f"Fusion.floor must be in [0, 1], got {self.floor!r}"
            raise ValueError(msg)

    def titles(self, metadata: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """Each document's title: the string under `title_key` in its metadata, else None."""
        key = self.title_key
        found = [m.get(key) if key is not None else None for m in metadata]
        return [title if isinstance(title, str) else None for title in found]


def bm25_order(texts: Sequence[str], query: str) -> list[int]:
    """The texts' indices by BM25 score for `query`, best first (bm25s, English stopwords; ties in order).

    The index is the texts alone: the documents already retrieved for this query.
    """
    return [i for i, _ in bm25_ranking(texts, query)]


def bm25_ranking(texts: Sequence[str], query: str) -> list[tuple[int, float]]:
    """Every text's BM25 score for `query` (bm25s, its default tokenizer and English stopwords), best first.

    The index is the texts alone; ties keep the input order.
    """
    import bm25s  # noqa: PLC0415 - numpy-backed, imported on first use

    if not texts:
        return []
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(texts), show_progress=False), show_progress=False)
    query_tokens = bm25s.tokenize(query, return_ids=False, show_progress=False)[0]
    scores = retriever.get_scores(query_tokens) if query_tokens else [0.0] * len(texts)
    return sorted(((i, float(s)) for i, s in enumerate(scores)), key=lambda pair: (-pair[1], pair[0]))


def name(title: str) -> str:
    """A title as prose names it: without a parenthesised qualifier ("Psych (TV series)"), lower case."""
    return re.sub(r"\s+", " ", re.sub(r"\s*\(.*?\)", "", title)).strip().lower()


def named(title: str | None, text: str) -> bool:
    """Whether `text` names `title`, as a whole phrase (case aside); short or empty titles never match."""
    if not title:
        return False
    phrase = name(title)
    if len(phrase) < MIN_NAME:
        return False
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text.lower()) is not None


def fused_order(p_keep: Mapping[int, float], lexical: Sequence[int]) -> list[int]:
    """The judged documents by reciprocal-rank fusion of their P(keep) ranking and `lexical`'s order.

    Equal P(keep)s share a rank (a model read from its written decisions gives only 1.0 and
    0.0); ties in the fused score go to the lexical order.
    """
    by_lexical = [i for i in lexical if i in p_keep]
    rank_p = {i: sum(q > p for q in p_keep.values()) for i, p in p_keep.items()}  # equals share a rank
    rank_l = {i: r for r, i in enumerate(by_lexical)}
    score = {i: 1 / (RRF_K + rank_l.get(i, len(p_keep))) + 1 / (RRF_K + rank_p[i]) for i in p_keep}
    return sorted(score, key=lambda i: (-score[i], rank_l.get(i, len(p_keep)), i))


def fused_keep(
    p_keep: Mapping[int, float],
    threshold: float | None,
    *,
    texts: Sequence[str],
    query: str,
    titles: Sequence[str | None],
    lexical: Sequence[int],
    fusion: Fusion,
) -> set[int]:
    """The judged documents to keep, by rules 1-4 of the module's docstring (no rule 1 without `threshold`).

    `titles[i]` is document i's title, or None; `lexical` is BM25's order of the documents.
    """
    order = fused_order(p_keep, lexical)
    allowed = [i for i in order if p_keep[i] >= fusion.floor]
    count = math.ceil(fusion.share * len(p_keep))
    keep = {i for i, p in p_keep.items() if threshold is not None and p >= threshold}
    keep |= {i for i in allowed if named(titles[i], query)}
    for i in allowed:  # the sure and the named count towards the share
        if len(keep) >= count:
            break
        keep.add(i)
    body = "\n".join(texts[i] for i in keep)
    reach = order if fusion.hop is None else order[: count + fusion.hop]
    keep |= {i for i in reach if i not in keep and p_keep[i] >= fusion.floor and named(titles[i], body)}
    return keep
