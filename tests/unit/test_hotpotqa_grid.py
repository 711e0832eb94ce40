"""s2a.evaluation.hotpotqa_grid: its rules and counts on real HotpotQA records, with P(keep) given."""

from __future__ import annotations

import math
from pathlib import Path

from s2a import Fusion
from s2a._fusion import named
from s2a.evaluation.hotpotqa import HOTPOTQA, HotpotRecord, as_hotpot
from s2a.evaluation.hotpotqa_grid import Question, adapters, measure, question, threshold, top_bm25, top_p

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


def test_the_adapters_rule_keeps_the_named_titles_and_adds_bridges_to_bm25s_share() -> None:
    flat = [question(r, dict.fromkeys(range(len(r.passages)), 0.3)) for r in RECORDS]
    for q in flat:
        share = math.ceil(Fusion().share * len(q.record.passages))
        bm25 = top_bm25(share)(q)
        assert len(bm25) == min(share, len(q.record.passages))
        plain = adapters(Fusion(title_key=None))(q)
        assert plain == bm25  # equal P(keep)s: BM25's order decides the share
        titled = adapters(Fusion(hop=0))(q)
        asked = {i for i, p in enumerate(q.record.passages) if named(p.title, q.record.question)}
        assert asked <= titled
        assert adapters(Fusion())(q) >= titled
    assert measure(top_bm25(10), flat)[:2] == (1.0, 1.0)  # every paragraph: both gold, all tokens
