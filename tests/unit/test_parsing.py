from __future__ import annotations

import pytest

from s2a._parsing import Unusable, parse_labelled, parse_rewrite, parse_selection


@pytest.mark.parametrize(
    "raw",
    [
        "Context: Mary has 3 apples.\nQuestion: How many apples?",
        "context:Mary has 3 apples.\n\nQUESTION:   How many apples?",
        "**Context:** Mary has 3 apples.\n**Question:** How many apples?",
        "## Context\nMary has 3 apples.\n\n## Question\nHow many apples?",
        "Sure! Here you go:\n\nContext (relevant unbiased text): Mary has 3 apples.\n"
        "Question/Query (does not contain opinions): How many apples?\n\nHope this helps!",
        "```\nContext: Mary has 3 apples.\nQuestion: How many apples?\n```",
        "Context: Mary has 3 apples. Question: How many apples?",
        '> Context: "Mary has 3 apples."\n> Query: How many apples?',
    ],
)
def test_labelled_tolerates_format_noise(raw: str) -> None:
    rewrite = parse_labelled(raw)
    assert rewrite.question == "How many apples?"
    assert rewrite.context == "Mary has 3 apples."


def test_labelled_missing_trailing_label() -> None:
    rewrite = parse_labelled("Context: Mary has 3 apples.\nHow many apples?")
    assert rewrite.question is None
    assert rewrite.context == "Mary has 3 apples.\nHow many apples?"


@pytest.mark.parametrize("none", ["none", "None.", "<none>", "N/A", "(none)"])
def test_labelled_none_context(none: str) -> None:
    assert parse_labelled(f"Context: {none}\nQuestion: Why?").context == ""


def test_labelled_question_only_drops_chatter() -> None:
    rewrite = parse_labelled("Here is the rewrite:\nMary has 3 apples.\nQuestion: How many?")
    assert rewrite == type(rewrite)(context="Mary has 3 apples.", question="How many?")


def test_labelled_rejects_unlabelled_text() -> None:
    with pytest.raises(Unusable, match="neither"):
        parse_labelled("The answer is 5.")


def test_prose_mentioning_a_question_is_not_a_label() -> None:
    rewrite = parse_labelled("Context: he asked the question: why is it blue\nQuestion: Why is the sky blue?")
    assert rewrite.question == "Why is the sky blue?"
    assert "asked the question: why" in rewrite.context


def test_rewrite_strips_chatter_and_fences() -> None:
    assert parse_rewrite("Sure, here is the rewritten text:\n```\nWhy is it blue?\n```") == "Why is it blue?"


def test_rewrite_rejects_empty() -> None:
    with pytest.raises(Unusable, match="empty"):
        parse_rewrite("  ``` ```  ")


@pytest.mark.parametrize(
    ("raw", "keep"),
    [
        ('{"keep": [1, 3]}', [1, 3]),
        ('{"question": [4], "keep": [3, 1, 3]}', [1, 3]),  # a field besides `keep` is ignored
        ('{"question": [[2], "x"], "keep": [2]}', [2]),  # whatever it holds
        ('Sure:\n```json\n{"Keep": ["2", 1.0]}\n```', [1, 2]),
        ("[2, 1]", [1, 2]),
        ('{"keep": [1, 9, 0, -2]}', [1]),
        ('{"keep": 2}', [2]),
        ('{"keep": []}', []),
    ],
)
def test_selection(raw: str, keep: list[int]) -> None:
    assert parse_selection(raw, count=4).keep == keep


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("I would keep sentences 1 and 3.", "no JSON"),
        ('{"sentences": [1]}', "no 'keep'"),
        ('{"keep": ["one"]}', "not a sentence number"),
        ('{"keep": [true]}', "not a sentence number"),
    ],
)
def test_selection_rejects(raw: str, reason: str) -> None:
    with pytest.raises(Unusable, match=reason):
        parse_selection(raw, count=4)
