"""What the reliability tests tried, counted as they run; pytest prints the totals at the end.

docs/reliability.md quotes these totals, with the command that printed them. A test records
what it really sent or injected (`record("faults injected")`), and `question_kept` both checks
and counts the one outcome that must never happen: a question lost.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from s2a import S2AResult

LEDGER: Counter[str] = Counter()
"""Totals for this test session, by what was counted."""

LOST = "questions lost"


def record(what: str, count: int = 1) -> None:
    """Count `count` more of `what` (e.g. "requests sent", "bad outputs tried")."""
    LEDGER[what] += count


def question_kept(result: S2AResult, question: str) -> None:
    """Fail unless `question` is what the answer step will be asked; count the check."""
    record("questions checked")
    if question.strip() not in result.prompt or question.strip() not in (result.question or result.prompt):
        record(LOST)
        msg = f"the question {question!r} was lost: prompt {result.prompt!r}"
        raise AssertionError(msg)


def record_load(report: Any, where: str) -> None:
    """Count a load round (`s2a.local.load_driver.RoundReport`) by outcome."""
    for kind in ("ok", "overloaded", "other", "mismatched", "lost"):
        record(f"load requests ({where}): {kind}", report.count(kind))


def summary() -> list[str]:
    """The totals as lines, `lost` always among them once anything was checked."""
    if not LEDGER:
        return []
    totals = dict(LEDGER)
    if "questions checked" in totals:
        totals.setdefault(LOST, 0)
    return [f"{what}: {count}" for what, count in sorted(totals.items())]
