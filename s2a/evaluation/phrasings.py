"""Opinions as people write them: prompts built from our phrasings and the trivia questions.

`s2a/evaluation/data/opinion_phrasings.json` holds phrasings of an opinion about the answer
(written for this project, in families: belief, assertion, hearsay, popularity, tag, doubt,
before, musing, turn), negative controls (sentences a filter must keep) and fact items
(fictional facts a question needs), each in a `tune` or a `check` half; its README says more.
Here they are attached to the trivia questions of `trivia_opinion.jsonl` (its `none`
prompts): every phrasing to `QUESTIONS_PER_PHRASING` questions, in turn, a suggestion with the
correct answer on half of them and with the incorrect one on the other half, a refutation
with the correct answer; every control to `QUESTIONS_PER_CONTROL` questions. Each question's
`none` prompt is in both halves, as the clean side of the opinion flip rate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import cache
from importlib import resources
from typing import Any, Literal

from s2a._sentences import split_sentences

Half = Literal["tune", "check", "fresh", "fresh2", "fresh3", "fresh4"]

QUESTIONS_PER_PHRASING = 4
QUESTIONS_PER_CONTROL = 3

TASK_OF_HALF: dict[Half, str] = {
    "tune": "opinion_phrasings_tune",
    "check": "opinion_phrasings",
    "fresh": "opinion_phrasings_fresh",
    "fresh2": "opinion_phrasings_fresh2",
    "fresh3": "opinion_phrasings_fresh3",
    "fresh4": "opinion_phrasings_fresh4",
}
"""The `s2a eval` task of each set, in the order they were written."""


_FILES = (
    "opinion_phrasings.json",
    "opinion_phrasings_fresh.json",
    "opinion_phrasings_fresh2.json",
    "opinion_phrasings_fresh3.json",
    "opinion_phrasings_fresh4.json",
)
"""The tuning and checking halves; then a third set, `fresh`, written after the rules had been
tuned and checked, by a writer who saw neither half, to check them again; then a fourth,
`fresh2`, written the same way once `fresh`'s misses had been read; then a fifth, `fresh3`,
once `fresh2`'s had been read for the question finder; then a sixth, `fresh4`, once `fresh3`'s had."""


@cache
def phrasings_data() -> dict[str, list[dict[str, Any]]]:
    """The phrasings, controls and fact items of every set, as the package ships them."""
    data: dict[str, list[dict[str, Any]]] = {"phrasings": [], "controls": [], "fact_items": []}
    for name in _FILES:
        text = resources.files("s2a.evaluation").joinpath(f"data/{name}").read_text(encoding="utf-8")
        for key, items in json.loads(text).items():
            data[key].extend(items)
    return data


def _place(question: str, text: str, position: str) -> str:
    if position == "before":
        return f"{text} {question}"
    if position == "turn":
        return f"{text}\nUser: {question}"
    return f"{question} {text}"


def _carrier(text: str, answer: str) -> str:
    """The sentence (or chat line) of `text` that names `answer`: what the filter must remove."""
    for sentence in split_sentences(text):
        if answer in sentence:
            return sentence
    return text


def _questions(trivia: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in trivia if row.get("opinion_type") == "none"]


def _base(question: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "question": question["question"],
        "correct_answer": question["correct_answer"],
        "aliases": question["aliases"],
        "group_id": question["group_id"],
        **fields,
    }


def _spread(
    items: list[dict[str, Any]], questions: list[dict[str, Any]], per: int
) -> Iterator[tuple[dict[str, Any], dict[str, Any], int]]:
    """Each item with `per` questions, taken in turn from `questions`, and its count (0 to per - 1)."""
    turn = 0
    for item in items:
        for k in range(per):
            yield item, questions[turn % len(questions)], k
            turn += 1


def _opinions(questions: list[dict[str, Any]], half: Half) -> Iterator[dict[str, Any]]:
    phrasings = [p for p in phrasings_data()["phrasings"] if p["half"] == half]
    for phrasing, question, k in _spread(phrasings, questions, QUESTIONS_PER_PHRASING):
        if phrasing["stance"] == "refute":
            kind, answer = "refute_correct", question["correct_answer"]
        elif k % 2 == 0:
            kind, answer = "suggest_correct", question["correct_answer"]
        else:
            kind, answer = "suggest_incorrect", question["incorrect_answer"]
        text = phrasing["template"].replace("{answer}", answer)
        yield _base(
            question,
            id=f"{question['group_id']}-{phrasing['id']}-{kind}",
            prompt=_place(question["question"], text, phrasing["position"]),
            family=phrasing["family"],
            opinion_type=kind,
            opinion=_carrier(text, answer),
            needed=[question["question"]],
        )


def _controls(questions: list[dict[str, Any]], half: Half) -> Iterator[dict[str, Any]]:
    controls = [c for c in phrasings_data()["controls"] if c["half"] == half]
    for control, question, _ in _spread(controls, questions, QUESTIONS_PER_CONTROL):
        yield _base(
            question,
            id=f"{question['group_id']}-{control['id']}",
            prompt=_place(question["question"], control["template"], control["position"]),
            family="control",
            opinion_type=control["kind"],
            opinion=None,
            needed=[question["question"], *split_sentences(control["template"])],
        )


def _facts(half: Half) -> Iterator[dict[str, Any]]:
    for item in phrasings_data()["fact_items"]:
        if item["half"] == half:
            yield {
                "id": item["id"],
                "question": item["question"],
                "prompt": f"{item['text']} {item['question']}",
                "family": "fact",
                "opinion_type": item["kind"],
                "opinion": None,
                "needed": [*split_sentences(item["text"]), item["question"]],
                "correct_answer": item["answer"],
                "aliases": item["aliases"],
                "group_id": None,
            }


def phrasing_records(trivia: Sequence[dict[str, Any]], half: Half) -> list[dict[str, Any]]:
    """The `half`'s prompts over the trivia records `trivia`: clean, opinions, controls, facts."""
    questions = _questions(trivia)
    if not questions:
        msg = "no trivia question to attach the phrasings to (no record with opinion_type 'none')"
        raise ValueError(msg)
    clean = [
        _base(
            q,
            id=f"{q['group_id']}-none",
            prompt=q["question"],
            family="none",
            opinion_type="none",
            opinion=None,
            needed=[q["question"]],
        )
        for q in questions
    ]
    return [*clean, *_opinions(questions, half), *_controls(questions, half), *_facts(half)]
