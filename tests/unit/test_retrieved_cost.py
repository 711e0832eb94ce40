"""benchmarks/retrieved_cost.py on HotpotQA: the document-level methods, paired with the floor."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from benchmarks.retrieved_cost import contexts_of, timed
from s2a.evaluation.methods import TGIChat
from tests.fake_tgi import FakeTGI

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
URL = "http://tgi.test:8080"


def selection_reply(body: dict[str, Any]) -> str:
    """One `n keep` line per numbered paragraph of a selection call; one word for the floor."""
    if "response_format" not in body:
        return "x"
    count = len(re.findall(r"^\[\d+\] ", str(body["messages"][-1]["content"]), flags=re.MULTILINE))
    return "\n".join(f"{n} keep" for n in range(1, count + 1))


def test_hotpotqa_contexts_time_the_floor_first_and_both_document_rules(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = selection_reply
    args = argparse.Namespace(gsm_ic=None, hotpotqa=SHARED, limit=2, top_k=8)
    contexts, what = contexts_of(args)
    assert what.startswith("the first 2 hotpotqa questions")
    assert [len(docs) for docs, _, _ in contexts] == [10, 10]
    assert all(question and titles and len(titles) == 10 for _, question, titles in contexts)
    methods = ["floor", "rag_scored", "rag_threshold"]
    costs, _ = timed(methods, contexts, TGIChat(URL), 1, None)
    requests = fake_tgi.bodies("/v1/chat/completions")
    assert len(requests) == 2 * 3  # each method once per question, nothing else
    assert [r.get("max_tokens") for r in requests[:1]] == [1]  # the floor writes one token
    assert costs["floor"].ratios == [1.0, 1.0]
    for method in ("rag_scored", "rag_threshold"):
        assert len(costs[method].seconds) == 2
        assert costs[method].tokens == [7, 7]  # the fake server's usage
        assert costs[method].per_item == [0.7, 0.7]  # per paragraph
