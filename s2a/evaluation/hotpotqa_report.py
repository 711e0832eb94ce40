"""The hotpotqa task's table (Markdown) and figure (PNG): what each method kept, what it cost, the answers."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from s2a.evaluation.hotpotqa import HOTPOTQA, MIN_PARAGRAPHS, HotpotRecord
from s2a.evaluation.records import Record
from s2a.evaluation.report import Cell, methods_in, summarise
from s2a.evaluation.runner import ExampleResult

COLUMNS = {
    "both_gold": "both gold kept",
    "gold_recall": "gold recall",
    "distractors_dropped": "distractors dropped",
    "tokens_kept": "tokens kept",
    "supporting_kept": "supporting sentences kept",
    "top2_gold": "top-2 = gold",
    "exact_match": "EM",
    "f1": "F1",
}
"""The per-question scores the table shows, in its order, with their headings."""
BINARY = frozenset({"both_gold", "top2_gold", "exact_match"})
"""Scores that are 0 or 1 per question: Wilson intervals; the others are means with bootstrap ones."""


def cell(rows: Sequence[ExampleResult], metric: str) -> Cell:
    """The mean of `metric` over the rows that have it, with its 95% interval."""
    return summarise(rows, metric, binary=BINARY)


def filter_cost(rows: Sequence[ExampleResult]) -> tuple[float, float]:
    """Medians over the questions of the filter step's LLM calls and seconds (0 without a filter step)."""
    done = [r for r in rows if r.error is None]
    if not done:
        return math.nan, math.nan
    steps = [next((s for s in r.steps if s.name == "filter"), None) for r in done]
    calls = statistics.median(s.calls if s else 0 for s in steps)
    seconds = statistics.median(s.seconds if s else 0.0 for s in steps)
    return float(calls), seconds


def raised(row: ExampleResult) -> bool:
    """Whether the filter raised on the question (nothing kept, no answer step)."""
    return row.error is None and row.fallback is not None and not any(s.name == "answer" for s in row.steps)


def markdown(
    rows: Sequence[ExampleResult], order: Sequence[str] | None = None, records: Sequence[Record] = ()
) -> str:
    """The table per method, then exact match and F1 by question type, then what was left out."""
    columns = " | ".join(COLUMNS.values())
    lines = [
        "**hotpotqa: what each method kept, what it cost, and the answers**, "
        "% mean [95% interval: Wilson for 0/1 scores, bootstrap for shares] n=questions\n",
        f"| method | {columns} | LLM calls/query (median) | filter s/query (median) | fallbacks | raised |",
        "|---" * (len(COLUMNS) + 5) + "|",
    ]
    by_method = {m: [r for r in rows if r.method == m] for m in methods_in(rows, order)}
    for method, mine in by_method.items():
        cells = " | ".join(cell(mine, metric).render(percent=True) for metric in COLUMNS)
        calls, seconds = filter_cost(mine)
        fallbacks = sum(1 for r in mine if r.fallback and r.error is None and not raised(r))
        lines.append(
            f"| {method} | {cells} | {calls:g} | {seconds:.2f} | {fallbacks} | {sum(map(raised, mine))} |"
        )
    lines += ["", "**hotpotqa: answers by question type**, EM / F1 (%)\n"]
    lines.append("| method | " + " | ".join(HOTPOTQA.labels) + " |")
    lines.append("|---" * (len(HOTPOTQA.labels) + 1) + "|")
    for method, mine in by_method.items():
        parts = []
        for label in HOTPOTQA.labels:
            here = [r for r in mine if r.label == label]
            parts.append(
                f"{cell(here, 'exact_match').render(percent=True)} / {cell(here, 'f1').render(percent=True)}"
            )
        lines.append(f"| {method} | " + " | ".join(parts) + " |")
    few = [r.id for r in records if isinstance(r, HotpotRecord) and len(r.passages) < MIN_PARAGRAPHS]
    which = f" ({', '.join(few)})" if few else ""
    lines += [
        "",
        f"{len(few)} question(s) with fewer than {MIN_PARAGRAPHS} paragraphs left out of both gold kept, "
        f"tokens kept and top-2 = gold{which}. Tokens are whitespace words. "
        "top-2 = gold only for methods that rank what they keep. `raised`: the filter raised on the "
        "question (nothing kept, no answer); `fallbacks`: S2A kept a window it could not read.",
    ]
    failed = [r for r in rows if r.error is not None]
    if failed:
        lines.append(f"\n{len(failed)} example(s) failed and are not counted (see `error` in results.jsonl).")
    return "\n".join([*lines, ""])


def figure(rows: Sequence[ExampleResult], path: Path, order: Sequence[str] | None = None) -> None:
    """Both gold kept (y) against tokens kept (x), one point per method; BM25 k=2..6 as one curve."""
    import matplotlib as mpl  # noqa: PLC0415 - plotting is only needed here

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure_, axis = plt.subplots(figsize=(8.0, 6.0))
    points: dict[str, tuple[Cell, Cell]] = {}
    for method in methods_in(rows, order):
        mine = [r for r in rows if r.method == method]
        x, y = cell(mine, "tokens_kept"), cell(mine, "both_gold")
        if x.n and y.n:
            points[method] = (x, y)
    bm25 = sorted((m for m in points if m.startswith("bm25_k")), key=lambda m: int(m.removeprefix("bm25_k")))
    if bm25:
        axis.plot(
            [100 * points[m][0].value for m in bm25],
            [100 * points[m][1].value for m in bm25],
            "-",
            color="0.6",
            zorder=1,
            label="BM25, k = " + ", ".join(m.removeprefix("bm25_k") for m in bm25),
        )
    for method, (x, y) in points.items():
        axis.errorbar(
            100 * x.value,
            100 * y.value,
            xerr=[[100 * max(0.0, x.value - x.low)], [100 * max(0.0, x.high - x.value)]],
            yerr=[[100 * max(0.0, y.value - y.low)], [100 * max(0.0, y.high - y.value)]],
            fmt="o",
            color="0.45" if method in bm25 else None,
            capsize=2,
            elinewidth=0.7,
            alpha=0.8,
            zorder=2,
        )
        name = f"k={method.removeprefix('bm25_k')}" if method in bm25 else method
        where = (100 * x.value, 100 * y.value)
        axis.annotate(name, where, fontsize="x-small", xytext=(4, 3), textcoords="offset points")
    axis.set_xlabel("tokens kept (% of all paragraphs' words)")
    axis.set_ylabel("both gold paragraphs kept (% of questions)")
    axis.set_xlim(0, 105)
    axis.set_ylim(0, 105)
    axis.grid(alpha=0.3)
    if bm25:
        axis.legend(fontsize="small", loc="lower right")
    axis.set_title("hotpotqa: gold kept against context kept (95% intervals)")
    figure_.tight_layout()
    figure_.savefig(path, dpi=120)
    plt.close(figure_)
