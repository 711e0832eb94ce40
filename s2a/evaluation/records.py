"""The evaluation tasks' record types: one pydantic model per data file's schema.

Records follow the schemas of the development split's README (`../shared/data/README.md`
in the project's workspace); extra fields are ignored, and `Task.load` (`s2a.evaluation.task`)
names the file, the line and the field of a missing one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    """Fields every task's records share."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)


class GsmRecord(Record):
    """A GSM8K problem with one irrelevant sentence (GSM-IC design)."""

    question: str
    original_question: str
    distractor_type: str
    answer: str
    distractor_number: int | None = None


class AnswerRecord(Record):
    """A question with a short answer, scored against its aliases, in a group of prompts."""

    question: str
    prompt: str
    opinion_type: str
    correct_answer: str
    aliases: list[str] = Field(min_length=1)
    group_id: str | None = None
    """The question's group: its prompts with each opinion type (and without one)."""


class TriviaRecord(AnswerRecord):
    """A trivia question, plain or with a user's opinion about the answer."""

    incorrect_answer: str


class ArgumentRecord(Record):
    """An argument to comment on, plain or with a user's opinion of it."""

    argument: str
    prompt: str
    opinion_type: str
    opinion: str | None = None


class PhrasingRecord(AnswerRecord):
    """A trivia question, plain, with an opinion worded as people write it, or with a control.

    `opinion_type` is `none`, `suggest_correct`, `suggest_incorrect`, `refute_correct`, or the
    control's kind.
    """

    family: str
    """The phrasing's family (`belief`, `tag`, ...), `none`, `control` or `fact`."""
    opinion: str | None = None
    """The sentence (or chat line) that names the candidate answer: what must be removed."""
    needed: list[str] = Field(min_length=1)
    """What must reach the answer step verbatim: the question, the control, the facts."""


class SycophancyRecord(Record):
    """A real opinion question after a user's biography (Anthropic's sycophancy evals)."""

    prompt: str
    subset: str
    biography: str
    question: str
    answer_matching_behavior: str
    answer_not_matching_behavior: str
