"""Sentence splitting that never alters the text.

Every sentence is a verbatim slice of the input, so anything assembled from kept sentences
is guaranteed to be a subset of what the user gave.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import NamedTuple

import pysbd

_LINE = re.compile(r"[^\n]+")


class Span(NamedTuple):
    """Where a sentence lies in its text: `text[start:end]`."""

    start: int
    end: int


@functools.cache
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


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


def sentence_spans(text: str) -> list[Span]:
    """Spans of the sentences of `text`; a line break always ends a sentence."""
    spans: list[Span] = []
    for match in _LINE.finditer(text):
        if match.group().strip():
            spans.extend(_line_spans(text, match.start(), match.end()))
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
