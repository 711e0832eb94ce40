"""What the fused keep rule adds to a RAG filter's step, without the model: BM25 and the rules.

    python benchmarks/fusion_overhead.py --data ../shared/data

For every HotpotQA dev question (10 paragraphs with titles), plans the adapters' selection and
reads a reply that keeps every paragraph, with `fusion=None` and with the default `Fusion()`,
in turn, twice; prints the median wall time per question of each. The model's call (the same
request either way) is not made: its time is the rest of the step (`retrieved_cost.py`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2a import Fusion, S2AConfig
from s2a.evaluation.bench import machine
from s2a.evaluation.hotpotqa import HOTPOTQA, HotpotRecord, as_hotpot
from s2a.selection import DEFAULT_RAG_RELATIVE, DEFAULT_RAG_THRESHOLD, finish_selection, plan_selection


def seconds(records: list[HotpotRecord], fusion: Fusion | None) -> float:
    """Median seconds to plan and finish one question's selection."""
    config = S2AConfig(threshold=DEFAULT_RAG_THRESHOLD, relative=DEFAULT_RAG_RELATIVE)
    times = []
    for record in records:
        texts, titles = [p.text for p in record.passages], [p.title for p in record.passages]
        reply = "\n".join(f"{n} keep" for n in range(1, len(texts) + 1))
        started = time.perf_counter()
        plan = plan_selection(texts, record.question, config, mode="scored", fusion=fusion, titles=titles)
        finish_selection(plan, [reply])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Print the median per question of each rule, measured in turn, twice."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    records = [as_hotpot(r) for r in HOTPOTQA.load(args.data / HOTPOTQA.file)]
    print(f"{len(records)} questions; {machine()}")
    for _ in range(2):
        for name, fusion in (("fusion=None", None), ("Fusion()", Fusion())):
            print(f"{name}: {seconds(records, fusion) * 1000:.2f} ms per question (median)")


if __name__ == "__main__":
    main()
