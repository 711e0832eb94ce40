"""`s2a bench`: what S2A costs, per method, as ratios measured within one run.

For each method and record, repeated `repeats` times in turn (so that drift on a shared
machine hits every method alike): tokens generated and wall time of the filter step and of
the whole answer, and the overhead against `baseline` on the same record and repeat. Then
throughput of the S2A step at several concurrency levels against the same server. Medians
throughout.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from s2a._types import S2AInput
from s2a.evaluation.methods import S2A_TOKENS, ChatModel, Outcome, Peer, Step, run_method
from s2a.evaluation.tasks import Record, Task
from s2a.local.cpu import cpu_model
from s2a.variants import S2AConfig, prepare


@dataclass(frozen=True)
class MethodCost:
    """Medians over records and repeats for one method."""

    method: str
    runs: int
    filter_tokens: float | None
    filter_seconds: float | None
    answer_tokens: float
    total_seconds: float
    overhead: float | None
    """Median of total seconds / baseline's total seconds on the same record and repeat."""


@dataclass(frozen=True)
class Throughput:
    """The S2A step sent `requests` times with `concurrency` in flight."""

    concurrency: int
    requests: int
    seconds: float
    output_tokens: int

    @property
    def per_second(self) -> float:
        """Requests completed per second."""
        return self.requests / self.seconds

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second, all requests together."""
        return self.output_tokens / self.seconds


def _total(outcome: Outcome) -> float:
    return sum(s.seconds for s in outcome.steps)


def _step(outcome: Outcome, name: str) -> Step | None:
    return next((s for s in outcome.steps if s.name == name), None)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def measure_methods(
    task: Task,
    records: Sequence[Record],
    methods: Sequence[str],
    model: ChatModel,
    *,
    repeats: int,
    peers: dict[str, Peer] | None = None,
    on_run: Callable[[], object] | None = None,
) -> list[MethodCost]:
    """Run every method on every record, `repeats` times; summarise the cost per method."""
    runs: dict[tuple[str, str, int], Outcome] = {}
    for repeat in range(repeats):
        for record in records:
            for method in methods:
                runs[method, record.id, repeat] = run_method(method, task, record, model, peers)
                if on_run is not None:
                    on_run()
    costs: list[MethodCost] = []
    for method in methods:
        mine = {(rid, rep): o for (m, rid, rep), o in runs.items() if m == method}
        filters = [_step(o, "filter") for o in mine.values()]
        answers = [_step(o, "answer") for o in mine.values()]
        overheads = [
            _total(o) / _total(runs["baseline", rid, rep])
            for (rid, rep), o in mine.items()
            if ("baseline", rid, rep) in runs
        ]
        costs.append(
            MethodCost(
                method=method,
                runs=len(mine),
                filter_tokens=_median([f.output_tokens if f else None for f in filters]),
                filter_seconds=_median([f.seconds if f else None for f in filters]),
                answer_tokens=_median([a.output_tokens if a else None for a in answers]) or 0.0,
                total_seconds=statistics.median(_total(o) for o in mine.values()),
                overhead=statistics.median(overheads) if overheads else None,
            )
        )
    return costs


def measure_throughput(
    task: Task, records: Sequence[Record], model: ChatModel, *, levels: Sequence[int], requests: int
) -> list[Throughput]:
    """Send the S2A step (`separated`) `requests` times at each concurrency level.

    The records' prompts go once, untimed, before the first level: a server with a prefix cache
    then holds them at every level alike, and no level pays for a cold cache the others skip.
    """
    prepared = [prepare(S2AInput(context=task.prompt(r)), S2AConfig(variant="separated")) for r in records]

    def one(i: int) -> int:
        request = prepared[i % len(prepared)]
        reply = model(request.messages, max_new_tokens=S2A_TOKENS)
        return reply.usage.output_tokens if reply.usage else 0

    for i in range(len(prepared)):
        one(i)
    results: list[Throughput] = []
    for level in levels:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=level) as pool:
            tokens = sum(pool.map(one, range(requests)))
        results.append(Throughput(level, requests, time.perf_counter() - started, tokens))
    return results


def machine() -> str:
    """The machine, in one line: OS, Python, CPU count and memory."""
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f", {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB RAM"
    cpu = cpu_model()
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU cores{f' ({cpu})' if cpu else ''}{memory}, no GPU used"
    )


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(
    *,
    command: str,
    model_id: str,
    task: Task,
    n_records: int,
    repeats: int,
    costs: Sequence[MethodCost],
    throughput: Sequence[Throughput],
) -> str:
    """The benchmark report, in Markdown."""
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks: what S2A costs",
        "",
        "Written by `s2a bench`; rerun the command below to reproduce it. The machine is shared",
        "and noisy, so compare the ratios within one run rather than seconds across runs.",
        "",
        f"- Command: `{command}`",
        f"- Date: {date}",
        f"- Machine: {machine()}",
        f"- Model: {model_id} (as the server's `/info` reports it)",
        f"- Workload: the first {n_records} records of `{task.name}`, each method run {repeats} times "
        "in turn; medians over records and repeats; greedy decoding.",
        "",
        "## Cost per method",
        "",
        "| method | runs | S2A step: tokens generated | S2A step: seconds | answer: tokens generated "
        "| whole answer: seconds | overhead vs baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in costs:
        overhead = "-" if c.overhead is None else f"{c.overhead:.2f}x"
        lines.append(
            f"| {c.method} | {c.runs} | {_cell(c.filter_tokens, 0)} | {_cell(c.filter_seconds)} "
            f"| {_cell(c.answer_tokens, 0)} | {_cell(c.total_seconds)} | {overhead} |"
        )
    lines += [
        "",
        "`overhead` is the median, over the same record and repeat, of the method's whole time",
        "(S2A step + answer) divided by the baseline's. The answer itself changes with the",
        "prompt it is given, so its length differs between methods too.",
        "",
        "## Throughput of the S2A step",
        "",
        "| concurrency | requests | seconds | requests/s | tokens generated/s | vs concurrency 1 |",
        "|---|---|---|---|---|---|",
    ]
    base = throughput[0].per_second if throughput else 1.0
    for t in throughput:
        lines.append(
            f"| {t.concurrency} | {t.requests} | {t.seconds:.1f} | {t.per_second:.3f} "
            f"| {t.tokens_per_second:.1f} | {t.per_second / base:.2f}x |"
        )
    lines += [
        "",
        "The S2A step of each record, cycled; the prompts went once, untimed, before the first",
        "level, so a server with a prefix cache holds them at every level alike.",
        "",
    ]
    return "\n".join(lines)
