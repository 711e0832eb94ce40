"""Which paragraph-selection rule meets the HotpotQA lines, from saved P(keep), offline.

    python benchmarks/hotpotqa_grid.py --results docs/eval/hotpotqa/hotpotqa/results.jsonl \
        --data ../shared/data [--method s2a_compressor]
    python benchmarks/hotpotqa_grid.py --data ../shared/data    # the free signals alone, every question

`s2a eval --task hotpotqa` saves, for `s2a_compressor` (and its modes), the model's P(keep) of
every one of a question's 10 paragraphs. This script applies selection rules to those saved
probabilities, with no model call, so every rule is judged on the same model outputs:

- `p>=t`: keep the paragraphs whose P(keep) reaches t (the shape of the adapters' threshold);
- `top k by P(keep)`, `top k by BM25`;
- `fused top k`: reciprocal-rank fusion of the P(keep) ranking and BM25's;
- the adapters' rule (`s2a._fusion.fused_keep`, `Fusion()`) and its variations: the paragraphs
  at the threshold, those whose title the question names, the fused top share, and the bridges
  (a paragraph whose title a kept paragraph names: a two-hop question's other needed paragraph).

Without `--results`, only the rules that need no model run (BM25, titles, the bridge, with BM25's
order for "fused"), on every question of the file: what a free lexical first stage reaches.

Questions are split by position into a tuning half (even) and a checking half (odd): choose on
the first, report the second. Per rule: both gold kept and tokens kept (whitespace words), on
questions with at least 3 paragraphs, as `s2a eval` counts them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from s2a._fusion import Fusion, bm25_order, fused_keep, fused_order, name, named
from s2a.evaluation.hotpotqa import (
    HOTPOTQA,
    HotpotRecord,
    Selection,
    as_hotpot,
    selection_scores,
)
from s2a.selection import DEFAULT_FUSION, DEFAULT_RAG_THRESHOLD


@dataclass(frozen=True)
class Question:
    """A question, the model's saved P(keep) of its paragraphs (none without `--results`), BM25's order."""

    record: HotpotRecord
    p_keep: dict[int, float]
    bm25: list[int]


Rule = Callable[[Question], set[int]]


def question(record: HotpotRecord, p_keep: dict[int, float]) -> Question:
    """`record` with its P(keep) and its paragraphs in BM25's order, ranked once for every rule."""
    return Question(record, p_keep, bm25_order([p.text for p in record.passages], record.question))


def _fused(q: Question) -> list[int]:
    """The paragraphs by reciprocal-rank fusion of BM25 and P(keep); by BM25 alone without P(keep)."""
    return fused_order(q.p_keep, q.bm25) if q.p_keep else q.bm25


def threshold(t: float) -> Rule:
    return lambda q: {i for i, p in q.p_keep.items() if p >= t}


def top_p(k: int) -> Rule:
    return lambda q: set(sorted(q.p_keep, key=lambda i: -q.p_keep[i])[:k])


def top_bm25(k: int) -> Rule:
    return lambda q: set(q.bm25[:k])


def fused(k: int) -> Rule:
    return lambda q: set(_fused(q)[:k])


def adapters(fusion: Fusion, *, sure: float | None = DEFAULT_RAG_THRESHOLD, model: bool = True) -> Rule:
    """The adapters' rule (`s2a._fusion.fused_keep`), with P(keep) >= `sure` always kept, or not.

    Without `model` (or without saved P(keep)), every P(keep) is 1.0: BM25 alone ranks.
    """

    def rule(q: Question) -> set[int]:
        passages = q.record.passages
        p_keep = (q.p_keep if model else {}) or dict.fromkeys(range(len(passages)), 1.0)
        return fused_keep(
            p_keep,
            sure if q.p_keep and model else None,
            texts=[p.text for p in passages],
            query=q.record.question,
            titles=[p.title if fusion.title_key else None for p in passages],
            lexical=q.bm25,
            fusion=fusion,
        )

    return rule


def misses(rule: Rule, questions: list[Question]) -> list[str]:
    """One line per gold paragraph `rule` drops (questions of 3 paragraphs or more): why it might have.

    Its P(keep), BM25 and fused ranks (1-based), and whether the question or the other gold
    paragraph names its title.
    """
    lines = []
    for q in questions:
        passages = q.record.passages
        if len(passages) < 3:
            continue
        kept, order = rule(q), _fused(q)
        for g in (g for g in q.record.gold if g not in kept):
            others = " ".join(passages[o].text for o in q.record.gold if o != g)
            lines.append(
                f"{q.record.id}: {passages[g].title!r} P(keep) {q.p_keep.get(g, float('nan')):.2f}, "
                f"BM25 #{q.bm25.index(g) + 1}, fused #{order.index(g) + 1}, named in the question "
                f"{named(passages[g].title, q.record.question)}, "
                f"in the other gold {named(passages[g].title, others)}"
            )
    return lines


def measure(rule: Rule, questions: list[Question]) -> tuple[float, float, int]:
    """Mean both gold kept and tokens kept, as `s2a eval` scores them, and over how many questions."""
    scored = [selection_scores(q.record, Selection(kept=sorted(rule(q))), ranks=False) for q in questions]
    counted = [s for s in scored if "both_gold" in s]  # questions with too few paragraphs have none
    n = len(counted)
    both = sum(s["both_gold"] for s in counted)
    tokens = sum(s["tokens_kept"] for s in counted)
    return both / max(n, 1), tokens / max(n, 1), n


def title_counts(records: list[HotpotRecord]) -> str:
    """How often a gold or a distractor paragraph's title is named in the question, or in a gold paragraph."""
    named = {
        "gold in question": 0,
        "distractor in question": 0,
        "gold in the other gold": 0,
        "distractor in a gold": 0,
    }
    gold_n = distractor_n = 0
    for record in records:
        passages, asked = record.passages, record.question.lower()
        golds = [p for p in passages if p.supporting]
        for passage in passages:
            title = name(passage.title)
            body = " ".join(" ".join(g.sentences) for g in golds if g is not passage).lower()
            kind = "gold" if passage.supporting else "distractor"
            gold_n += kind == "gold"
            distractor_n += kind == "distractor"
            named[f"{kind} in question"] += title in asked
            named["gold in the other gold" if kind == "gold" else "distractor in a gold"] += title in body
    return (
        f"titles named: gold in the question {named['gold in question']}/{gold_n}, distractor "
        f"{named['distractor in question']}/{distractor_n}; gold in the other gold "
        f"{named['gold in the other gold']}/{gold_n}, distractor in a gold "
        f"{named['distractor in a gold']}/{distractor_n}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, help="s2a eval --task hotpotqa results.jsonl")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--method", default="s2a_compressor")
    parser.add_argument(
        "--misses", action="store_true", help="list the gold paragraphs the first rule and the default lose"
    )
    args = parser.parse_args()
    records = [as_hotpot(r) for r in HOTPOTQA.load(args.data / HOTPOTQA.file)]
    saved: dict[str, dict[int, float]] = {}
    for line in args.results.read_text(encoding="utf-8").splitlines() if args.results else []:
        row = json.loads(line)
        if row["method"] == args.method and not row.get("error") and row.get("kept_scores"):
            saved[row["id"]] = {int(i): p for i, p in row["kept_scores"].items()}
    halves: tuple[list[Question], list[Question]] = ([], [])
    for position, record in enumerate(records):
        p_keep = saved.get(record.id, {})
        if args.results and len(p_keep) != len(record.passages):
            continue  # not run, or not every paragraph scored
        halves[position % 2].append(question(record, p_keep))
    model_rules: list[tuple[str, Rule]] = [
        *[(f"p>={t}", threshold(t)) for t in (0.3, 0.35, 0.4, 0.45)],
        *[(f"top {k} by P(keep)", top_p(k)) for k in (3, 4, 5)],
    ]
    rules: list[tuple[str, Rule]] = [
        *(model_rules if args.results else []),
        *[(f"top {k} by BM25", top_bm25(k)) for k in (3, 4, 5)],
        *[(f"fused top {k}", fused(k)) for k in (3, 4, 5)],
        (
            "adapters' default (share 0.3, bridges at any rank, floor 0.1, threshold 0.4)",
            adapters(DEFAULT_FUSION),
        ),
        *[(f"  share {share}", adapters(Fusion(share=share))) for share in (0.2, 0.4)],
        *[(f"  bridges within {hop} ranks past the share", adapters(Fusion(hop=hop))) for hop in (0, 2, 4)],
        ("  no titles, no bridge", adapters(Fusion(title_key=None))),
        ("  floor 0", adapters(Fusion(floor=0.0))),
        ("  no threshold", adapters(DEFAULT_FUSION, sure=None)),
        ("  share 0.4, bridges within 2 ranks (the first rule)", adapters(Fusion(share=0.4, hop=2))),
        *([("  without the model: BM25 alone ranks", adapters(Fusion(), model=False))] * bool(args.results)),
    ]
    print(
        f"{args.method if args.results else 'no model'}: {len(halves[0])} tuning and "
        f"{len(halves[1])} checking questions{' with every P(keep) saved' if args.results else ''}\n"
    )
    if not args.results:
        print(title_counts(records) + "\n")
    print("| rule | tune: both gold | tune: tokens | check: both gold | check: tokens |")
    print("|---|---|---|---|---|")
    for label, rule in rules:
        (tb, tt, _), (cb, ct, _) = measure(rule, halves[0]), measure(rule, halves[1])
        print(f"| {label} | {tb:.0%} | {tt:.0%} | {cb:.0%} | {ct:.0%} |")

    if args.misses:
        first = adapters(Fusion(share=0.4, hop=2))
        for label, rule in (("first rule", first), ("default", adapters(Fusion()))):
            dropped = misses(rule, halves[0] + halves[1])
            print(f"\n{label}: {len(dropped)} gold paragraphs dropped")
            print("\n".join(dropped))


if __name__ == "__main__":
    main()
