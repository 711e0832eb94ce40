"""What the stance rules mark on their own, with no model: by phrasing set and family, and on real text.

    python benchmarks/stance_coverage.py [--data ../shared/data] [--probe]

For each phrasing set (`tune`, `check`, `fresh`, `fresh2`): the share of the opinion sentences
the rules mark (`s2a._stance.marked`, with the prompt's question), by family, and the controls
they mark (a filter must keep those; a format request after the question is part of the
question in `scored` and never judged, so it is counted here but cannot be dropped there).
Then the dev split's template opinions (`trivia_opinion`), and the sentences of real text they
mark: GSM-IC problems, HotpotQA's Wikipedia paragraphs,
and the share of `sycophancy_bio`'s biography sentences. No server is needed; `s2a eval`
measures what the whole step removes.

With `--probe` (the `probe` extra), what `scored`'s marks alone do to whole prompts, with the
rules and with rules and stance probe side by side: each prompt of a phrasing set goes through
the step's own splitting, question finder and marking (`prepare`, `stance_marks`), and the
marked sentences are deleted as the step deletes them. What the model's tests drop besides is
not counted (no server), so opinions removed is a floor and needed kept a ceiling.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2a._sentences import split_sentences
from s2a._stance import marked, stance
from s2a._types import S2AInput
from s2a._windows import prepare
from s2a.evaluation.phrasings import TASK_OF_HALF
from s2a.evaluation.records import PhrasingRecord, Record
from s2a.evaluation.task import Task
from s2a.evaluation.tasks import TASKS
from s2a.variants import S2AConfig
from s2a.variants.extractive import extractive_outcome
from s2a.variants.scored import stance_marks


def _rows(data: Path, name: str) -> list[dict[str, Any]]:
    lines = (data / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _sets(data: Path) -> Iterator[tuple[str, Task, list[PhrasingRecord]]]:
    """Each phrasing set: its name, its task and its records."""
    for half, name in TASK_OF_HALF.items():
        task = TASKS[name]
        yield half, task, [r for r in task.load(data / task.file) if isinstance(r, PhrasingRecord)]


def phrasing_sets(data: Path) -> None:
    print("| set | opinions marked | by family | controls marked |")
    print("|---|---|---|---|")
    for half, _task, records in _sets(data):
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


def _marked_prompt(task: Task, record: Record, probe: bool) -> str:
    """The prompt with the sentences `scored`'s marks drop deleted, as the step deletes them."""
    request = prepare(S2AInput(context=task.prompt(record)), S2AConfig(variant="scored", stance_probe=probe))
    outcome = extractive_outcome(request, set(stance_marks(request)))
    return outcome.prompt if outcome.prompt is not None else task.prompt(record)


def in_prompts(data: Path) -> None:
    print("| set | marks | opinion removed | by family | needed kept | clean unchanged |")
    print("|---|---|---|---|---|---|")
    for half, task, records in _sets(data):
        for probe in (False, True):
            seen, found = Counter[str](), Counter[str]()
            needed = kept = clean = same = 0
            for record in records:
                prompt = _marked_prompt(task, record, probe)
                if record.opinion is not None:
                    seen[record.family] += 1
                    found[record.family] += not task.kept_planted(record, prompt)
                elif record.family == "none":
                    clean += 1
                    same += prompt == task.prompt(record)
                else:
                    needed += 1
                    kept += bool(task.kept_needed(record, prompt))
            total, hits = sum(seen.values()), sum(found.values())
            families = ", ".join(f"{f} {100 * found[f] / seen[f]:.0f}%" for f in seen)
            print(
                f"| {half} | {'rules and probe' if probe else 'rules'} | "
                f"{100 * hits / total:.1f}% ({hits}/{total}) | {families} | "
                f"{kept}/{needed} | {same}/{clean} |"
            )


DEV_SPLIT = ("gsm_ic", "gsm_ic_clean", "trivia_opinion", "argument_opinion", "sycophancy_bio")


def dev_split(data: Path) -> None:
    """What the probe adds to the rules' marks on every prompt of the dev split's files."""
    print(
        "\n| task | marks | planted removed | biography sentences removed | needed kept "
        "| clean unchanged | prompts the probe changes |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in DEV_SPLIT:
        task = TASKS[name]
        records = task.load(data / task.file)
        prompts = {probe: [_marked_prompt(task, r, probe) for r in records] for probe in (False, True)}
        changed = sum(a != b for a, b in zip(prompts[False], prompts[True], strict=True))
        for probe, deleted in prompts.items():
            pairs = list(zip(records, deleted, strict=True))
            removed = [not k for r, p in pairs if (k := task.kept_planted(r, p)) is not None]
            parts = [n for r, p in pairs if (n := task.parts_removed(r, p)) is not None]
            needed = [k for r, p in pairs if (k := task.kept_needed(r, p)) is not None]
            clean = [p == task.prompt(r) for r, p in pairs if task.label(r) == task.clean_label]
            print(
                f"| {name} | {'rules and probe' if probe else 'rules'} | {_count(removed)} "
                f"| {f'{sum(k for k, _ in parts)}/{sum(n for _, n in parts)}' if parts else '-'} "
                f"| {_count(needed)} | {_count(clean)} | {f'{changed}/{len(records)}' if probe else ''} |"
            )


def _count(hits: list[bool]) -> str:
    return f"{sum(hits)}/{len(hits)}" if hits else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--probe", action="store_true", help="whole prompts, rules beside rules and probe")
    args = parser.parse_args()
    if args.probe:
        in_prompts(args.data)
        dev_split(args.data)
        return
    phrasing_sets(args.data)
    real_text(args.data)


if __name__ == "__main__":
    main()
