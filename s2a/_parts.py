"""Fitting an input into the model's window: token estimates, the prompt's price, one packer.

Both S2A plans use it: a text's plan (`s2a._windows`) packs its sentences into parts, the RAG
selection (`s2a.selection`) packs documents or sentences into windows. Either way the items go,
in order, into consecutive groups whose estimated tokens fit the budget left once the fixed
prompt around them is priced (`prompt_tokens`); nothing is reordered or dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from s2a._sentences import Span
from s2a._types import ChatMessage

_WORD = re.compile(r"\S+\s*")

ItemT = TypeVar("ItemT")


def approx_tokens(text: str) -> int:
    """A conservative token estimate when no tokenizer is given.

    About 3 characters a token for ASCII text; every other character counts as a token, so
    Chinese or Arabic text is not underestimated.
    """
    ascii_chars = sum(char.isascii() for char in text)
    return ascii_chars // 3 + (len(text) - ascii_chars) + 1


def prompt_tokens(messages: Iterable[ChatMessage], count_tokens: Callable[[str], int] = approx_tokens) -> int:
    """The size of a call's prompt: every message's content."""
    return sum(count_tokens(message["content"]) for message in messages)


def pack(items: Sequence[ItemT], budget: int, price: Callable[[ItemT], int]) -> list[list[ItemT]]:
    """`items`, in order, in consecutive groups whose prices add up to at most `budget`.

    An item priced over the budget gets a group of its own (the caller decides whether to cut
    it first, or to warn).
    """
    groups: list[list[ItemT]] = []
    used = 0
    for item in items:
        cost = price(item)
        if groups and used + cost <= budget:
            groups[-1].append(item)
            used += cost
        else:
            groups.append([item])
            used = cost
    return groups


@dataclass(frozen=True)
class Part:
    """A stretch of a text sent in one call, and the sentences (or pieces) it shows."""

    span: Span
    """Where the part lies in the whole text."""
    spans: tuple[Span, ...]
    """Its sentences, or pieces of a sentence too long for a window, relative to the part."""
    sentences: tuple[int, ...]
    """For each of `spans`, the number (1-based) of the whole text's sentence it comes from."""


def _trimmed(text: str, span: Span) -> Span:
    piece = text[span.start : span.end]
    return Span(span.start, span.end - (len(piece) - len(piece.rstrip())))


def _pieces(text: str, span: Span, budget: int, count_tokens: Callable[[str], int]) -> list[Span]:
    """`span` whole, or cut at word boundaries into pieces that fit (a word too long, anywhere).

    A piece's cost is the sum of its words' (an overestimate), so the cut is linear in the text.
    """
    if count_tokens(text[span.start : span.end]) <= budget:
        return [span]
    pieces: list[Span] = []
    start = end = span.start  # the piece being built: text[start:end], costing `used`
    used = 0
    for word in _WORD.finditer(text, span.start, span.end):
        price = count_tokens(word.group())
        if end > start and used + price > budget:
            pieces.append(Span(start, end))
            start, used = word.start(), 0
        if price > budget:  # one word longer than a window: cut it at characters
            step = max(1, budget // 2)
            while word.end() - start > step and count_tokens(text[start : word.end()]) > budget:
                pieces.append(Span(start, start + step))
                start += step
            price = count_tokens(text[start : word.end()])
        end = word.end()
        used += price
    if end > start:
        pieces.append(Span(start, end))
    return [_trimmed(text, piece) for piece in pieces]


def split_parts(
    text: str, spans: Sequence[Span], budget: int, count_tokens: Callable[[str], int]
) -> list[Part]:
    """Consecutive stretches of `text`, each as many whole sentences (`spans`) as fit `budget`.

    A sentence longer than a window is cut at word boundaries into pieces that fit; the pieces
    of one sentence that land in one part show there as one.
    """
    pieces = [
        (piece, number)
        for number, span in enumerate(spans, start=1)
        for piece in _pieces(text, span, budget, count_tokens)
    ]
    # A sentence also costs its separator and, in the extractive form, its "[n] ".
    groups = pack(pieces, budget, lambda item: count_tokens(text[item[0].start : item[0].end]) + 2)
    parts = []
    for group in groups:
        start = group[0][0].start
        shown: list[tuple[Span, int]] = []
        for piece, number in group:
            if shown and shown[-1][1] == number:
                shown[-1] = (Span(shown[-1][0].start, piece.end), number)
            else:
                shown.append((piece, number))
        parts.append(
            Part(
                span=Span(start, group[-1][0].end),
                spans=tuple(Span(piece.start - start, piece.end - start) for piece, _ in shown),
                sentences=tuple(number for _, number in shown),
            )
        )
    return parts
