"""benchmarks/hotpotqa_grid.py: its rules and counts on real HotpotQA records, with P(keep) given."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.hotpotqa_grid import fused, measure, threshold, top_bm25, top_p

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hotpotqa_distractor.jsonl"
RECORDS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[:40]]


def gold(record: dict[str, object]) -> set[int]:
    passages = record["passages"]
    assert isinstance(passages, list)
    return {i for i, p in enumerate(passages) if p["supporting"]}


def test_a_p_keep_that_knows_the_gold_pair_keeps_both_at_top_2_and_nothing_else() -> None:
    rows = [(r, {i: (0.9 if i in gold(r) else 0.1) for i in range(len(r["passages"]))}) for r in RECORDS]
    both, tokens, n = measure(top_p(2), rows)
    assert both == 1.0
    assert 0 < tokens < 0.5
    assert n == sum(len(r["passages"]) >= 3 for r in RECORDS)
    assert measure(threshold(0.5), rows)[:2] == (both, tokens)  # the same pair, by threshold
    assert measure(threshold(0.95), rows)[:2] == (0.0, 0.0)  # nothing kept


def test_fusion_and_titles_only_add_to_what_bm25_and_p_keep_choose() -> None:
    flat = [(r, dict.fromkeys(range(len(r["passages"])), 0.5)) for r in RECORDS]
    for record, p_keep in flat:
        bm25 = top_bm25(3)(record, p_keep)
        assert len(bm25) == min(3, len(record["passages"]))
        titled = fused(3, title=True)(record, p_keep)
        named = {
            i for i, p in enumerate(record["passages"]) if p["title"].lower() in record["question"].lower()
        }
        assert named <= titled
        assert fused(3, title=True, hop=True)(record, p_keep) >= titled
    assert measure(top_bm25(10), flat)[:2] == (1.0, 1.0)  # every paragraph: both gold, all tokens
