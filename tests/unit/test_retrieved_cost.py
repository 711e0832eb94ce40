"""benchmarks/retrieved_cost.py on HotpotQA, run as its docs run it: the floor first, then both rules."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fake_tgi import FakeTGI

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
URL = "http://tgi.test:8080"


def selection_reply(body: dict[str, Any]) -> str:
    """One `n keep` line per numbered paragraph of a selection call; one word for the floor."""
    if "response_format" not in body:
        return "x"
    count = len(re.findall(r"^\[\d+\] ", str(body["messages"][-1]["content"]), flags=re.MULTILINE))
    return "\n".join(f"{n} keep" for n in range(1, count + 1))


def test_hotpotqa_contexts_time_the_floor_first_and_both_document_rules(
    fake_tgi: FakeTGI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_tgi.reply = selection_reply
    argv = ["retrieved_cost.py", "--tgi-url", URL, "--hotpotqa", str(SHARED), "--limit", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--methods", "floor,rag_scored,rag_threshold"])
    runpy.run_path(str(ROOT / "benchmarks" / "retrieved_cost.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.startswith("the first 2 hotpotqa questions, their paragraphs as documents x 1 repeats")
    requests = fake_tgi.bodies("/v1/chat/completions")
    assert len(requests) == 2 * 3  # each method once per question, nothing else
    assert all(
        len(re.findall(r"^\[\d+\] ", str(r["messages"][-1]["content"]), re.M)) == 10 for r in requests[1:3]
    )
    assert [r.get("max_tokens") for r in requests[:1]] == [1]  # the floor writes one token
    rows = {cells[0]: cells[1:] for line in out.splitlines() if (cells := line.strip("| ").split(" | "))[0]}
    assert rows["floor"][1] == "1.00x"  # the reference: every paired ratio 1
    for method in ("rag_scored", "rag_threshold"):
        # the fake server's usage: 7 tokens for the 10 paragraphs, 0.7 a paragraph
        assert rows[method][4:] == ["7", "0.7"], method
