"""Tables (Markdown) and figures (PNG) from a task's results."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from s2a.evaluation.records import Record
from s2a.evaluation.runner import ExampleResult
from s2a.evaluation.scoring import bootstrap_interval, wilson_interval
from s2a.evaluation.task import Task

_SCALE = {
    "accuracy": "accuracy (%)",
    "sycophancy": "sycophancy: answers agreeing with the user (%)",
    "objectivity": "objectivity (0-5)",
    "quality": "quality (1-5)",
}
_SHARES = {"accuracy", "sycophancy"}
"""Metrics that are 0 or 1 per example: shown as percentages, with Wilson intervals."""


@dataclass(frozen=True)
class Cell:
    """A summary of one metric over a group of examples."""

    value: float
    low: float
    high: float
    n: int

    def render(self, percent: bool) -> str:
        """`55.0 [33.3, 74.7] n=20` (percent) or `3.40 [3.05, 3.75] n=20`."""
        if self.n == 0:
            return "-"
        if percent:
            return f"{100 * self.value:.1f} [{100 * self.low:.1f}, {100 * self.high:.1f}] n={self.n}"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}] n={self.n}"


def summarise(
    rows: Sequence[ExampleResult], metric: str, *, seed: int = 0, binary: Collection[str] = _SHARES
) -> Cell:
    """Mean of `metric` over the scored rows with its 95% interval.

    Wilson for the `binary` metrics (0 or 1 per row), percentile bootstrap for the others.
    """
    values = [r.scores[metric] for r in rows if r.error is None and metric in r.scores]
    if not values:
        return Cell(math.nan, math.nan, math.nan, 0)
    if metric in binary:
        low, high = wilson_interval(round(sum(values)), len(values))
    else:
        low, high = bootstrap_interval(values, seed=seed)
    return Cell(statistics.fmean(values), low, high, len(values))


def methods_in(rows: Sequence[ExampleResult], order: Sequence[str] | None) -> list[str]:
    """The methods of `rows`, those in `order` first, in its order."""
    seen = list(dict.fromkeys(r.method for r in rows))
    if order is None:
        return seen
    return [m for m in order if m in seen] + [m for m in seen if m not in order]


def grid(
    task: Task, rows: Sequence[ExampleResult], metric: str, order: Sequence[str] | None = None
) -> dict[str, dict[str, Cell]]:
    """`{method: {"all" | label: Cell}}` for one metric."""
    out: dict[str, dict[str, Cell]] = {}
    for method in methods_in(rows, order):
        mine = [r for r in rows if r.method == method]
        out[method] = {"all": summarise(mine, metric)}
        for label in task.labels:
            out[method][label] = summarise([r for r in mine if r.label == label], metric)
    return out


def _share(hits: int, n: int) -> str:
    return f"{100 * hits / n:.1f}% ({hits}/{n})" if n else "-"


def _checked(
    check: Callable[[Record, str], bool | None], rows: Sequence[ExampleResult], records: Sequence[Record]
) -> list[bool]:
    """`check(record, prompt seen)` for each scored row of a known record, where it applies."""
    by_id = {r.id: r for r in records}
    seen = [check(by_id[r.id], r.prompt) for r in rows if r.error is None and r.id in by_id]
    return [s for s in seen if s is not None]


def planted_removed(task: Task, rows: Sequence[ExampleResult], records: Sequence[Record]) -> str:
    """How often the planted distractor or opinion did not reach the answer step: `% (k/n)`."""
    planted = _checked(task.kept_planted, rows, records)
    return _share(planted.count(False), len(planted))


def needed_kept(task: Task, rows: Sequence[ExampleResult], records: Sequence[Record]) -> str:
    """How often everything the answer needs reached the answer step verbatim: `% (k/n)`."""
    named = _checked(task.kept_needed, rows, records)
    return _share(named.count(True), len(named))


def broken_on_clean(task: Task, rows: Sequence[ExampleResult], method: str) -> str:
    """Of the clean prompts (nothing planted) `baseline` answered right, how many `method` got wrong.

    `k/n`; `-` for baseline itself, a judged task, or a task without clean prompts.
    """
    if method == "baseline" or task.clean_label is None or "accuracy" not in task.metrics:
        return "-"
    scored = [r for r in rows if r.error is None and "accuracy" in r.scores and r.label == task.clean_label]
    right = {r.id for r in scored if r.method == "baseline" and r.scores["accuracy"] == 1.0}
    mine = [r for r in scored if r.method == method and r.id in right]
    return f"{sum(r.scores['accuracy'] < 1.0 for r in mine)}/{len(mine)}" if right else "-"


def opinion_flips(task: Task, rows: Sequence[ExampleResult], records: Sequence[Record], method: str) -> str:
    """How often the answer's correctness changes with the stated opinion: `% (k/n)`.

    Per group (one question under each opinion type), each opinion prompt's correctness is
    compared with that of the same method on the group's clean prompt. Only prompts with
    something planted count (a control sentence in the group is not an opinion). The oracle,
    which sees the clean question every time, flips 0 by construction. `-` without groups.
    """
    if task.clean_label is None or "accuracy" not in task.metrics:
        return "-"
    group = {r.id: task.group(r) for r in records}
    planted = {r.id for r in records if task.planted(r) is not None}
    mine = [r for r in rows if r.method == method and r.error is None and group.get(r.id) is not None]
    clean = {group[r.id]: r.scores["accuracy"] for r in mine if r.label == task.clean_label}
    pairs = [
        (r.scores["accuracy"], clean[group[r.id]])
        for r in mine
        if r.label != task.clean_label and r.id in planted and group[r.id] in clean
    ]
    return _share(sum(a != b for a, b in pairs), len(pairs))


def parts_removed(task: Task, rows: Sequence[ExampleResult], records: Sequence[Record]) -> str:
    """Of the planted sentences (a biography's), how many did not reach the answer step: `% (k/n)`."""
    by_id = {r.id: r for r in records}
    counts = [task.parts_removed(by_id[r.id], r.prompt) for r in rows if r.error is None and r.id in by_id]
    found = [c for c in counts if c is not None]
    return _share(sum(k for k, _ in found), sum(n for _, n in found))


def filter_table(
    task: Task, rows: Sequence[ExampleResult], records: Sequence[Record], order: Sequence[str] | None = None
) -> str:
    """What reached the answer step, per method: planted removed, needed kept, harm and flips.

    Tasks whose planted text comes in sentences (a biography) add the share of those sentences
    removed; tasks with labels add planted removed and needed kept for each label.
    """
    sentences = any(task.parts(r) for r in records[:1])
    lines = [
        f"**{task.name}: what reached the answer step** (planted removed, needed kept verbatim, "
        "clean prompts broken against baseline, opinion flips)\n",
        "| method | planted removed | needed kept | broken on clean | opinion flips |"
        + (" planted sentences removed |" if sentences else ""),
        "|---|---|---|---|---|" + ("---|" if sentences else ""),
    ]
    for method in methods_in(rows, order):
        mine = [r for r in rows if r.method == method]
        lines.append(
            f"| {method} | {planted_removed(task, mine, records)} | {needed_kept(task, mine, records)} "
            f"| {broken_on_clean(task, rows, method)} | {opinion_flips(task, rows, records, method)} |"
            + (f" {parts_removed(task, mine, records)} |" if sentences else "")
        )
    if task.label_field is not None:
        lines += ["", f"**{task.name}: planted removed / needed kept, by {task.label_field}**\n"]
        lines.append("| method | " + " | ".join(task.labels) + " |")
        lines.append("|---" * (len(task.labels) + 1) + "|")
        for method in methods_in(rows, order):
            mine = [r for r in rows if r.method == method]
            cells = []
            for label in task.labels:
                here = [r for r in mine if r.label == label]
                cells.append(f"{planted_removed(task, here, records)} / {needed_kept(task, here, records)}")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, ""])


def versus_baseline(rows: Sequence[ExampleResult], method: str, metric: str) -> str:
    """Paired against `baseline` on the same records: `+a -b` (a records scored higher, b lower).

    With a few dozen examples the intervals of two methods overlap; the paired count says
    how many answers the method fixed and how many it broke. `-` without baseline rows.
    """
    scored = [r for r in rows if r.error is None and metric in r.scores]
    base = {r.id: r.scores[metric] for r in scored if r.method == "baseline"}
    if method == "baseline" or not base:
        return "-"
    pairs = [(r.scores[metric], base[r.id]) for r in scored if r.method == method and r.id in base]
    return f"+{sum(m > b for m, b in pairs)} -{sum(m < b for m, b in pairs)}"


def markdown(
    task: Task,
    rows: Sequence[ExampleResult],
    order: Sequence[str] | None = None,
    records: Sequence[Record] | None = None,
) -> str:
    """One Markdown table per metric: methods by rows, all and each label by columns.

    `vs baseline` counts, over the records both ran, those the method scored higher and lower
    than `baseline`. With `records`, a last table (`filter_table`) says what reached the answer
    step: the planted distractor or opinion (a number, the suggested answer, the opinion
    sentence), what the answer needs, the clean answers broken and the opinion flip rate.
    """
    parts: list[str] = []
    failed = [r for r in rows if r.error is not None]
    for metric in task.metrics:
        table = grid(task, rows, metric, order)
        columns = ["all", *task.labels]
        interval = "Wilson" if metric in _SHARES else "bootstrap"
        parts.append(f"**{task.name}: {_SCALE[metric]}**, mean [95% {interval} interval] n=examples\n")
        extra = ["vs baseline", "fallbacks"]
        parts.append("| method | " + " | ".join([*columns, *extra]) + " |")
        parts.append("|---" * (len(columns) + len(extra) + 1) + "|")
        for method, cells in table.items():
            fallbacks = sum(1 for r in rows if r.method == method and r.fallback and r.error is None)
            rendered = " | ".join(cells[c].render(metric in _SHARES) for c in columns)
            paired = versus_baseline(rows, method, metric)
            parts.append(f"| {method} | {rendered} | {paired} | {fallbacks} |")
        parts.append("")
    if records is not None:
        parts.append(filter_table(task, rows, records, order))
    if failed:
        parts.append(f"{len(failed)} example(s) failed and are not counted (see `error` in results.jsonl).\n")
    return "\n".join(parts)


def figure(task: Task, rows: Sequence[ExampleResult], path: Path, order: Sequence[str] | None = None) -> None:
    """Bars per method for all examples and each label, with 95% intervals; one panel per metric."""
    import matplotlib as mpl  # noqa: PLC0415 - plotting is only needed here

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    groups = ["all", *task.labels]
    size = (max(6.0, 1.6 * len(groups) + 2), 3.6 * len(task.metrics))
    figure_, axes = plt.subplots(len(task.metrics), 1, figsize=size, squeeze=False)
    for axis, metric in zip(axes[:, 0], task.metrics, strict=True):
        table = grid(task, rows, metric, order)
        scale = 100.0 if metric in _SHARES else 1.0
        width = 0.8 / max(1, len(table))
        for i, (method, cells) in enumerate(table.items()):
            xs = [g + (i - (len(table) - 1) / 2) * width for g in range(len(groups))]
            values = [scale * cells[g].value for g in groups]
            errors = [
                [max(0.0, scale * (cells[g].value - cells[g].low)) for g in groups],
                [max(0.0, scale * (cells[g].high - cells[g].value)) for g in groups],
            ]
            axis.bar(
                xs,
                values,
                width,
                yerr=errors,
                capsize=2,
                label=method,
                error_kw={"elinewidth": 0.8, "ecolor": "0.35"},
            )
        axis.set_xticks(range(len(groups)), groups)
        axis.set_ylabel(_SCALE[metric])
        axis.set_ylim(0, 100 if metric in _SHARES else 5)
        axis.set_title(f"{task.name}: {_SCALE[metric]} by {task.label_field or 'prompt'}")
        axis.legend(
            fontsize="small", ncols=min(4, len(table)), loc="upper center", bbox_to_anchor=(0.5, -0.12)
        )
    figure_.tight_layout()
    figure_.savefig(path, dpi=120)
    plt.close(figure_)
