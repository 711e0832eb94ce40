"""Running the hotpotqa task: a method's selection, its LLM calls and time, the answer, the scores.

`s2a eval --task hotpotqa` passes `scorer(model, filters)` to `s2a.evaluation.runner.evaluate`,
which resumes, retries and writes `results.jsonl` as for every task. Each row records the
paragraphs kept (`kept`, best first for a method that ranks), the method's scores of them
(`kept_scores`), the filter step's calls and seconds, the answer step's prompt and reply, and
the scores of `selection_scores` and `answer_scores`.

**LLM calls are counted in-process**: the POST requests this process sends while a method filters
one question. Every client here (`TGIChat`, `tgi_llm`, `tgi_chat_model`) goes through
huggingface_hub's one shared HTTP client; an httpx request hook on it counts, and a context
variable attributes each request to the (method, question) being run, in whichever thread sends
it (LangChain's batch threads copy the context). It is what the server's own request counter
(`tgi_request_count`, which `benchmarks/rag_peers.py` reads) would count for that question alone,
but unaffected by concurrency and by other clients of a shared server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import httpx
from huggingface_hub import get_session

from s2a._errors import CALL_FAILED, S2ACallError
from s2a.evaluation.hotpotqa import (
    HOTPOTQA,
    METHODS,
    RANKING,
    FilterRaisedError,
    HotpotRecord,
    Selection,
    answer_prompt,
    answer_scores,
    as_hotpot,
    baseline_selection,
    selection_scores,
)
from s2a.evaluation.methods import Answers, ChatModel, Step, answer_step
from s2a.evaluation.records import Record
from s2a.evaluation.runner import ExampleResult, Scorer

Filter = Callable[[HotpotRecord], Selection]
"""A method that needs a model: a question in, the paragraphs it kept out."""

TIMEOUT = 600.0
"""Seconds a filter waits for a reply (as `TGIChat` waits for the answer's): a shared CPU server
can queue a request for minutes."""
_SERVER_FAILURES = (httpx.HTTPError, OSError, S2ACallError)

T = TypeVar("T")


def guarded(name: str, call: Callable[[], T]) -> T:
    """`call()`; what it raises that is not the server's becomes the question's `FilterRaisedError`."""
    try:
        return call()
    except _SERVER_FAILURES:
        raise
    except Exception as exc:
        msg = f"{name} raised {type(exc).__name__}: {exc}"
        raise FilterRaisedError(msg) from exc


def no_failed_call(fallback: str | None) -> None:
    """Raise when an S2A fallback comes from a failed call: the server's failure, retried next run."""
    if fallback is not None and CALL_FAILED in fallback:
        msg = f"the server failed during the S2A step ({fallback})"
        raise RuntimeError(msg)


def selection_of(
    record: HotpotRecord, kept: Sequence[tuple[int, str, float | None]], fallback: str | None = None
) -> Selection:
    """From (index, text, score) in the method's order; a paragraph returned twice counts once."""
    first = {index: (text, score) for index, text, score in reversed(kept)}
    order = list(dict.fromkeys(index for index, _, _ in kept))
    return Selection(
        kept=order,
        texts={i: first[i][0] for i in order if first[i][0] != record.passages[i].text},
        scores={i: score for i in order if (score := first[i][1]) is not None},
        fallback=fallback,
    )


class _Count:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()  # LLMChainFilter's calls come from several threads at once

    def add(self) -> None:
        with self._lock:
            self.value += 1


_current: ContextVar[_Count | None] = ContextVar("s2a_eval_calls", default=None)
_install = threading.Lock()


def _count_request(request: httpx.Request) -> None:
    count = _current.get()
    if count is not None and request.method == "POST":  # a model call; GET /info is not one
        count.add()


@contextmanager
def counted_calls() -> Iterator[Callable[[], int]]:
    """Count the model calls this context sends (in this thread, or in threads that copy its context)."""
    session = get_session()
    with _install:  # the session outlives a run; a new one (a closed session replaced) gets the hook too
        hooks = session.event_hooks
        if _count_request not in hooks["request"]:
            session.event_hooks = {**hooks, "request": [*hooks["request"], _count_request]}
    count = _Count()
    token = _current.set(count)
    try:
        yield lambda: count.value
    finally:
        _current.reset(token)


def _filter(method: str, filters: Mapping[str, Filter]) -> Filter:
    if method in filters:
        return filters[method]
    if method in METHODS:
        msg = f"method {method!r} needs a model: an adapter builds it (s2a.evaluation.frameworks)"
        raise ValueError(msg)
    msg = f"unknown hotpotqa method {method!r}; choose from {', '.join(METHODS)}"
    raise ValueError(msg)


def select(
    method: str, record: HotpotRecord, filters: Mapping[str, Filter]
) -> tuple[Selection, list[Step], bool]:
    """What `method` kept, its filter step (none for `none` and `oracle`), and whether the filter raised.

    A filter that raises on its own account (`FilterRaisedError`) kept nothing; any other exception
    (the server's) propagates.
    """
    unfiltered = baseline_selection(method, record) if method in ("none", "oracle") else None
    if unfiltered is not None:
        return unfiltered, [], False
    started = time.perf_counter()
    raised = False
    with counted_calls() as calls:
        try:
            selection = baseline_selection(method, record) or _filter(method, filters)(record)
        except FilterRaisedError as exc:
            selection, raised = Selection(kept=[], fallback=str(exc)), True
        seconds, count = selection.cost or (time.perf_counter() - started, calls())
        step = Step(name="filter", seconds=seconds, calls=count)
    return selection, [step], raised


def run_hotpotqa(
    record: HotpotRecord,
    method: str,
    model: ChatModel,
    filters: Mapping[str, Filter],
    answers: Answers | None = None,
) -> ExampleResult:
    """Run `method` on one question, answer from what it kept, and score both; failures become `error`.

    A filter that raised is the question's outcome: nothing kept, no answer step (the pipeline
    would have stopped there), `fallback` saying what it raised.
    """
    row = ExampleResult(task=HOTPOTQA.name, method=method, id=record.id, label=HOTPOTQA.label(record))
    try:
        selection, steps, raised = select(method, record, filters)
        if not raised:
            row.prompt = answer_prompt(record, selection)
            reply, answered = answer_step(HOTPOTQA, row.prompt, model, answers)
            row.answer, steps = reply.text, [*steps, answered]
    except Exception as exc:  # any failure is recorded; the run goes on
        row.error = f"{type(exc).__name__}: {exc}"
        return row
    row.steps, row.fallback = steps, selection.fallback
    row.kept, row.kept_scores = selection.kept, selection.scores or None
    row.scores = {
        **selection_scores(record, selection, ranks=method in RANKING),
        **answer_scores(record, row.answer),
    }
    return row


def scorer(model: ChatModel, filters: Mapping[str, Filter]) -> Scorer:
    """`run_hotpotqa` with `model` answering and `filters` for the methods that need a model."""

    def run(record: Record, method: str, answers: Answers | None) -> ExampleResult:
        return run_hotpotqa(as_hotpot(record), method, model, filters, answers)

    return run
