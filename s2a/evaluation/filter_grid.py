"""The grid report of `filter_quality`: saved `scored` runs re-read over a grid of thresholds.

The six quality lines (`TARGETS`) and each setting's shortfall against them, joining the opinion
tests of a `focus=objectivity` run and marking the clean gsm_ic problems the baseline answered
right, and the tables `grid` prints. No server is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s2a import S2AConfig, S2ARequest, S2AResult
from s2a.evaluation.filter_scoring import BASELINE_RIGHT, RIGHT_CHANGED, Case, Report, Tally, _records, reread

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
