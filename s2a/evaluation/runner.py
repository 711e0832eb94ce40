"""Running a task: every (record, method) pair once, results appended as they finish.

`results.jsonl` holds one `ExampleResult` per line. A rerun with the same `--out` reads it,
keeps what succeeded, retries what failed and runs what is missing, so an interrupted run
resumes where it stopped. `run.json` records the model and settings; resuming with a
different model or settings is refused rather than mixing two runs in one table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from s2a._errors import S2AConfigError
from s2a._parsing import Unusable
from s2a.evaluation.judge import JUDGE_SCHEMA, judge_messages, parse_verdict
from s2a.evaluation.methods import Answers, ChatModel, Peer, Step, answer_messages, run_method
from s2a.evaluation.records import Record
from s2a.evaluation.task import Task

JUDGE_TOKENS = 32


class ExampleResult(BaseModel):
    """One method on one record: what the answer step saw, the answer, its scores and cost."""

    model_config = ConfigDict(extra="forbid")

    task: str
    method: str
    id: str
    label: str
    prompt: str = ""
    answer: str = ""
    scores: dict[str, float] = {}
    fallback: str | None = None
    judge: dict[str, int] | None = None
    steps: list[Step] = []
    error: str | None = None
    """Why the example failed (a server error, an unusable judge reply); it is retried on rerun."""
    kept: list[int] | None = None
    """Paragraph selection (`hotpotqa`): the paragraphs kept, by input index, in the method's order
    (best first for a method that ranks)."""
    kept_scores: dict[int, float] | None = None
    """Paragraph selection: the method's score of each paragraph it scored (BM25, P(keep), relevance)."""


Scorer = Callable[[Record, str, Answers | None], ExampleResult]
"""Runs one method on one record and scores it, for a task with methods of its own (`hotpotqa`)."""


class RunInfo(BaseModel):
    """What a results file was produced with; a resumed run must match it."""

    model_config = ConfigDict(extra="forbid")

    task: str
    model: str
    judge_model: str | None
    temperature: float
    seed: int | None
    batch_size: int | None = None
    """Requests the server decoded together (its `/info` `max_batch_size`; None if it does not say).
    Recorded, not compared on resume: batching changes only the last bits of a reply."""
    concurrency: int = 1
    """Examples in flight at once (recorded, not compared)."""


_RECORDED_ONLY = {"batch_size", "concurrency"}


def _write_info(path: Path, info: RunInfo) -> None:
    if path.exists():
        try:
            before = RunInfo.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            msg = f"{path} is not an s2a eval run record ({exc.errors()[0]['msg']}); use another --out"
            raise S2AConfigError(msg) from exc
        old, new = before.model_dump(exclude=_RECORDED_ONLY), info.model_dump(exclude=_RECORDED_ONLY)
        if old != new:
            changed = {k: (v, new[k]) for k, v in old.items() if v != new[k]}
            detail = ", ".join(f"{k}: {was!r} before, {now!r} now" for k, (was, now) in changed.items())
            msg = f"{path.parent} holds results of another run ({detail}); use another --out"
            raise S2AConfigError(msg)
    path.write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load_results(path: Path) -> list[ExampleResult]:
    """The results in a `results.jsonl` (empty if there is none yet)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows: list[ExampleResult] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(ExampleResult.model_validate_json(line))
        except ValidationError as exc:
            if number == len(lines):
                continue  # a line cut short by an interrupted run: the example is run again
            msg = f"{path}:{number} is not an s2a eval result: {exc.errors()[0]['msg']}"
            raise S2AConfigError(msg) from exc
    return rows


def score(
    task: Task,
    record: Record,
    method: str,
    model: ChatModel,
    *,
    judge: ChatModel | None = None,
    peers: dict[str, Peer] | None = None,
    answers: Answers | None = None,
) -> ExampleResult:
    """Run one method on one record and score the answer; failures become `error`."""
    row = ExampleResult(task=task.name, method=method, id=record.id, label=task.label(record))
    try:
        outcome = run_method(method, task, record, model, peers, answers=answers)
    except Exception as exc:  # any failure is recorded; the run goes on
        row.error = f"{type(exc).__name__}: {exc}"
        return row
    row.prompt, row.answer, row.steps, row.fallback = (
        outcome.prompt,
        outcome.answer,
        outcome.steps,
        outcome.fallback,
    )
    if task.exact is not None:
        value = task.exact(record, outcome.answer)
        row.scores = {} if value is None else {task.metrics[0]: value}
        return row
    if judge is None:
        row.error = f"the {task.name} task is scored by a judge model, and none was given"
        return row
    try:
        messages = judge_messages(task.oracle(record), outcome.answer)
        reply = judge(messages, max_new_tokens=JUDGE_TOKENS, grammar={"type": "json", "value": JUDGE_SCHEMA})
        verdict = parse_verdict(reply.text)
    except Unusable as exc:
        row.error = f"judge: {exc.reason}"
        return row
    except Exception as exc:
        row.error = f"judge: {type(exc).__name__}: {exc}"
        return row
    row.judge = {"sentiment": verdict.sentiment, "quality": verdict.quality}
    row.scores = {"objectivity": verdict.objectivity, "quality": float(verdict.quality)}
    return row


def evaluate(
    task: Task,
    records: Sequence[Record],
    methods: Sequence[str],
    model: ChatModel,
    *,
    out: Path,
    info: RunInfo,
    judge: ChatModel | None = None,
    peers: dict[str, Peer] | None = None,
    concurrency: int = 1,
    reuse_answers: bool = False,
    on_start: Callable[[int, int], Any] | None = None,
    on_done: Callable[[ExampleResult], Any] | None = None,
    scorer: Scorer | None = None,
) -> list[ExampleResult]:
    """Run every method on every record not yet done in `out`; return all results for them.

    `scorer` runs and scores each (record, method) of a task with methods of its own; by default,
    `score` with `model`, `judge` and `peers`.

    `reuse_answers` (greedy runs only): an answer prompt already answered in this run, or in
    the results of an earlier sitting, gets that answer without a call (`Answers`).

    `on_start(to_run, already_done)` is called once before the first call, `on_done(row)`
    after each example (for a progress bar).
    """
    if task.judged and judge is None:
        msg = f"the {task.name} task needs a judge model"
        raise S2AConfigError(msg)
    out.mkdir(parents=True, exist_ok=True)
    _write_info(out / "run.json", info)
    results_path = out / "results.jsonl"
    wanted = {(m, r.id) for r in records for m in methods}
    done = {(r.method, r.id): r for r in load_results(results_path) if r.error is None}
    # Rewrite without the failed and cut-short lines, so each example appears once.
    results_path.write_text("".join(r.model_dump_json() + "\n" for r in done.values()), encoding="utf-8")
    jobs = [(r, m) for r in records for m in methods if (m, r.id) not in done]
    answers = Answers() if reuse_answers else None
    if answers is not None:
        for row in done.values():
            if row.prompt:
                answers.add(answer_messages(task, row.prompt), task.answer_tokens, row.answer)
    if on_start is not None:
        on_start(len(jobs), len(wanted) - len(jobs))
    lock = threading.Lock()
    finished: list[ExampleResult] = []
    sink = results_path.open("a", encoding="utf-8")

    def job(record: Record, method: str) -> ExampleResult:
        if scorer is not None:
            return scorer(record, method, answers)
        return score(task, record, method, model, judge=judge, peers=peers, answers=answers)

    with ThreadPoolExecutor(max_workers=concurrency) as pool, sink:
        futures = [pool.submit(job, r, m) for r, m in jobs]
        for future in as_completed(futures):
            row = future.result()
            with lock:
                sink.write(row.model_dump_json() + "\n")
                sink.flush()
                finished.append(row)
            if on_done is not None:
                on_done(row)
    kept = [r for r in done.values() if (r.method, r.id) in wanted]
    return kept + finished
