"""Scoring what the S2A step did with the prompts of saved cases: the measures of `filter_quality`.

The cases (gsm_ic, trivia_opinion and argument_opinion prompts), the tallies each result adds to
a variant's report, filtering every case with a config, and re-reading `scored` results at other
thresholds without a server. `s2a.evaluation.filter_quality` describes the measures.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
