"""s2a.evaluation.filter_quality: what its grid counts of the clean problems the baseline got right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2a import S2AResult
from s2a.evaluation.filter_grid import _baseline_right, _table_row
from s2a.evaluation.filter_scoring import BASELINE_RIGHT, RIGHT_CHANGED, Report, score

CLEAN = "Tom has 2 apples. He buys 1 more. How many apples does Tom have?"


def result(prompt: str) -> S2AResult:
    return S2AResult(context=prompt, question="", prompt=prompt, variant="scored")


def row(record_id: str) -> dict[str, object]:
    record = {"id": record_id, "original_question": CLEAN}
    return {"kind": "gsm_clean", "prompt": CLEAN, "record": record}


def test_only_the_problems_the_baseline_got_right_count_and_only_when_changed(tmp_path: Path) -> None:
    answers = tmp_path / "results.jsonl"
    lines = [
        {"task": "gsm_ic_clean", "method": "baseline", "id": "a", "scores": {"accuracy": 1.0}, "error": None},
        {"task": "gsm_ic_clean", "method": "baseline", "id": "b", "scores": {"accuracy": 0.0}, "error": None},
        {"task": "gsm_ic_clean", "method": "scored", "id": "c", "scores": {"accuracy": 1.0}, "error": None},
    ]
    answers.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    rows = _baseline_right(
        [row("a"), row("b"), row("c"), {"kind": "trivia", "prompt": "x", "record": {}}], answers
    )
    assert [r["record"].get(BASELINE_RIGHT) for r in rows] == [True, False, False, None]
    report = Report()
    changed = "Tom has 2 apples. How many apples does Tom have?"
    for found, shown in zip(rows[:3], (changed, changed, CLEAN), strict=True):
        score(report, "gsm_clean", found["record"], result(shown))
    assert (report.tallies[RIGHT_CHANGED].hits, report.tallies[RIGHT_CHANGED].total) == (1, 1)
    assert _table_row(report, answers=True)[1].endswith("| 1/1")
    assert _table_row(report, answers=True)[3] == 1


def test_answers_without_a_gsm_ic_clean_baseline_are_refused(tmp_path: Path) -> None:
    answers = tmp_path / "results.jsonl"
    answers.write_text(
        json.dumps({"task": "gsm_ic", "method": "baseline", "id": "a"}) + "\n", encoding="utf-8"
    )
    with pytest.raises(SystemExit, match="no gsm_ic_clean baseline answers"):
        _baseline_right([row("a")], answers)
