"""On the planted corpus, S2A's RAG filters drop the distractors and do not hurt the answers.

The full comparison with the peers (LLMRerank, LLMChainExtractor, LLMChainFilter) is
`benchmarks/rag_peers.py`; its table is in docs/rag.md.
"""

from __future__ import annotations

import pytest

from benchmarks.rag_peers import Tally, methods, run_query
from examples.corpus import QUERIES


@pytest.fixture(scope="module")
def tallies(server_url: str) -> dict[str, Tally]:
    chosen = {name: m for name, m in methods(server_url).items() if name.startswith(("none", "S2A"))}
    results = {name: Tally() for name in chosen}
    for name, method in chosen.items():
        for query in QUERIES:
            run_query(name, method, query, k=4, base_url=server_url, tally=results[name])
    for name, t in results.items():
        print(
            f"{name}: dropped {t.dropped}/{t.distractors}, relevant {t.kept_relevant}/{t.relevant}, "
            f"correct {t.correct}/{len(QUERIES)}, calls {t.calls}"
        )
    return results


@pytest.mark.parametrize("name", ["S2ANodePostprocessor", "S2ADocumentCompressor"])
def test_drops_most_planted_distractors_in_one_call_per_query(tallies: dict[str, Tally], name: str) -> None:
    t = tallies[name]
    assert t.distractors > 0
    assert t.dropped / t.distractors > 0.5
    assert t.kept_relevant > 0
    assert t.calls == [1] * len(QUERIES)


@pytest.mark.parametrize("name", ["S2ANodePostprocessor", "S2ADocumentCompressor"])
def test_answers_are_at_least_as_good_as_without_s2a(tallies: dict[str, Tally], name: str) -> None:
    assert tallies[name].correct >= tallies["none (all retrieved)"].correct
