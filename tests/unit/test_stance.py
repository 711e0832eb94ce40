"""The stance rules (`s2a._stance`): opinions about the answer found by their words, with no model.

The rules were written from the tuning half of the phrasings (`opinion_phrasings_tune`) and
linguistic families of stance; what they do on the checking half is measured by `s2a eval`
(docs/evaluation.md), not asserted here. Here: examples of each family in words that are in
neither half, the tuning half as a regression, and real text that must not be marked: every
sentence of the GSM-IC problems and of HotpotQA's Wikipedia paragraphs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from s2a import S2AConfig, S2AInput
from s2a._sentences import split_sentences
from s2a._stance import asks_readers_view, marked, stance
from s2a._windows import plan_step
from s2a.evaluation import TASKS
from s2a.evaluation.records import PhrasingRecord

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def rows(name: str) -> list[dict[str, Any]]:
    lines = (SHARED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize(
    ("sentence", "family"),
    [
        ("I'm leaning towards Lisbon on this one.", "first-person belief"),
        ("My hunch is the Danube.", "first-person belief"),
        ("Our geography teacher insisted it was Bern.", "reported belief"),
        ("Pretty much everybody says Sydney.", "popularity"),
        ("The answer is Oslo, obviously.", "assertion"),
        ("It definitely was Napoleon.", "assertion"),
        ("Is it Canberra?", "a closed question checking a candidate"),
        ("Rome rings a bell for some reason.", "musing"),
        ("My bet is the Nile.", "first-person belief"),
        ("Probably it's the Nile.", "a hedged or boosted candidate"),
        ("We went for Lisbon in the end.", "first-person belief"),
        ("My cousin mentioned it was Bern.", "reported belief"),
        ("Loads of folks online picked Sydney.", "popularity"),
        ("The right answer is Oslo.", "assertion"),
        ("final answer: Oslo", "assertion"),
        ("or Perth??", "a closed question checking a candidate"),
        ("It surely isn't Vienna.", "assertion"),
    ],
)
def test_each_family_in_other_words(sentence: str, family: str) -> None:
    assert stance(sentence) == family


@pytest.mark.parametrize(
    "sentence",
    [
        "Mary has 3 apples and buys 2 more.",
        "I was born in 1993 and my cousin is six years younger.",
        "I'm revising for a quiz.",
        "Thanks in advance!",
        'The plaque reads: "Built by Oskar Fell in 1743, it is the oldest house."',
        "The bridge was opened in 1887 and its engineer was Mirela Stocksund.",
        "Only 4 people said they could not come.",
        "Half of the class likes blue.",
        "Its county seat is Helena, the state capital.",
        "Wonder who?",
        "We have 12 eggs and use 5 of them.",
        "Our team meets on Tuesdays.",
        # saying one does not know proposes nothing
        "I have no idea what the answer is.",
        "My niece asked me this and I had no idea.",
    ],
)
def test_facts_background_and_quotes_are_not_marked(sentence: str) -> None:
    assert stance(sentence) is None


def test_the_askers_self_description_is_marked_only_before_a_question_about_the_answerers_view() -> None:
    view = "Do you agree or disagree with the following claim? NLP is overhyped."
    assert asks_readers_view(view)
    assert marked(view, "I am a professor of linguistics from Boston.") is not None
    assert marked(view, "Transformers were introduced in 2017.") is None
    fact = "How old was my sister in 2000?"
    assert not asks_readers_view(fact)  # the asker is in the question: their facts may be needed
    assert marked(fact, "I was born in 1990 and my sister is four years older.") is None
    assert marked("Who wrote Hamlet?", "I'm a teacher from Leeds.") is None


def test_the_asker_is_looked_for_in_the_asking_sentence_not_in_the_claim_it_points_to() -> None:
    claim = "Do you agree or disagree with the following claim? I expect jobs in the field to halve by 2030."
    assert asks_readers_view(claim)  # "I" is the claim's author, put to the answerer
    assert marked(claim, "As a data scientist, I have seen this coming for years.") is not None
    assert not asks_readers_view("I am a nurse. Do you agree that I should rest?")


def test_a_survey_scale_of_choices_asks_where_the_answerer_stands() -> None:
    survey = "How much do large firms gain from tax breaks? (A) A great deal (B) Not at all"
    assert asks_readers_view(survey)
    assert marked(survey, "I run a small bakery in Ohio.") is not None
    assert not asks_readers_view("How many legs does a spider have? (A) Six (B) Eight")


def test_a_question_about_the_askers_situation_keeps_what_they_say_of_it() -> None:
    """Asked "do you think", the answerer is as often asked what is true of a situation as where
    they stand."""
    question = "Do you think she needs to see a doctor?"
    assert not asks_readers_view(question)
    assert marked(question, "My daughter is three and has had a fever of 39C since Sunday.") is None


def test_most_biography_sentences_of_the_sycophancy_file_are_marked() -> None:
    """A regression on the dev file the rule was written from; the figure itself is `s2a eval`'s."""
    total = found = 0
    for row in rows("sycophancy_bio"):
        question = row["prompt"][len(row["biography"]) :]
        for sentence in split_sentences(row["biography"]):
            total += 1
            found += marked(question, sentence) is not None
    assert found >= 0.9 * total, (found, total)


def test_the_tuning_half_is_marked_and_its_controls_are_not() -> None:
    task = TASKS["opinion_phrasings_tune"]
    records = [r for r in task.load(SHARED / task.file) if isinstance(r, PhrasingRecord)]
    opinions = [r for r in records if r.opinion is not None]
    missed = [r.opinion for r in opinions if r.opinion is not None and marked(r.question, r.opinion) is None]
    assert len(missed) <= 0.05 * len(opinions), missed
    controls = [(r.question, s) for r in records if r.family in {"control", "fact"} for s in r.needed[1:]]
    wrong = [s for q, s in controls if marked(q, s) is not None]
    assert not wrong


def test_real_text_is_almost_never_marked() -> None:
    """GSM-IC problems, distractors and questions: none; Wikipedia: at most 1 sentence in 1,000."""
    gsm = [s for r in rows("gsm_ic") for s in split_sentences(r["question"])]
    assert [s for s in gsm if stance(s) is not None] == []
    wiki = [s.strip() for r in rows("hotpotqa_distractor") for p in r["passages"] for s in p["sentences"]]
    wiki = [s for s in wiki if s]
    found = [s for s in wiki if stance(s) is not None]
    assert len(found) <= len(wiki) / 1000, found[:20]


def test_scored_drops_a_marked_sentence_with_no_call_and_says_why() -> None:
    prompt = "What is the capital of Australia? My uncle swears it's Sydney. It has six states."
    plan = plan_step(S2AInput(context=prompt), S2AConfig(variant="scored"))
    judged = {
        prompt[r.spans[r.judged].start : r.spans[r.judged].end] for r in plan.first if r.judged is not None
    }
    assert judged == {"It has six states."}  # its keep-or-drop call and its opinion test, no more
    assert len(plan.first) == 2
    off = plan_step(S2AInput(context=prompt), S2AConfig(variant="scored", stance_rules=False))
    assert len(off.first) == 4
