"""Reading `scored` replies: one keep-or-drop decision per sentence, and P(keep) for each.

The reply is constrained to `1 keep\\n2 drop\\n...` (`decisions_regex`), three tokens a
sentence. P(keep) is read at the token that starts each decision word, from the alternatives
the backend reports there (TGI's `top_n_tokens`, OpenAI-style `top_logprobs`), normalised
over the words `keep` and `drop`. A backend that reports none gives the decision as written,
1.0 or 0.0, and the result says so (`scores_from="text"`).

The opinion test asks of one sentence, on its own, whether it states what the writer thinks
rather than a fact; its one-word reply (`yes` or `no`) is read the same way, as P(opinion).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple, TypeVar

from s2a._parsing import Unusable, strip_fences
from s2a._types import ScoresFrom, TokenLogprob

KEEP, DROP = "keep", "drop"
YES, NO = "yes", "no"

ONE_DECISION_REGEX = f"({KEEP}|{DROP})"
"""The reply of one per-sentence call: one word."""

OPINION_REGEX = f"({YES}|{NO})"
"""The reply of one opinion test: one word."""

TOP_LOGPROBS = 5
"""Alternatives asked for at each token; TGI allows at most 5 on its chat route."""

_DECISION = re.compile(
    rf"^[ \t]*\[?(\d+)\]?[ \t]*[:.)\-]?[ \t]*({KEEP}|{DROP})\b", re.IGNORECASE | re.MULTILINE
)


K = TypeVar("K", bound=Hashable)


def dropped(scores: Mapping[K, float], threshold: float, relative: float | None) -> set[K]:
    """The items to drop: P(keep) under `threshold` and, with `relative`, under that fraction of the best.

    The best is the highest P(keep) among the other items judged with it. With `relative`, an
    item judged alone has nothing to be measured against, and is kept; without it, the
    threshold alone decides every item.

    A small model's probabilities sit close together and shift from one text to the next; the
    relative test keeps a sentence that is low only because the whole text scored low. Alone,
    its P(keep) says little (the default model gives a lone fact beside a question anything
    from 0.3 to 0.6), and dropping the one sentence a question stands on costs more than
    keeping a harmless one.
    """
    gone: set[K] = set()
    for key, p in scores.items():
        others = [q for other, q in scores.items() if other != key]
        if p < threshold and (relative is None or (others and p < relative * max(others))):
            gone.add(key)
    return gone


def decisions_regex(count: int) -> str:
    """The reply `1 keep|drop`, a line for each of `count` sentences, in order, and nothing else."""
    return "\n".join(f"{n} ({KEEP}|{DROP})" for n in range(1, count + 1))


class Scores(NamedTuple):
    """P(keep) of each judged sentence, in order, and where they were read."""

    values: tuple[float, ...]
    source: ScoresFrom


def _p_first(entry: TokenLogprob, first: str, second: str) -> float | None:
    """P(first) / (P(first) + P(second)) among the alternatives at `entry`'s place, if either is there.

    A token counts for a word when it starts it (`k` and `ke` for `keep`).
    """
    one = two = 0.0
    for token, logprob in entry.top or ((entry.token, entry.logprob),):
        word = token.strip().lower()
        if word and first.startswith(word):
            one += math.exp(logprob)
        elif word and second.startswith(word):
            two += math.exp(logprob)
    return one / (one + two) if one + two > 0 else None


def _at(tokens: Sequence[TokenLogprob], positions: Sequence[int]) -> list[TokenLogprob] | None:
    """The token covering each character position of the tokens' joined text."""
    found: list[TokenLogprob] = []
    start, index = 0, 0
    for position in positions:
        while index < len(tokens) and start + len(tokens[index].token) <= position:
            start += len(tokens[index].token)
            index += 1
        if index == len(tokens):
            return None
        found.append(tokens[index])
    return found


def _read(
    text: str,
    words: list[re.Match[str]],
    logprobs: Sequence[TokenLogprob] | None,
    group: int,
    pair: tuple[str, str] = (KEEP, DROP),
) -> Scores:
    """Each decision word's P(pair[0]) from the token that starts it; the written word where none is.

    A written word may be the start of its word (a reply cut at its first token: `ke`).
    """
    written = tuple(1.0 if pair[0].startswith(m.group(group).lower()) else 0.0 for m in words)
    joined = "".join(t.token for t in logprobs or ())
    if not logprobs or joined.strip() != text.strip():  # no tokens, or tokens of another text
        return Scores(written, "text")
    shift = (len(joined) - len(joined.lstrip())) - (len(text) - len(text.lstrip()))
    entries = _at(logprobs, [m.start(group) + shift for m in words])
    read = [_p_first(entry, *pair) for entry in entries] if entries is not None else [None] * len(words)
    values = tuple(w if p is None else p for w, p in zip(written, read, strict=True))
    return Scores(values, "text" if None in read else "logprobs")


def read_decisions(raw: str, count: int, logprobs: Sequence[TokenLogprob] | None = None) -> Scores:
    """P(keep) of sentences 1 to `count` from a `1 keep\\n2 drop ...` reply and its tokens.

    Raises:
        Unusable: a sentence has no decision, or two.

    """
    text = raw if logprobs else strip_fences(raw)
    found: dict[int, re.Match[str]] = {}
    for match in _DECISION.finditer(text):
        number = int(match.group(1))
        if number in found:
            msg = f"the reply decides sentence {number} twice"
            raise Unusable(msg)
        if 1 <= number <= count:
            found[number] = match
    missing = [n for n in range(1, count + 1) if n not in found]
    if missing:
        msg = f"the reply has no keep-or-drop decision for sentence(s) {missing}"
        raise Unusable(msg)
    return _read(text, [found[n] for n in range(1, count + 1)], logprobs, 2)


def _one_word(
    raw: str, logprobs: Sequence[TokenLogprob] | None, pair: tuple[str, str], *, cut: bool
) -> Scores:
    """P(pair[0]) from a one-word reply that is one of `pair`; the written word without probabilities.

    `cut`: the reply was asked for one token, so it may hold only the start of its word (`ke`);
    a start that begins one word of `pair` and not the other counts as that word.
    """
    match = re.search(rf"\b({pair[0]}|{pair[1]})\b", raw, re.IGNORECASE)
    start = raw.strip()
    if match is None and cut and start and sum(w.startswith(start.lower()) for w in pair) == 1:
        match = re.search(f"({re.escape(start)})", raw)
    if match is None:
        msg = f"the reply is neither {pair[0]!r} nor {pair[1]!r}"
        raise Unusable(msg)
    return _read(raw, [match], logprobs, 1, pair)


def read_decision(raw: str, logprobs: Sequence[TokenLogprob] | None = None, *, cut: bool = False) -> Scores:
    """P(keep) from a one-word `keep` or `drop` reply; the written word (1.0 or 0.0) without probabilities.

    `cut`: the reply was asked for one token and may be the start of its word (`_one_word`).

    Raises:
        Unusable: the reply says neither word.

    """
    return _one_word(raw, logprobs, (KEEP, DROP), cut=cut)


def read_opinion(raw: str, logprobs: Sequence[TokenLogprob] | None = None, *, cut: bool = False) -> Scores:
    """P(opinion) from a one-word `yes` or `no` reply; the written word (1.0 or 0.0) without probabilities.

    `cut`: the reply was asked for one token and may be the start of its word (`_one_word`).

    Raises:
        Unusable: the reply says neither word.

    """
    return _one_word(raw, logprobs, (YES, NO), cut=cut)
