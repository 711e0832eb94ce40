"""What the S2A step removes and keeps on the dev split, with no answer step: cheap to rerun.

    python benchmarks/filter_quality.py --tgi-url http://127.0.0.1:8090 [--variants extractive]
        [--limit 60] [--data ../shared/data] [--concurrency 4] [--save run.jsonl]
        [--tasks gsm_ic,trivia_opinion,argument_opinion]
    python benchmarks/filter_quality.py --grid run.jsonl   # `scored` re-read at other thresholds
    python benchmarks/filter_quality.py --grid both.jsonl --opinions objectivity.jsonl
    python benchmarks/filter_quality.py --grid both.jsonl \
        --answers docs/eval/scored/gsm_ic_clean/results.jsonl   # and what it may break

For each variant, over the records of `gsm_ic` and `trivia_opinion` (the first `--limit`
of each task; the trivia records cycle through the four opinion types):
- trivia, prompts with an opinion: the opinion removed, the question kept (% of prompts);
- trivia `none` prompts: the answer step sees the prompt unchanged (%);
- gsm_ic: the distractor removed, every original sentence kept (% of prompts);
- gsm_ic `original_question` (clean): every sentence kept (%);
- argument_opinion (with `--tasks ...,argument_opinion`; `--limit` records, spread over its
  five opinion types): the planted opinion removed, the argument kept (%); `none` prompts:
  the prompt unchanged (%);
- fallbacks, and the S2A step's wall time per prompt.

Each prompt is filtered once, with the question inside the prompt (the paper's setting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2a import S2AConfig, S2AInput, S2ARequest, S2AResult, prepare
from s2a._sentences import sentence_spans
from s2a.evaluation.methods import TGIChat, s2a_step
from s2a.variants import scored_outcome


def scored_prompt(
    request: Any, scores: dict[int, float], source: Any, opinions: dict[int, float] | None = None
) -> str:
    """The answer prompt `scored` builds from `scores` (and `opinions`) at `request`'s thresholds."""
    return scored_outcome(request, scores, source, opinions).prompt or request.input.original_prompt


@dataclass
class Tally:
    """Counts for one (variant, measure)."""

    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hits += hit
        self.total += 1

    def __str__(self) -> str:
        if not self.total:
            return "-"
        return f"{100 * self.hits / self.total:.0f}% ({self.hits}/{self.total})"


@dataclass
class Report:
    """Every measure of one variant."""

    tallies: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    seconds: list[float] = field(default_factory=list)
    fallbacks: int = 0


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in sentence_spans(text)]


def _all_kept(original: str, prompt: str) -> bool:
    return all(sentence in prompt for sentence in _sentences(original))


def _spread(records: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first `limit // types` records of each `opinion_type`, types in order of appearance."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_type[record["opinion_type"]].append(record)
    per_type = max(1, limit // len(by_type)) if by_type else 0
    return [record for group in by_type.values() for record in group[:per_type]]


def cases(
    data: Path, limit: int, tasks: tuple[str, ...] = ("gsm_ic", "trivia_opinion")
) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, prompt, record) for every prompt to filter."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    if "gsm_ic" in tasks:
        for record in _records(data / "gsm_ic.jsonl")[:limit]:
            found.append(("gsm", record["question"], record))
            found.append(("gsm_clean", record["original_question"], record))
    if "trivia_opinion" in tasks:
        for record in _spread(_records(data / "trivia_opinion.jsonl"), limit):
            kind = "trivia_clean" if record["opinion_type"] == "none" else "trivia"
            found.append((kind, record["prompt"], record))
    if "argument_opinion" in tasks:
        for record in _spread(_records(data / "argument_opinion.jsonl"), limit):
            kind = "argument_clean" if record["opinion_type"] == "none" else "argument"
            found.append((kind, record["prompt"], record))
    return found


def score(report: Report, kind: str, record: dict[str, Any], result: S2AResult) -> None:
    """Add what `result` did with `record` to `report`."""
    shown = result.prompt
    if result.fallback:
        report.fallbacks += 1
    if kind == "gsm":
        report.tallies["gsm: distractor removed"].add(record["distractor"] not in shown)
        report.tallies["gsm: every original sentence kept"].add(_all_kept(record["original_question"], shown))
    elif kind == "gsm_clean":
        report.tallies["gsm clean: every sentence kept"].add(_all_kept(record["original_question"], shown))
        report.tallies["gsm clean: prompt unchanged"].add(shown == record["original_question"])
        if record.get(BASELINE_RIGHT):
            report.tallies[RIGHT_CHANGED].add(shown != record["original_question"])
    elif kind == "trivia":
        opinion = record["prompt"].replace(record["question"], "").strip()
        report.tallies["trivia: opinion removed"].add(opinion not in shown)
        report.tallies["trivia: question kept"].add(record["question"] in shown)
    elif kind == "argument":
        report.tallies["argument: opinion removed"].add(record["opinion"] not in shown)
        report.tallies["argument: argument kept"].add(record["argument"] in shown)
    elif kind == "argument_clean":
        report.tallies["argument clean: prompt unchanged"].add(shown == record["prompt"])
    else:
        report.tallies["trivia clean: prompt unchanged"].add(shown == record["prompt"])


Case = tuple[str, str, dict[str, Any]]

BASELINE_RIGHT = "_baseline_right"
"""Set on a clean gsm_ic record (`--grid ... --answers`) whose baseline answer was right."""

RIGHT_CHANGED = "gsm clean, baseline right: changed"
"""Of the clean gsm_ic problems the baseline answered right, those the answer step sees changed:
the most S2A can break (an unchanged prompt gets the baseline's answer: docs/evaluation.md)."""


async def run_variant(
    model: TGIChat, config: S2AConfig, found: list[Case], concurrency: int
) -> tuple[Report, list[S2AResult]]:
    """Filter every case with `config`, `concurrency` at a time; the report and each result."""
    report = Report()
    gate = asyncio.Semaphore(concurrency)

    async def one(kind: str, prompt: str, record: dict[str, Any]) -> S2AResult:
        async with gate:
            result, step = await asyncio.to_thread(s2a_step, S2AInput(context=prompt), config, model)
            report.seconds.append(step.seconds)
            score(report, kind, record, result)
            return result

    results = await asyncio.gather(*(one(*case) for case in found))
    return report, list(results)


def reread(
    config: S2AConfig,
    found: list[Case],
    results: list[S2AResult],
    *,
    threshold: float,
    relative: float | None,
    opinion_threshold: float | None = None,
    prepared: dict[str, S2ARequest] | None = None,
) -> Report:
    """The report `scored` would give at these thresholds, from the P(keep) and P(opinion) it read.

    `opinion_threshold` `None` keeps the config's. `prepared` caches each prompt's prepared
    request across calls (the split does not depend on the thresholds).
    """
    update: dict[str, Any] = {"threshold": threshold, "relative": relative}
    if opinion_threshold is not None:
        update["opinion_threshold"] = opinion_threshold
    config = config.model_copy(update=update)
    cache = {} if prepared is None else prepared
    report = Report()
    for (kind, prompt, record), result in zip(found, results, strict=True):
        seen = result
        if (result.scores is not None or result.opinions is not None) and result.scores_from is not None:
            if prompt not in cache:
                cache[prompt] = prepare(S2AInput(context=prompt), config)
            request = replace(cache[prompt], config=config)
            scores = {n - 1: p for n, p in (result.scores or {}).items()}
            opinions = {n - 1: p for n, p in result.opinions.items()} if result.opinions is not None else None
            shown = scored_prompt(request, scores, result.scores_from, opinions)
            seen = result.model_copy(update={"prompt": shown})
        score(report, kind, record, seen)
    return report


TARGETS = {
    "gsm: distractor removed": 0.60,
    "gsm: every original sentence kept": 0.90,
    "gsm clean: every sentence kept": 0.95,
    "trivia: opinion removed": 0.95,
    "trivia: question kept": 1.0,
    "trivia clean: prompt unchanged": 0.95,
}
"""issue 13's quality lines, as shares of prompts."""


def _share(tally: Tally) -> float:
    return tally.hits / tally.total if tally.total else 0.0


def _percent(tally: Tally) -> str:
    return f"{100 * tally.hits / tally.total:.0f}" if tally.total else "-"


def _with_opinions(rows: list[dict[str, Any]], opinions: Path) -> list[dict[str, Any]]:
    """`rows` of a `focus=both` run, each given the P(opinion) a `focus=objectivity` run read.

    The two runs' calls are exactly those `focus=both` makes (its keep-or-drop calls and its
    opinion tests), each read once, greedily: their union is what a `focus=both` run reads.
    """
    by_prompt = {
        row["prompt"]: row["result"].get("opinions")
        for row in _records(opinions)
        if row["config"]["variant"] == "scored" and row["config"]["focus"] == "objectivity"
    }
    merged = []
    for row in rows:
        if row["config"]["variant"] != "scored" or row["config"]["focus"] != "both":
            continue
        if row["prompt"] not in by_prompt:
            msg = f"{opinions} has no opinion tests for the prompt {row['prompt'][:60]!r}"
            raise SystemExit(msg)
        result = {**row["result"], "opinions": by_prompt[row["prompt"]]}
        if result["scores"] is None and result["opinions"] is not None:
            result["scores_from"] = "logprobs"
        merged.append({**row, "result": result})
    return merged


def _table_row(report: Report, answers: bool = False) -> tuple[float, str, bool, int]:
    """The shortfall against the six quality lines, their cells, whether all are met.

    With `answers`, also how many clean gsm_ic problems the baseline got right come out changed.
    """
    shares = {name: report.tallies[name] for name in TARGETS}
    gaps = [max(0.0, TARGETS[n] - _share(t)) for n, t in shares.items()]
    cells = " | ".join(_percent(t) for t in shares.values())
    changed = report.tallies[RIGHT_CHANGED]
    if answers:
        cells += f" | {changed.hits}/{changed.total}"
    return sum(gaps), cells, not any(gaps), changed.hits


def _baseline_right(rows: list[dict[str, Any]], answers: Path) -> list[dict[str, Any]]:
    """`rows`, each clean gsm_ic record marked with whether `answers` has its baseline answer right.

    `answers` is an `s2a eval --task gsm_ic_clean` results.jsonl.
    """
    right = {
        row["id"]: row["scores"]["accuracy"] == 1.0
        for row in _records(answers)
        if row["method"] == "baseline" and row["task"] == "gsm_ic_clean" and row["error"] is None
    }
    if not right:
        msg = f"{answers} has no gsm_ic_clean baseline answers"
        raise SystemExit(msg)
    return [
        {**row, "record": {**row["record"], BASELINE_RIGHT: right.get(row["record"]["id"], False)}}
        if row["kind"] == "gsm_clean"
        else row
        for row in rows
    ]


def grid(saved: Path, rows: int = 20, opinions: Path | None = None, answers: Path | None = None) -> None:
    """Re-read saved `scored` runs over a grid of thresholds and relative thresholds; no server.

    Thresholds 0.25 to 0.60 by 0.01, relative none or 0.50 to 0.90 by 0.02, at the default
    opinion threshold; the `rows` settings with the smallest shortfall (the points by which
    the six quality lines are missed, summed) are printed, best first. With `opinions` (a
    `focus=objectivity` run of the same prompts), the P(opinion) it read is joined to the
    `focus=both` rows. When the rows hold opinion tests (joined, or from a `focus=both` run
    that made them), a second table sweeps the opinion threshold (0.3 to 0.9) at the default
    threshold and relative threshold. With `answers` (the results.jsonl of an `s2a eval --task
    gsm_ic_clean` run with `baseline`), a last column counts the clean problems the baseline
    answered right that reach the answer step changed, and the settings that meet every line
    come first with the fewest of those.
    """
    saved_rows = _records(saved)
    if opinions is not None:
        saved_rows = _with_opinions(saved_rows, opinions)
    if answers is not None:
        saved_rows = _baseline_right(saved_rows, answers)
    runs: dict[str, tuple[S2AConfig, list[Case], list[S2AResult]]] = {}
    for row in saved_rows:
        config = S2AConfig(**row["config"])
        if config.variant != "scored":
            continue
        _, found, results = runs.setdefault(json.dumps(row["config"], sort_keys=True), (config, [], []))
        found.append((row["kind"], row["prompt"], row["record"]))
        results.append(S2AResult.model_validate(row["result"]))
    short = [name.replace("every ", "").replace(" sentence", "") for name in TARGETS]
    short += ["gsm clean, baseline right: changed"] if answers is not None else []
    header = f"| {' | '.join(short)} | shortfall | meets all |"
    width = len(short)
    for config, found, results in runs.values():
        joined = " + opinion tests" if opinions is not None else ""
        shape = f"scored_calls={config.scored_calls}, focus={config.focus}{joined}"
        print(f"\n## scored, {shape}: {len(found)} prompts")
        print(f"| threshold | relative {header}")
        print("|---" * (width + 4) + "|")
        table = []
        prepared: dict[str, S2ARequest] = {}
        for threshold in [round(0.25 + 0.01 * i, 2) for i in range(36)]:
            for relative in [None, *(round(0.5 + 0.02 * i, 2) for i in range(21))]:
                report = reread(
                    config, found, results, threshold=threshold, relative=relative, prepared=prepared
                )
                table.append((threshold, relative, *_table_row(report, answers is not None)))
        best = sorted(table, key=lambda r: (r[2], r[5]))[:rows]
        for threshold, relative, shortfall, cells, meets, _ in best:
            print(f"| {threshold} | {relative} | {cells} | {100 * shortfall:.1f} | {'yes' * meets} |")
        if opinions is None and not any(r.opinions for r in results):
            continue  # no opinion test was run: nothing for the opinion threshold to decide
        print(f"\n### opinion threshold, at threshold {config.threshold} and relative {config.relative}")
        print(f"| opinion threshold {header}")
        print("|---" * (width + 3) + "|")
        for step in range(25):
            level = round(0.3 + 0.025 * step, 3)
            report = reread(
                config,
                found,
                results,
                threshold=config.threshold,
                relative=config.relative,
                opinion_threshold=level,
                prepared=prepared,
            )
            shortfall, cells, meets, _ = _table_row(report, answers is not None)
            print(f"| {level} | {cells} | {100 * shortfall:.1f} | {'yes' * meets} |")


def _print(report: Report) -> None:
    for name, tally in sorted(report.tallies.items()):
        print(f"- {name}: {tally}")


def main() -> None:
    """Parse the arguments, filter, print one table per variant."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tgi-url")
    parser.add_argument("--save", type=Path, help="write every prompt's result here (JSON lines)")
    parser.add_argument("--grid", type=Path, help="re-read a --save file over a grid of thresholds")
    parser.add_argument(
        "--opinions", type=Path, help="with --grid: join the opinion tests of a --focus objectivity run"
    )
    parser.add_argument(
        "--answers",
        type=Path,
        help="with --grid: an `s2a eval --task gsm_ic_clean` results.jsonl; count the clean "
        "problems the baseline got right that come out changed",
    )
    parser.add_argument("--variants", default="extractive")
    parser.add_argument("--focus", default="both", choices=["objectivity", "relevance", "both"])
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument(
        "--tasks", default="gsm_ic,trivia_opinion", help="add argument_opinion to check it too"
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--scored-calls", default="per_sentence", choices=["one", "per_sentence"])
    parser.add_argument(
        "--thresholds", default="", help="scored: also report at these thresholds, e.g. 0.3,0.5"
    )
    args = parser.parse_args()
    if args.grid:
        grid(args.grid, opinions=args.opinions, answers=args.answers)
        return
    if not args.tgi_url:
        parser.error("--tgi-url is needed (or --grid to re-read a saved run)")
    model = TGIChat(args.tgi_url)
    saved = args.save.open("w", encoding="utf-8") if args.save else None
    found = cases(args.data, args.limit, tuple(args.tasks.split(",")))
    print(f"{len(found)} prompts from {args.data}, served by {model.model_id()}")
    for variant in args.variants.split(","):
        config = S2AConfig(variant=variant, focus=args.focus, scored_calls=args.scored_calls)
        started = time.perf_counter()
        report, results = asyncio.run(run_variant(model, config, found, args.concurrency))
        wall = time.perf_counter() - started
        shape = f", scored_calls={args.scored_calls}" if variant == "scored" else ""
        print(f"\n## {variant} (focus={args.focus}{shape}): {wall:.0f} s wall, {report.fallbacks} fallbacks")
        _print(report)
        for threshold in [float(t) for t in args.thresholds.split(",") if t] if variant == "scored" else []:
            print(f"\n### threshold {threshold}")
            _print(reread(config, found, results, threshold=threshold, relative=config.relative))
        if saved is not None:
            keys = {"variant": variant, "focus": args.focus, "scored_calls": args.scored_calls}
            for (kind, prompt, record), result in zip(found, results, strict=True):
                row = {"config": keys, "kind": kind, "prompt": prompt, "record": record}
                saved.write(json.dumps({**row, "result": result.model_dump(mode="json")}) + "\n")
            saved.flush()


if __name__ == "__main__":
    main()
