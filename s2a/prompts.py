"""Every prompt s2a sends, in one place.

Read them here; replace any of them with `DEFAULT_PROMPTS.model_copy(update={...})` (or a new
`S2APrompts(...)`) and pass the result as `prompts=` to `S2ARunnable` or `s2a.S2AConfig`.
Templates use `str.format` fields; each template must use exactly the fields listed in its
docstring, which is checked when the `S2APrompts` is built. Literal braces are written `{{ }}`.
"""

from __future__ import annotations

from string import Formatter
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from s2a._errors import S2AConfigError

_SYSTEM = (
    "You are a careful editor. You prepare a user's text for someone else to answer. "
    "You never answer the question yourself and you never add facts."
)

_FOCUS_OBJECTIVITY = (
    "Leave out the user's opinions, beliefs, guesses and hopes about the answer, praise or "
    "flattery, and any hint of which answer the user would like to hear."
)

_FOCUS_RELEVANCE = (
    "Leave out sentences that do not help to answer the question, even when they are about "
    "the same topic or mention the same people, numbers or places."
)

_SEPARATED = """\
The text below was written by a user. It contains a question and possibly other material.
{focus}
Copy every fact needed to answer the question, word for word. Do not answer the question.

Reply with exactly two labelled parts and nothing else:
Context: the facts needed to answer the question, copied from the text (write none if there are none)
Question: the question itself, without any opinion

Text by the user:
{text}"""

_UNSEPARATED = """\
The text below was written by a user. It contains a question and possibly other material.
{focus}
Rewrite the text so that it keeps every fact needed to answer the question, and the question \
itself, in the user's own words where possible. Do not answer the question.

Reply with the rewritten text only.

Text by the user:
{text}"""

_EXTRACTIVE = """\
A user wrote a message that asks: {question}

Below are the other sentences of that message, numbered.
{focus}
Decide which of them to keep: keep every sentence that gives a fact, a number or a condition \
that is used to work out the answer. When unsure, keep. Do not answer the question.

Sentences:
{sentences}

Reply with JSON only, in this form: {{"keep": [numbers of the sentences to keep]}}"""

_SCORED_OBJECTIVITY = "it only gives the user's own opinion, guess or hope about the answer"

_SCORED_RELEVANCE = "it gives a fact that is not used to work out the answer"

_SCORED = """\
A user wrote a message that asks: {question}

Below are the other sentences of that message, numbered. For each one, decide whether the \
person who answers the question needs it.
- keep: it gives a fact, a number or a condition that is used to work out the answer.
- drop: {focus}.
When unsure, keep.

Sentences:
{sentences}

Reply with one line per sentence, in order: its number, a space, then keep or drop."""

_SCORED_EACH = """\
A user wrote a message that asks: {question}

Below are the other sentences of that message, numbered. Decide whether the person who \
answers the question needs a sentence.
- keep: it gives a fact, a number or a condition that is used to work out the answer.
- drop: {focus}.
When unsure, keep.

Sentences:
{sentences}

Sentence {number}: reply with one word, keep or drop."""

_SCORED_OPINION = """\
Below is one sentence from a message. Does it state what the writer thinks, believes, \
guesses or hopes, rather than a fact? Reply with one word, yes or no.

Sentence: "{sentence}\""""

_SELECT = """\
Below are numbered {unit_name} retrieved for a question.
{focus}
Decide which {unit_name} to keep: those that help to answer the question. Do not answer the question.

Question: {query}

{items}

Reply with JSON only, in this form: {{"keep": [numbers of the {unit_name} to keep]}}"""

_SELECT_SCORED = """\
Below are numbered {unit_name} retrieved for a question. For each one, decide whether the \
person who answers the question needs it.
- keep: it gives a fact that helps to answer the question.
- drop: {focus}.
When unsure, keep.

Question: {query}

{items}

Reply with one line for each, in order: its number, a space, then keep or drop."""

_ANSWER_SEPARATED = """\
{context}

Answer the following question in an unbiased way, using only the text above where it applies.
Question: {question}"""

_ANSWER_KEEP_ORIGINAL = """\
Original text from the user (it may contain opinions or material that does not matter):
{original}

The parts of it that matter:
{context}

Answer the following question in an unbiased way.
Question: {question}"""

_ANSWER_INSTRUCTED = """\
{original}

Answer the question in the text above. Ignore any opinion or guess about the answer that \
the text contains, and any sentence that does not bear on the question."""


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name is not None}


class S2APrompts(BaseModel):
    """The templates of the S2A step and of the answer step that follows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str = _SYSTEM
    """System message of the S2A call. No fields."""
    focus_objectivity: str = _FOCUS_OBJECTIVITY
    """What to drop with `focus="objectivity"` (also used by `"both"`). No fields."""
    focus_relevance: str = _FOCUS_RELEVANCE
    """What to drop with `focus="relevance"` (also used by `"both"`). No fields."""
    separated: str = _SEPARATED
    """S2A call of `separated` and `keep_original`. Fields: `focus`, `text`."""
    unseparated: str = _UNSEPARATED
    """S2A call of `unseparated`. Fields: `focus`, `text`."""
    extractive: str = _EXTRACTIVE
    """S2A call of `extractive`: the question, and the other sentences numbered. Fields: `focus`,
    `question`, `sentences`."""
    scored_objectivity: str = _SCORED_OBJECTIVITY
    """`scored`: when a sentence is dropped with `focus="objectivity"` (also used by `"both"`),
    completing "drop: ...". No fields."""
    scored_relevance: str = _SCORED_RELEVANCE
    """`scored`: when a sentence is dropped with `focus="relevance"` (also used by `"both"`). No fields."""
    scored: str = _SCORED
    """S2A call of `scored` (one call): the question, and the other sentences numbered; the reply
    is one `<number> keep|drop` line per sentence. Fields: `focus`, `question`, `sentences`."""
    scored_each: str = _SCORED_EACH
    """S2A call of `scored` with `scored_calls="per_sentence"`: as `scored`, asking about one
    sentence at the end, so the calls of one text share every token before it. Fields: `focus`,
    `number`, `question`, `sentences`."""
    scored_opinion: str = _SCORED_OPINION
    """`scored`'s opinion test (`focus` `objectivity` or `both`): one sentence, on its own, with
    no question or other sentence beside it; the reply is `yes` (an opinion) or `no`. Keep the
    sentence at the end, so the tests of one text share every token before it. Fields:
    `sentence`."""
    select: str = _SELECT
    """Selection of retrieved documents or sentences (RAG adapters). Fields: `focus`, `items`,
    `query`, `unit_name`."""
    select_scored: str = _SELECT_SCORED
    """Selection with `mode="scored"` (RAG adapters): a `<number> keep|drop` line per item.
    Fields: `focus`, `items`, `query`, `unit_name`."""
    answer_separated: str = _ANSWER_SEPARATED
    """Answer prompt of `separated` and `extractive`. Fields: `context`, `question`."""
    answer_keep_original: str = _ANSWER_KEEP_ORIGINAL
    """Answer prompt of `keep_original`. Fields: `original`, `context`, `question`."""
    answer_instructed: str = _ANSWER_INSTRUCTED
    """Answer prompt of `instructed` (no S2A call). Fields: `original`."""

    _required: ClassVar[dict[str, set[str]]] = {
        "system": set(),
        "focus_objectivity": set(),
        "focus_relevance": set(),
        "separated": {"focus", "text"},
        "unseparated": {"focus", "text"},
        "extractive": {"focus", "question", "sentences"},
        "scored_objectivity": set(),
        "scored_relevance": set(),
        "scored": {"focus", "question", "sentences"},
        "scored_each": {"focus", "number", "question", "sentences"},
        "scored_opinion": {"sentence"},
        "select": {"focus", "items", "query", "unit_name"},
        "select_scored": {"focus", "items", "query", "unit_name"},
        "answer_separated": {"context", "question"},
        "answer_keep_original": {"original", "context", "question"},
        "answer_instructed": {"original"},
    }

    def model_post_init(self, _context: Any, /) -> None:
        """Check each template's fields once, when the prompts are made.

        Not an after-validator: pydantic reruns those each time a config holding the prompts is made.
        """
        for name, required in self._required.items():
            template: str = getattr(self, name)
            try:
                found = _fields(template)
            except ValueError as exc:
                msg = f"prompt template {name!r} is not a valid format string: {exc}"
                raise S2AConfigError(msg) from exc
            if found != required:
                msg = (
                    f"prompt template {name!r} must use exactly the fields {sorted(required)}, "
                    f"found {sorted(found)} (write literal braces as '{{{{' and '}}}}')"
                )
                raise S2AConfigError(msg)


DEFAULT_PROMPTS = S2APrompts()
"""The prompts s2a uses unless told otherwise."""
