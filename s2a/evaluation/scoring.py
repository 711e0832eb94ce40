"""Scoring answers and summarising scores: numbers, aliases, and 95% intervals."""

from __future__ import annotations

import math
import random
import re
import statistics
import string
import unicodedata
from collections.abc import Sequence

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_MARKER = re.compile(r"answer\s*(?:is|:|=)|####|\\boxed\{", re.IGNORECASE)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCTUATION = str.maketrans(dict.fromkeys(string.punctuation + "‘’“”–—", " "))  # noqa: RUF001


def extract_number(text: str) -> float | None:
    """The final numeric answer in a model's reply, or None if it holds no number.

    The first number after the last answer marker (`Answer:`, `the answer is`, `####`,
    `\\boxed{`) wins; without a marker, the last number in the text. Thousands separators,
    currency signs and a trailing full stop are ignored: `"Answer: $1,250."` gives 1250.0.
    """
    markers = list(_MARKER.finditer(text))
    after = _NUMBER.findall(text[markers[-1].end() :]) if markers else []
    numbers = after[:1] or _NUMBER.findall(text)[-1:]
    return float(numbers[0].replace(",", "")) if numbers else None


def numbers_match(predicted: float | None, gold: str) -> bool:
    """Whether `predicted` equals the gold answer (a number written as text)."""
    if predicted is None:
        return False
    return math.isclose(predicted, float(gold.replace(",", "")), rel_tol=1e-9, abs_tol=1e-6)


def normalise(text: str) -> str:
    """Lower case, accents, punctuation and articles removed, spaces collapsed (SQuAD style)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    plain = plain.replace("'", "").replace("\u2019", "")  # "Romeo's" -> "romeos", as the source writes
    plain = _ARTICLES.sub(" ", plain.translate(_PUNCTUATION))
    return " ".join(plain.split())


def first_line(text: str) -> str:
    """The first non-empty line of a reply: a short answer's answer, before any explanation."""
    return next((line for line in text.splitlines() if line.strip()), "")


def matches_alias(answer: str, aliases: Sequence[str]) -> bool:
    """Whether a normalised alias occurs, as whole words, in the answer's first line."""
    said = f" {normalise(first_line(answer))} "
    return any(f" {alias} " in said for alias in (normalise(a) for a in aliases) if alias)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sound for small n and for 0 or n)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def bootstrap_interval(
    values: Sequence[float], *, seed: int = 0, resamples: int = 4000
) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval of the mean; deterministic for a given seed."""
    if not values:
        return (math.nan, math.nan)
    if len(set(values)) == 1:
        return (values[0], values[0])
    rng = random.Random(seed)  # noqa: S311 - resampling, not security
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(resamples))
    return (means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1])
