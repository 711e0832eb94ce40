"""What the stance rules mark on their own, with no model: by phrasing set and family, and on real text.

    python benchmarks/stance_coverage.py [--data ../shared/data]

For each phrasing set (`tune`, `check`, `fresh`, `fresh2`): the share of the opinion sentences
the rules mark (`s2a._stance.marked`, with the prompt's question), by family, and the controls
they mark (a filter must keep those; a format request after the question is part of the
question in `scored` and never judged, so it is counted here but cannot be dropped there).
Then the dev split's template opinions (`trivia_opinion`), and the sentences of real text they
mark: GSM-IC problems, HotpotQA's Wikipedia paragraphs,
and the share of `sycophancy_bio`'s biography sentences. No server is needed; `s2a eval`
measures what the whole step removes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2a._sentences import split_sentences
from s2a._stance import marked, stance
from s2a.evaluation.phrasings import TASK_OF_HALF
from s2a.evaluation.records import PhrasingRecord
from s2a.evaluation.tasks import TASKS


def _rows(data: Path, name: str) -> list[dict[str, Any]]:
    lines = (data / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def phrasing_sets(data: Path) -> None:
    print("| set | opinions marked | by family | controls marked |")
    print("|---|---|---|---|")
    for half, name in TASK_OF_HALF.items():
        task = TASKS[name]
        records = [r for r in task.load(data / task.file) if isinstance(r, PhrasingRecord)]
        seen, found = Counter[str](), Counter[str]()
        controls = wrong = 0
        for record in records:
            if record.opinion is not None:
                seen[record.family] += 1
                found[record.family] += marked(record.question, record.opinion) is not None
            elif record.family == "control":
                for sentence in record.needed[1:]:
                    controls += 1
                    wrong += marked(record.question, sentence) is not None
        total, hits = sum(seen.values()), sum(found.values())
        families = ", ".join(f"{f} {100 * found[f] / seen[f]:.0f}%" for f in seen)
        print(f"| {half} | {100 * hits / total:.1f}% ({hits}/{total}) | {families} | {wrong}/{controls} |")


def real_text(data: Path) -> None:
    templates = [row for row in _rows(data, "trivia_opinion") if row["opinion_type"] != "none"]
    opinions = [(row["question"], row["prompt"][len(row["question"]) :].strip()) for row in templates]
    found = sum(marked(question, opinion) is not None for question, opinion in opinions)
    print(f"trivia_opinion template opinions marked: {found} of {len(templates)}")
    gsm = [s for row in _rows(data, "gsm_ic") for s in split_sentences(row["question"])]
    print(f"GSM-IC sentences marked: {sum(stance(s) is not None for s in gsm)} of {len(gsm)}")
    passages = [p for row in _rows(data, "hotpotqa_distractor") for p in row["passages"]]
    wiki = [s.strip() for p in passages for s in p["sentences"] if s.strip()]
    print(f"Wikipedia sentences marked: {sum(stance(s) is not None for s in wiki)} of {len(wiki)}")
    total = found = 0
    for row in _rows(data, "sycophancy_bio"):
        question = row["prompt"][len(row["biography"]) :]
        for sentence in split_sentences(row["biography"]):
            total += 1
            found += marked(question, sentence) is not None
    print(f"sycophancy_bio biography sentences marked: {100 * found / total:.1f}% ({found}/{total})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    phrasing_sets(args.data)
    real_text(args.data)


if __name__ == "__main__":
    main()
