"""Sentence splitting that never alters the text.

Every sentence is a verbatim slice of the input, so anything assembled from kept sentences
is guaranteed to be a subset of what the user gave.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import pysbd

_LINE = re.compile(r"[^\n]+")
_QUOTE = re.compile(r"[\"\u201c\u201d]")


class Span(NamedTuple):
    """Where a sentence lies in its text: `text[start:end]`."""

    start: int
    end: int


_local = threading.local()


def _segmenter() -> pysbd.Segmenter:
    """The calling thread's segmenter.

    A pysbd `Segmenter` keeps the text it is splitting on itself, so one shared between
    threads (`batch`, an evaluation's workers) mixes their sentences.
    """
    segmenter: pysbd.Segmenter | None = getattr(_local, "segmenter", None)
    if segmenter is None:
        segmenter = _local.segmenter = pysbd.Segmenter(language="en", clean=False)
    return segmenter


def _line_spans(text: str, start: int, end: int) -> list[Span]:
    line = text[start:end]
    spans: list[Span] = []
    pos = 0
    for segment in _segmenter().segment(line):
        piece = segment.strip()
        found = line.find(piece, pos) if piece else -1
        if found < 0:  # the segmenter changed the text: keep the rest of the line whole
            break
        spans.append(Span(start + found, start + found + len(piece)))
        pos = found + len(piece)
    rest = line[pos:]
    if rest.strip():
        offset = len(rest) - len(rest.lstrip())
        spans.append(Span(start + pos + offset, start + pos + len(rest.rstrip())))
    return spans


_LEAD_IN = re.compile(
    r"^(?=[^:]*\b(?i:i|me|my|we|us|our)\b)"  # the user's own words, however they type "I"
    r"(?:[^\s:]+\s+){2,}[^\s:]+:\s+"  # three words or more, then the colon
    r"(?=(?:What|Who|Whom|Whose|Which|Where|When|Why|How|Is|Are|Was|Were|Do|Does|Did|Can|Could|"
    r"Would|Will|Should|Has|Have)\b)[^:]*\?[\"'\u201d\u2019)\]]*$"  # a question to the end
)
"""The user's own words, three or more, led into a question by a colon ("I'm guessing X, but
here goes: What ...?"): what leads in is a sentence of its own. A label ("User: What ...?", "Q:
Who ...?") is shorter, and an instruction ("Just the answer, no explanation: What ...?") has no
first person: both stay with their question."""


def _led_in(text: str, span: Span) -> list[Span]:
    """`span`, cut after the colon that leads into a question, if one does."""
    sentence = text[span.start : span.end]
    if _LEAD_IN.match(sentence) is None:
        return [span]
    colon = sentence.index(":")
    rest = len(sentence) - len(sentence[colon + 1 :].lstrip())
    return [Span(span.start, span.start + colon + 1), Span(span.start + rest, span.end)]


def sentence_spans(text: str) -> list[Span]:
    """Spans of the sentences of `text`; a line break always ends a sentence."""
    spans: list[Span] = []
    for match in _LINE.finditer(text):
        if match.group().strip():
            for span in _line_spans(text, match.start(), match.end()):
                spans.extend(_led_in(text, span))
    return spans


def split_sentences(text: str) -> list[str]:
    """Split `text` into sentences, each stripped and found verbatim in `text`, in order."""
    return [text[span.start : span.end] for span in sentence_spans(text)]


def numbered(number: int, text: str) -> str:
    """One `[n] ...` line of a numbered prompt; any run of whitespace in `text` shows as one space."""
    return f"[{number}] {' '.join(text.split())}"


def number_sentences(sentences: Iterable[str]) -> str:
    """Render sentences as `[1] ...` lines, the form the extractive prompt shows the model.

    Inside a sentence, any run of whitespace is shown as one space: a line separator the
    sentence splitter did not break on (\\r, U+2028, a form feed) cannot start a line of its
    own in the prompt, with a fake `[n]`. Only the prompt changes; kept text stays verbatim.
    """
    return "\n".join(numbered(i, sentence) for i, sentence in enumerate(sentences, start=1))


def join_sentences(text: str, spans: list[Span], numbers: Iterable[int]) -> str:
    """Rebuild text from the sentences `numbers` (1-based), in their original order.

    Neighbouring sentences keep the separator they had; a gap becomes a line break if the
    dropped stretch crossed one, else a space.
    """
    parts: list[str] = []
    previous = 0
    for number in sorted(set(numbers)):
        span = spans[number - 1]
        if previous:
            between = text[spans[previous - 1].end : span.start]
            if number == previous + 1:
                parts.append(between)
            else:
                parts.append("\n" if "\n" in between else " ")
        parts.append(text[span.start : span.end])
        previous = number
    return "".join(parts)


def _breaks(gap: str) -> int:
    """Line breaks in `gap` (white space): `\n`, `\r\n`, `\r`, and Unicode's line separators."""
    return len(f"x{gap}x".splitlines()) - 1


def delete_sentences(text: str, spans: Sequence[Span], dropped: Iterable[int]) -> str:
    """`text` with the sentences `dropped` (0-based indexes into `spans`) deleted in place.

    Every other character stays as it was, in order: with nothing dropped the result is `text`
    itself. Where sentences go, the two kept sentences around them are joined by the strongest
    of the gaps that lay between them (a paragraph break over a line break over a space, the
    earlier of equals), so no double spaces, blank runs or lost paragraph breaks appear; the
    text's own leading and trailing white space stays. Everything dropped gives "".
    """
    gone = set(dropped)
    if not gone:
        return text
    pieces: list[str] = []
    seam: str | None = None  # the gap before the next kept sentence; None before the first
    for index, span in enumerate(spans):
        after = text[span.end : spans[index + 1].start] if index + 1 < len(spans) else ""
        if index in gone:
            if seam is not None and _breaks(after) > _breaks(seam):
                seam = after
            continue
        pieces.append(text[: spans[0].start] if seam is None else seam)
        pieces.append(text[span.start : span.end])
        seam = after
    if seam is None:
        return ""
    pieces.append(text[spans[-1].end :])
    return "".join(pieces)


def quoted_spans(text: str) -> list[Span]:
    """The stretches of `text` inside quotation marks: on each line, from its first quote mark to its last.

    Straight and curly double quotes count. A quotation with quotes inside it ("calling it
    "marriage" offends") is one stretch; so, harmlessly, are two quotations on one line.
    """
    found: list[Span] = []
    for line in _LINE.finditer(text):
        marks = [m.start() for m in _QUOTE.finditer(line.group())]
        if len(marks) >= 2:  # an opening and a closing mark
            found.append(Span(line.start() + marks[0], line.start() + marks[-1] + 1))
    return found


def is_quoted(span: Span, quotes: Sequence[Span]) -> bool:
    """Whether more than half of the sentence at `span` lies inside the quoted stretches `quotes`."""
    inside = sum(max(0, min(span.end, q.end) - max(span.start, q.start)) for q in quotes)
    return 2 * inside > span.end - span.start
