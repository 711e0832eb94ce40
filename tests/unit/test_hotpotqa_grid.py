"""benchmarks/hotpotqa_grid.py: its rules and counts on real HotpotQA records, with P(keep) given."""

from __future__ import annotations

from pathlib import Path

from benchmarks.hotpotqa_grid import Question, fused, measure, question, threshold, top_bm25, top_p
from s2a.evaluation.hotpotqa import HOTPOTQA, HotpotRecord, as_hotpot

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / HOTPOTQA.file
RECORDS = [as_hotpot(r) for r in HOTPOTQA.load(DATA, limit=40)]


def knowing(record: HotpotRecord) -> Question:
    """The record with a P(keep) that knows its gold pair."""
    return question(record, {i: (0.9 if i in record.gold else 0.1) for i in range(len(record.passages))})


def test_a_p_keep_that_knows_the_gold_pair_keeps_both_at_top_2_and_nothing_else() -> None:
    questions = [knowing(r) for r in RECORDS]
    both, tokens, n = measure(top_p(2), questions)
    assert both == 1.0
    assert 0 < tokens < 0.5
    assert n == sum(len(r.passages) >= 3 for r in RECORDS)
    assert measure(threshold(0.5), questions)[:2] == (both, tokens)  # the same pair, by threshold
    assert measure(threshold(0.95), questions)[:2] == (0.0, 0.0)  # nothing kept


def test_fusion_and_titles_only_add_to_what_bm25_and_p_keep_choose() -> None:
    flat = [question(r, dict.fromkeys(range(len(r.passages)), 0.5)) for r in RECORDS]
    for q in flat:
        bm25 = top_bm25(3)(q)
        assert len(bm25) == min(3, len(q.record.passages))
        titled = fused(3, title=True)(q)
        named = {i for i, p in enumerate(q.record.passages) if p.title.lower() in q.record.question.lower()}
        assert named <= titled
        assert fused(3, title=True, hop=True)(q) >= titled
    assert measure(top_bm25(10), flat)[:2] == (1.0, 1.0)  # every paragraph: both gold, all tokens
