"""Turning the S2A step's free text into a context and a question.

The parsers tolerate case, spacing, markdown, code fences, a missing trailing label and
chatter around the answer. When the output cannot be used they raise `Unusable` with a
reason; the caller applies the fallback policy. They raise nothing else.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


class Unusable(Exception):  # noqa: N818 - internal signal, never escapes the package
    """The output cannot be used; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Rewrite:
    """A labelled rewrite: the kept context, and the question when the output had one."""

    context: str
    question: str | None


@dataclass(frozen=True)
class Selection:
    """Sentence numbers chosen to keep (1-based, sorted, unique)."""

    keep: list[int]


_MARKUP = r"[ \t>#*_\-`]*"
_NOTE = r"(?:[ \t]*\([^)\n]*\))?"  # e.g. "Context (relevant unbiased text):"
_LABEL_AT_LINE_START = re.compile(
    rf"^{_MARKUP}(?P<label>relevant[ \t]+context|context|question[ \t]*/[ \t]*query|question|query)"
    rf"{_NOTE}[ \t*_`]*(?::[ \t*_`]*|$)",  # a label alone on its line (a heading) needs no colon
    re.IGNORECASE | re.MULTILINE,
)
# "... apples. Question: how many ...": a label inside a line only counts capitalised and
# after the end of a sentence, so that "the question: how" in prose is not taken for one.
_QUESTION_INLINE = re.compile(r"(?<=[.!?\"'])[ \t]+[*_]*(?P<label>Question|Query)[*_]*:[ \t*_]*")
_FENCE = re.compile(r"^[ \t]*```[^\n]*$", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_WRAPPERS = "*_`\"' \t\n“”‘’"  # noqa: RUF001 - curly quotes are what models emit
_NONE_WORDS = {"none", "<none>", "[none]", "n/a", "na", "(none)", "nothing", "no context", "empty", "-"}
_CHATTER_LINE = re.compile(r"^[^\n]{0,120}:[ \t]*$")


def _clean(text: str) -> str:
    text = text.strip().strip(_WRAPPERS).strip()
    return "" if text.lower().rstrip(".") in _NONE_WORDS else text


def _drop_leading_chatter(text: str) -> str:
    """Remove a first line like 'Sure, here is the rewritten text:' when more follows."""
    first, sep, rest = text.strip().partition("\n")
    if sep and rest.strip() and _CHATTER_LINE.match(first):
        return rest
    return text


def strip_fences(raw: str) -> str:
    """Remove markdown code-fence lines, keeping what they enclose."""
    return _FENCE.sub("", raw)


def parse_labelled(raw: str) -> Rewrite:
    """Parse a `Context: ... Question: ...` rewrite."""
    text = strip_fences(raw)
    labels = [(m.start(), m.end(), m.group("label").lower()) for m in _LABEL_AT_LINE_START.finditer(text)]
    labels += [(m.start(), m.end(), "question") for m in _QUESTION_INLINE.finditer(text)]
    labels.sort()
    contexts = [lab for lab in labels if "context" in lab[2]]
    context_end = contexts[0][1] if contexts else None
    questions = [
        lab for lab in labels if "context" not in lab[2] and (context_end is None or lab[0] >= context_end)
    ]
    if context_end is None and not questions:
        msg = "the output has neither a 'Context:' nor a 'Question:' label"
        raise Unusable(msg)

    question: str | None = None
    if questions:
        q_start, q_end, _ = questions[-1]
        question = _clean(_PARAGRAPH_BREAK.split(text[q_end:].strip(), maxsplit=1)[0]) or None
    else:
        q_start = len(text)

    context = text[context_end:q_start] if context_end is not None else _drop_leading_chatter(text[:q_start])
    return Rewrite(context=_clean(context), question=question)


def parse_rewrite(raw: str) -> str:
    """Parse an unlabelled rewrite: the text itself, without chatter or markup around it."""
    text = _clean(_drop_leading_chatter(strip_fences(raw)))
    if not text:
        msg = "the output is empty"
        raise Unusable(msg)
    return text


def _find_json(text: str) -> Any:
    """The reply's JSON: an object (the first with a `keep` field), or a lone bare list.

    A bare list of numbers counts only when the reply holds exactly one and no object at all.
    A list inside prose or inside a broken object is not taken for the answer: in
    `Sentence [3] is an opinion: {"keep": [1]}` the answer is the object, and in a reply cut
    off mid-object (`{"question": [4], "keep": [1,`) there is no answer.
    """
    decoder = json.JSONDecoder()
    objects: list[dict[Any, Any]] = []
    lists: list[list[Any]] = []
    end = 0
    for match in re.finditer(r"[\[{]", text):
        if match.start() < end:  # inside a value already read
            continue
        try:
            value, end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            objects.append(value)
        elif isinstance(value, list):
            lists.append(value)
    with_keep = [o for o in objects if any(str(key).strip().lower() == "keep" for key in o)]
    if with_keep or objects:
        return (with_keep or objects)[0]
    if "{" in text:
        msg = "the output has no complete JSON object (it may have been cut off)"
        raise Unusable(msg)
    if len(lists) == 1:
        return lists[0]
    msg = "the output contains no JSON object or list" if not lists else "the output holds several lists"
    raise Unusable(msg)


def _as_numbers(value: Any, field: str) -> list[int]:
    items = value if isinstance(value, list) else [value]
    numbers: list[int] = []
    for item in items:
        if isinstance(item, bool):
            pass
        elif isinstance(item, int):
            numbers.append(item)
            continue
        elif isinstance(item, float) and item.is_integer():
            numbers.append(int(item))
            continue
        elif isinstance(item, str) and item.strip().lstrip("[").rstrip("]").isdigit():
            numbers.append(int(item.strip().lstrip("[").rstrip("]")))
            continue
        msg = f"{field!r} holds {item!r}, which is not a sentence number"
        raise Unusable(msg)
    return numbers


def _in_range(numbers: list[int], count: int, field: str) -> list[int]:
    valid = sorted({n for n in numbers if 1 <= n <= count})
    dropped = sorted({n for n in numbers if not 1 <= n <= count})
    if dropped:
        logger.warning("S2A: ignored %s numbers out of range 1..%d: %s", field, count, dropped)
    return valid


def parse_selection(raw: str, count: int) -> Selection:
    """Parse `{"keep": [...]}` (or a bare list of numbers to keep); other fields are ignored."""
    value = _find_json(strip_fences(raw))
    if isinstance(value, list):
        return Selection(keep=_in_range(_as_numbers(value, "keep"), count, "keep"))
    lowered = {str(key).strip().lower(): item for key, item in value.items()}
    if "keep" not in lowered:
        msg = "the JSON object has no 'keep' field"
        raise Unusable(msg)
    return Selection(keep=_in_range(_as_numbers(lowered["keep"], "keep"), count, "keep"))
