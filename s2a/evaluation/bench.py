"""`s2a bench`: what S2A costs, per method, as ratios measured within one run.

For each record, repeated `repeats` times in turn (so that drift on a shared machine hits every
method alike): first the floor (the record's prompt read once, one token written), then every
method. Per method: what its S2A step cost as the driver counted it (calls, sequential rounds,
prompt, cached and generated tokens) and its wall time against the floor's on the same record
and repeat; the whole answer's time against `baseline`'s. From every step of the run (the
floors' too), a cost model, seconds = a x uncached prompt tokens + b x generated tokens + c x
calls, fitted by least squares, and how well it predicts each method's step time. Then
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
from s2a._windows import prepare
from s2a.evaluation.cost_model import GPU_PROJECTION, CostModel, fit_cost_model
from s2a.evaluation.methods import (
    S2A_TOKENS,
    ChatModel,
    Outcome,
    Peer,
    Step,
    answer_messages,
    reply_step,
    run_method,
)
from s2a.evaluation.records import Record
from s2a.evaluation.task import Task
from s2a.local.cpu import cpu_model
from s2a.variants import S2AConfig


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
    calls: float | None = None
    rounds: float | None = None
    prompt_tokens: float | None = None
    cached_tokens: float | None = None
    to_floor: float | None = None
    """Median of the S2A step's seconds / the floor's on the same record and repeat."""
    predicted_seconds: float | None = None
    """The cost model's median prediction of the S2A step's seconds."""
    cached_at_start: float | None = None
    """The floor only: the share of its first repeat's prompt tokens the server already held."""


WARM_CACHE = 0.9
"""A first floor read mostly from the cache means the server had seen the run's prompts before."""


def floor_step(task: Task, record: Record, model: ChatModel) -> Step:
    """The least any S2A step costs: the record's prompt read once, one token written."""
    return reply_step("floor", model(answer_messages(task, task.prompt(record)), max_new_tokens=1))


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
) -> tuple[list[MethodCost], MethodCost, CostModel | None]:
    """Run the floor, then every method, on every record, `repeats` times; summarise per method.

    Returns the methods' costs, the floor's (medians taken as a method's are) and the cost model
    fitted on every S2A step and floor of the run.
    """
    runs: dict[tuple[str, str, int], Outcome] = {}
    floors: dict[tuple[str, int], Step] = {}
    for repeat in range(repeats):
        for record in records:
            floors[record.id, repeat] = floor_step(task, record, model)
            for method in methods:
                runs[method, record.id, repeat] = run_method(method, task, record, model, peers)
                if on_run is not None:
                    on_run()
    steps = [*floors.values(), *(f for o in runs.values() if (f := _step(o, "filter")) is not None)]
    model_fit = fit_cost_model(steps)
    costs = [_method_cost(method, runs, floors, model_fit) for method in methods]
    return costs, _floor_cost(floors, model_fit), model_fit


def _floor_cost(floors: dict[tuple[str, int], Step], model_fit: CostModel | None) -> MethodCost:
    """The floor's medians, as a method's are taken: its prediction the median of the per-run ones."""
    steps = list(floors.values())
    seconds = statistics.median(f.seconds for f in steps)
    return MethodCost(
        method="floor",
        runs=len(steps),
        filter_tokens=_median([f.output_tokens for f in steps]),
        filter_seconds=seconds,
        answer_tokens=0.0,
        total_seconds=seconds,
        overhead=None,
        calls=1,
        rounds=1,
        prompt_tokens=_median([f.input_tokens for f in steps]),
        cached_tokens=_median([f.cached_tokens for f in steps]),
        to_floor=1.0,
        predicted_seconds=_median([model_fit.seconds(f) for f in steps]) if model_fit else None,
        cached_at_start=_cached_share([f for (_, repeat), f in floors.items() if repeat == 0]),
    )


def _cached_share(steps: Sequence[Step]) -> float | None:
    """The share of `steps`' prompt tokens the server took from its cache (`None`: it does not say)."""
    counted = [
        (f.cached_tokens, f.input_tokens) for f in steps if f.cached_tokens is not None and f.input_tokens
    ]
    read = sum(prompt for _, prompt in counted)
    return sum(cached for cached, _ in counted) / read if read else None


def _method_cost(
    method: str,
    runs: dict[tuple[str, str, int], Outcome],
    floors: dict[tuple[str, int], Step],
    model_fit: CostModel | None,
) -> MethodCost:
    mine = {(rid, rep): o for (m, rid, rep), o in runs.items() if m == method}
    filters = {key: f for key, o in mine.items() if (f := _step(o, "filter")) is not None}
    answers = [_step(o, "answer") for o in mine.values()]
    overheads = [
        _total(o) / _total(runs["baseline", rid, rep])
        for (rid, rep), o in mine.items()
        if ("baseline", rid, rep) in runs
    ]
    to_floor = [f.seconds / floors[key].seconds for key, f in filters.items() if floors[key].seconds > 0]
    predicted = [model_fit.seconds(f) for f in filters.values()] if model_fit else []
    return MethodCost(
        method=method,
        runs=len(mine),
        filter_tokens=_median([f.output_tokens for f in filters.values()]),
        filter_seconds=_median([f.seconds for f in filters.values()]),
        answer_tokens=_median([a.output_tokens if a else None for a in answers]) or 0.0,
        total_seconds=statistics.median(_total(o) for o in mine.values()),
        overhead=statistics.median(overheads) if overheads else None,
        calls=_median([f.calls for f in filters.values()]),
        rounds=_median([f.rounds for f in filters.values()]),
        prompt_tokens=_median([f.input_tokens for f in filters.values()]),
        cached_tokens=_median([f.cached_tokens for f in filters.values()]),
        to_floor=_median(to_floor),
        predicted_seconds=_median(predicted),
    )


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


def _counted(costs: Sequence[MethodCost], floor: MethodCost | None, model_fit: CostModel | None) -> list[str]:
    """The S2A step's cost as its driver counted it, beside the floor and the cost model."""
    if floor is None or floor.filter_seconds is None:
        return []
    lines = [
        "## The S2A step, counted",
        "",
        "| method | calls | rounds | prompt tokens | cached | generated | seconds | x floor "
        "| predicted seconds | prediction error |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| floor (the prompt read once, one token written) | 1 | 1 | {_cell(floor.prompt_tokens, 0)} "
        f"| {_cell(floor.cached_tokens, 0)} | {_cell(floor.filter_tokens, 0)} | {floor.filter_seconds:.2f} "
        f"| 1.00x | {_cell(floor.predicted_seconds, 2)} "
        f"| {_error(floor.filter_seconds, floor.predicted_seconds)} |",
    ]
    if floor.cached_at_start is not None and floor.cached_at_start >= WARM_CACHE:
        lines[2:2] = [
            f"**Warning:** the server's prefix cache already held {floor.cached_at_start:.0%} of the "
            "floor's prompt tokens in the first repeat: it had read this run's prompts before, so the "
            "times below are partly the cache's. Start the server afresh (or give no `--tgi-url`).",
            "",
        ]
    for m in costs:
        if m.filter_seconds is None:
            continue
        to_floor = "-" if m.to_floor is None else f"{m.to_floor:.2f}x"
        lines.append(
            f"| {m.method} | {_cell(m.calls, 0)} | {_cell(m.rounds, 0)} | {_cell(m.prompt_tokens, 0)} "
            f"| {_cell(m.cached_tokens, 0)} | {_cell(m.filter_tokens, 0)} | {m.filter_seconds:.2f} "
            f"| {to_floor} | {_cell(m.predicted_seconds, 2)} "
            f"| {_error(m.filter_seconds, m.predicted_seconds)} |"
        )
    lines += [
        "",
        "Medians over records and repeats. Calls, rounds and tokens are what the S2A driver counted",
        "(`S2AResult.cost`), tokens as the server reported them; `cached` is the part of the prompt",
        "the server took from its prefix cache (`-`: it does not say). `x floor` is the median, over",
        "the same record and repeat, of the step's seconds over the floor's.",
        "",
    ]
    if model_fit is None:
        return [*lines, "No cost model: the server reported no token counts.", ""]
    a, b, c = model_fit.coefficients
    projected = [
        f"| {m.method} | {_cell(m.prompt_tokens, 0)} | {_cell(m.filter_tokens, 0)} | {_cell(m.calls, 0)} "
        f"| {_cell(_project(m), 2)} |"
        for m in costs
        if m.filter_seconds is not None
    ]
    return [
        *lines,
        f"**Cost model**, fitted by least squares on the run's {model_fit.steps} steps (every S2A step "
        "and floor): seconds = "
        f"{a * 1000:.2f} ms x uncached prompt tokens + {b * 1000:.1f} ms x generated tokens "
        f"+ {c * 1000:.0f} ms x calls. `prediction error` is the predicted median over the measured "
        "one, less 1.",
        "",
        "**Projection to a GPU server** (not measured here): the same median counts at a published",
        "70B server's rates, NVIDIA NIM 1.8.0 serving Llama-3.3-70B-Instruct fp8 on 2 x H100 at",
        "concurrency 1 (0.080 ms a prompt token, 18.58 ms a generated token, 7.9 ms a call; see",
        "`s2a.evaluation.cost_model.GPU_PROJECTION`). Cached tokens are counted as read: a projection.",
        "",
        "| method | prompt tokens | generated | calls | projected seconds |",
        "|---|---|---|---|---|",
        *projected,
        "",
    ]


def _project(m: MethodCost) -> float | None:
    if m.prompt_tokens is None or m.filter_tokens is None or m.calls is None:
        return None
    return GPU_PROJECTION.predict(m.prompt_tokens, m.filter_tokens, m.calls)


def _error(measured: float | None, predicted: float | None) -> str:
    if measured is None or predicted is None or measured <= 0:
        return "-"
    return f"{(predicted / measured - 1) * 100:+.0f}%"


def render(
    *,
    command: str,
    model_id: str,
    task: Task,
    n_records: int,
    repeats: int,
    costs: Sequence[MethodCost],
    throughput: Sequence[Throughput],
    floor: MethodCost | None = None,
    model_fit: CostModel | None = None,
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
        *_counted(costs, floor, model_fit),
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
