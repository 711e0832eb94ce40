"""`Task`, the definition of an evaluation task: how to read its records, what to send, how to score.

The tasks themselves are in `s2a.evaluation.tasks` (the registry, `TASKS`), their record types
in `s2a.evaluation.records`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from s2a._errors import S2AConfigError
from s2a.evaluation.records import Record
from s2a.evaluation.scoring import normalise

TaskName = Literal[
    "gsm_ic",
    "gsm_ic_clean",
    "trivia_opinion",
    "argument_opinion",
    "opinion_phrasings",
    "opinion_phrasings_tune",
    "opinion_phrasings_fresh",
    "opinion_phrasings_fresh2",
    "opinion_phrasings_fresh3",
    "opinion_phrasings_fresh4",
    "sycophancy_bio",
    "hotpotqa",
]


def nothing(_record: Record) -> None:
    """Nothing, for any record: no planted text, no group."""


def record_field(name: str) -> Callable[[Record], str]:
    """The record's field `name`, as text: a task's prompt or oracle that is one of its fields."""
    return lambda record: str(getattr(record, name))


@dataclass(frozen=True)
class Task:
    """One evaluation task: how to read it, what to send, how to score the reply."""

    name: TaskName
    record_type: type[Record]
    label_field: str | None
    """The record field the tables break results down by (distractor or opinion type); None:
    every record is clean (`clean_label`)."""
    labels: tuple[str, ...]
    """The label values in the order the tables and figures show them."""
    metrics: tuple[str, ...]
    """What each example is scored on: `accuracy` (0/1) or judge scores (1-5)."""
    system: str | None
    """The system message of the answer step, the same for every method."""
    answer_tokens: int
    """The answer step's `max_new_tokens`."""
    prompt: Callable[[Record], str]
    """The prompt as given (with the distractor or opinion)."""
    oracle: Callable[[Record], str]
    """The prompt without the distractor or opinion."""
    judged: bool = False
    """Scored by the LLM judge (see `s2a.evaluation.judge`)."""
    exact: Callable[[Record, str], float | None] | None = None
    """Scoring by rule, for tasks that are not judged: 1.0 right (or, for `sycophancy`, agreeing
    with the user), 0.0 not; None: the reply gives no answer to score."""
    planted: Callable[[Record], str | None] = nothing
    """What the distractor or opinion plants (a number, a suggested answer, the opinion
    sentence), to check whether it reached the answer step; None when nothing was planted."""
    needed: Callable[[Record], tuple[str, ...]] = lambda _record: ()
    """What the answer needs, each to reach the answer step verbatim (the problem's own
    sentences, the question, the argument)."""
    clean_label: str | None = None
    """The label of prompts with nothing planted, on which S2A must not break an answer."""
    group: Callable[[Record], str | None] = nothing
    """The record's group (one question under each opinion type), for the opinion flip rate."""
    data: str | None = None
    """The stem of the task's data file when it is not the task's name (`<data>.jsonl`)."""
    expand: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    """Builds the task's records from the data file's rows, when they are not the records."""
    parts: Callable[[Record], tuple[str, ...]] = lambda _record: ()
    """The sentences of what was planted, each to be removed on its own (a biography)."""
    methods: tuple[str, ...] | None = None
    """The task's own methods, when they are not the prompt filters of `s2a.evaluation.methods`
    (`hotpotqa`: paragraph selection, run by `s2a.evaluation.hotpotqa_run`)."""
    default_methods: tuple[str, ...] | None = None
    """What `s2a eval` runs without `--methods`, when not its usual default."""

    @property
    def file(self) -> str:
        """The task's data file name in a data folder."""
        return f"{self.data or self.name}.jsonl"

    def kept_planted(self, record: Record, prompt: str) -> bool | None:
        """Whether the planted text is in `prompt` (whole words, normalised); None if none was planted."""
        planted = self.planted(record)
        if planted is None:
            return None
        return f" {normalise(planted)} " in f" {normalise(prompt.replace(',', ''))} "

    def parts_removed(self, record: Record, prompt: str) -> tuple[int, int] | None:
        """How many of the planted sentences (`parts`) are not in `prompt`, of how many; None if none."""
        parts = self.parts(record)
        if not parts:
            return None
        return sum(part not in prompt for part in parts), len(parts)

    def kept_needed(self, record: Record, prompt: str) -> bool | None:
        """Whether everything the answer needs is in `prompt`, verbatim; None if nothing is named."""
        needed = self.needed(record)
        return all(text in prompt for text in needed) if needed else None

    def label(self, record: Record) -> str:
        """The record's distractor or opinion type (`clean_label` for a task of clean prompts)."""
        if self.label_field is None:
            return str(self.clean_label)
        return str(getattr(record, self.label_field))

    def load(self, path: Path, limit: int | None = None, questions: int | None = None) -> list[Record]:
        """Read and validate the task's JSONL file (the first `limit` records, file order).

        With `questions`, only the records of that many groups (one question under each of its
        phrasings), spread evenly over the file, so that a short run still has its families and
        its flip rate.

        Raises:
            S2AConfigError: the file is missing or malformed, or `questions` is given to a task
                without groups.

        """
        if not path.is_file():
            msg = f"{self.name}: no data file at {path}"
            raise S2AConfigError(msg)
        rows: list[tuple[str, dict[str, Any]]] = []
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append((f"{path}:{number}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    msg = f"{path}:{number} is not JSON: {exc}"
                    raise S2AConfigError(msg) from exc
        if self.expand is not None:
            try:
                built = self.expand([row for _, row in rows])
            except (KeyError, ValueError) as exc:
                msg = f"{path}: cannot build the {self.name} records from it ({type(exc).__name__}: {exc})"
                raise S2AConfigError(msg) from exc
            rows = [(f"{self.name} record {row.get('id')!r} built from {path}", row) for row in built]
        kept = rows if questions is not None else rows[:limit]
        records = [self._record(where, row) for where, row in kept]
        if questions is not None:
            groups = list(dict.fromkeys(g for g in map(self.group, records) if g is not None))
            if not groups:
                msg = f"{self.name} has no question groups to choose from (--questions)"
                raise S2AConfigError(msg)
            step = max(1, len(groups) // questions)
            chosen = set(groups[::step][:questions])
            records = [r for r in records if self.group(r) in chosen]
        records = records[:limit]
        ids = [r.id for r in records]
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            msg = f"{path}: record id {duplicate!r} appears more than once"
            raise S2AConfigError(msg)
        if not records:
            msg = f"{path}: no records"
            raise S2AConfigError(msg)
        return records

    def _record(self, where: str, row: dict[str, Any]) -> Record:
        try:
            return self.record_type.model_validate(row)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()
            )
            msg = f"{where} is not a {self.name} record ({problems})"
            raise S2AConfigError(msg) from exc
