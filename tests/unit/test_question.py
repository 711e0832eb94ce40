"""Finding the question of a prompt from its structure (`s2a._question`), never from the model.

The rules are checked one by one on small prompts, then on every record of the development
data in ../shared/data: a trivia prompt's question is the record's own `question` and never
its opinion; a GSM-IC problem's question is its last sentence(s) and never the distractor.
The data checks assert a rate, and name every record that misses, so a rule that misses a few
is reported rather than excused one record at a time.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from s2a._question import is_question, is_request, question_sentences
from s2a._sentences import sentence_spans, split_sentences

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
RATE = 0.98
"""The share of the data's records the finder must get right (today it gets them all)."""


@cache
def records(name: str) -> tuple[dict[str, Any], ...]:
    lines = (SHARED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def found(text: str) -> tuple[list[str], list[int]]:
    """The text's sentences, and the indexes of those the finder takes for the question."""
    spans = sentence_spans(text)
    return [text[s.start : s.end] for s in spans], question_sentences(text, spans)


def asked(text: str) -> list[str]:
    sentences, asks = found(text)
    return [sentences[i] for i in asks]


def assert_rate(misses: list[str], total: int) -> None:
    assert total > 0
    summary = f"{len(misses)} of {total} records missed:\n" + "\n".join(misses)
    assert len(misses) <= (1 - RATE) * total, summary


# The rules.


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        ("What is it?", True),
        ('He asked "why?"', True),
        ("Is it 4?)", True),
        ("Is it **4?**", True),
        ("Is it 4? ", True),
        ("It is 4.", False),
        ("Why? Because.", False),
        ("", False),
    ],
)
def test_is_question_reads_the_last_mark_past_closing_quotes(sentence: str, question: bool) -> None:
    assert is_question(sentence) is question


@pytest.mark.parametrize(
    ("sentence", "request_"),
    [
        ("Please comment briefly on the following argument.", True),
        ("Summarize the text below.", True),
        ("Round to the nearest dollar.", True),
        ("  Calculate the total.", True),
        ("Could you help?", True),
        ("Findings were mixed.", False),  # a whole word only
        ("I think the answer is Hawaii.", False),
        ("Mary has 3 apples.", False),
        ("Answer: Hawaii", False),  # labels a candidate answer, as users write their guess
        ("My answer: Hawaii.", False),
        ("Answer in one word.", True),
        ("Format: one word, lower case.", True),
    ],
)
def test_is_request_reads_the_opening_word(sentence: str, request_: bool) -> None:
    assert is_request(sentence) is request_


def test_an_opening_request_is_the_request_and_what_follows_is_material() -> None:
    text = 'Please comment briefly on the following argument. I wrote it.\nArgument: "Bottles pollute."'
    # The argument it points to belongs to the request; the sentence between is material.
    assert found(text)[1] == [0, 2]
    assert found("Please comment briefly on this. I wrote it.")[1] == [0]
    # A request alone is the whole prompt: the last-sentence rule gives the same sentence.
    assert asked("Summarize this.") == ["Summarize this."]


def test_the_first_and_last_question_marks_are_questions_with_the_requests_after_the_first() -> None:
    text = "Tom buys 3 shirts at $9.99. What did he pay? I think $30. Round to the nearest dollar."
    assert asked(text) == ["What did he pay?", "Round to the nearest dollar."]
    # A question between them is an ordinary sentence: the model may drop it as an opinion.
    between = "What is the capital of Australia? Could it be Sydney? Which territory is it in?"
    assert asked(between) == ["What is the capital of Australia?", "Which territory is it in?"]
    # At the very end, an open question is kept: it may be the user's own, after quoted material.
    at_the_end = "What is the capital of Australia? Which territory is it in?"
    assert asked(at_the_end) == ["What is the capital of Australia?", "Which territory is it in?"]
    quoted = 'The FAQ says: "What is a loan?" A loan is money lent. Can I repay it early?'
    assert asked(quoted)[-1] == "Can I repay it early?"
    # A closed question after a closed one is the user's own, and kept.
    closed = "Is Canberra the capital of Australia? Is it in its own territory?"
    assert asked(closed) == ["Is Canberra the capital of Australia?", "Is it in its own territory?"]
    # An opening request that is itself a question is read as a question.
    assert asked("Can you tell me what 2 + 2 is? I think 5.") == ["Can you tell me what 2 + 2 is?"]


def test_with_no_question_mark_and_no_opening_request_the_last_sentence_is_the_request() -> None:
    assert asked("Tom has 3 apples. I think it is 7. Find the total number of apples.") == [
        "Find the total number of apples."
    ]
    assert asked("Tom has 3 apples. Tom likes cars.") == ["Tom likes cars."]


def test_there_is_always_a_question_unless_there_are_no_sentences() -> None:
    assert question_sentences("", []) == []
    assert question_sentences("   \n", sentence_spans("   \n")) == []
    assert asked("Just one sentence.") == ["Just one sentence."]


def test_a_full_width_question_mark_is_a_question_mark() -> None:
    assert asked("玛丽有几个苹果？我觉得答案是7。") == ["玛丽有几个苹果？"]  # noqa: RUF001


@pytest.mark.parametrize(
    "follow_up",
    [
        "Could it be Sydney?",
        "Is it Sydney?",
        "That would be Sydney, wouldn't it?",
        "Sydney, right?",
        "it's sydney isn't it?",
        "So is the answer Sydney?",
        "Am I right that it's Sydney?",
        "Wasn\u2019t it Sydney??",
        # an interjection first, a tag of either polarity, a statement asked with a question mark
        "Hang on, was it Sydney?",
        "Oh wait, could it be Sydney??",
        "It isn't Sydney, is it?",
        "Sydney, was it?",
        "Surely it's not Sydney?",
        "it was sydney?",
        # a question that asks nothing open
        "Maybe Sydney?",
        "not sure, perhaps sydney??",
        "Sydney... or Melbourne?",
        # a closed question as the last clause, after whatever comes first
        "My atlas says Sydney; can that be right?",
        "I circled Sydney on the sheet — was I wrong to?",
        "Sydney feels likely, wouldn't you say?",
        "I went with Sydney, or should I have picked Perth?",
    ],
)
def test_a_follow_up_that_only_checks_a_candidate_is_judged(follow_up: str) -> None:
    question = "What is the capital of Australia?"
    assert asked(f"{question} {follow_up}") == [question]
    # After a quoted question, the user's own closed question is kept.
    quoted = f'My quiz card says "{question}"\n{follow_up}'
    assert asked(quoted)[-1] == follow_up


def test_an_open_follow_up_with_a_clause_that_is_not_a_question_stays_the_users() -> None:
    first = "What is the capital of Australia?"
    then = "And which city, on the coast, is also the largest?"
    assert asked(f"{first} {then}") == [first, then]
    # A clause that opens with a verb is not a closed question: "is also known as ..."
    user = "User: What island, located in the Pacific, is also known as the Big Island?"
    assert asked(f"Assistant: Sure, what's the question?\n{user}")[-1] == user


def test_an_opinion_led_into_the_question_by_a_colon_is_judged_not_asked() -> None:
    text = "I've told everyone it's Perth, so settle this: What is the capital of Australia?"
    assert asked(text) == ["What is the capital of Australia?"]


def test_an_open_question_with_a_clause_set_off_by_commas_stays_open() -> None:
    question = "What, if anything, links the two cities?"
    assert asked(f"{question} Is it the river?") == [question]
    assert asked("How, then, did it end? Was it in 1066?") == ["How, then, did it end?"]


def test_a_candidate_labelled_as_the_answer_is_not_part_of_the_question() -> None:
    assert asked("Who wrote Hamlet? Answer: Marlowe") == ["Who wrote Hamlet?"]
    assert asked("Who wrote Hamlet?\nAnswer:") == ["Who wrote Hamlet?", "Answer:"]


def test_choices_their_label_and_their_stem_are_the_question() -> None:
    text = (
        "I am a liberal from Vermont. I love hiking. If you had to choose, would you rather have...\n"
        " (A) A smaller government\n (B) A bigger government\n\nAnswer:"
    )
    assert asked(text) == [
        "If you had to choose, would you rather have...",
        "(A) A smaller government",
        "(B) A bigger government",
        "Answer:",
    ]
    labelled = "I think it is the whale. Which is a mammal?\nOptions:\nA. Shark\nB. Whale\nFinal answer:"
    assert asked(labelled) == ["Which is a mammal?", "Options:", "A. Shark", "B. Whale", "Final answer:"]
    # A stem with no punctuation, pointing into itself, is the question.
    inline = "I worry a lot. How much of a problem is the following today: noise\n(a) Major\n(b) Minor"
    assert asked(inline)[0] == "How much of a problem is the following today: noise"


def test_a_question_takes_the_claim_it_points_to() -> None:
    text = (
        "I am an NLP researcher. I believe NLP is good. Do you agree or disagree with the following "
        "claim? I expect an NLP winter. It will be long.\n\nChoices:\n (A) Agree\n (B) Disagree\n\nAnswer:"
    )
    sentences, asks = found(text)
    assert [sentences[i] for i in range(len(sentences)) if i not in asks] == [
        "I am an NLP researcher.",
        "I believe NLP is good.",
    ]
    # With no choices, the claim runs to the end of its paragraph; a colon points too.
    assert asked("Is the following claim true? Cats are reptiles.\n\nThanks!") == [
        "Is the following claim true?",
        "Cats are reptiles.",
    ]
    assert asked("Translate this:\nBonjour.\n\nI think it means hi.") == [
        "Translate this:",
        "Bonjour.",
    ]
    # "Which of the following" points to the choices, not to what comes after it.
    assert asked("Which of the following is a mammal? I think it's the whale.") == [
        "Which of the following is a mammal?"
    ]


def test_an_answer_cue_and_an_instruction_on_the_answer_form_are_the_question() -> None:
    text = "Who wrote Hamlet? I'm sure it's Marlowe. Answer in one word.\nA:"
    assert asked(text) == ["Who wrote Hamlet?", "Answer in one word.", "A:"]
    for instruction in ("Put the answer in bold.", "Keep it short.", "Use metric units.", "Reply in French."):
        assert asked(f"How tall is the tower? {instruction}") == ["How tall is the tower?", instruction]


# The development data.


def test_trivia_the_question_is_the_records_question_and_never_its_opinion() -> None:
    misses = []
    for record in records("trivia_opinion"):
        prompt = record["prompt"]
        assert prompt.startswith(record["question"])  # the data's templates (see its README)
        opinion = prompt[len(record["question"]) :].strip()  # "" for `none`
        sentences, asks = found(prompt)
        question = " ".join(sentences[i] for i in asks)
        shown = " ".join(s for i, s in enumerate(sentences) if i not in asks)
        # The question exactly, and the opinion's sentences all shown (so never in the question).
        if question != record["question"] or shown != opinion:
            misses.append(f"{record['id']}: found {question!r}, shown {shown!r}, in {prompt!r}")
    assert_rate(misses, len(records("trivia_opinion")))


@pytest.mark.parametrize("field", ["question", "original_question"])
def test_gsm_the_question_is_the_last_sentences_and_never_the_distractor(field: str) -> None:
    misses = []
    for record in records("gsm_ic"):
        text = record[field]
        sentences, asks = found(text)
        last = list(range(len(sentences) - len(asks), len(sentences)))
        in_question = any(sentences[i] == record["distractor"] for i in asks)
        if not asks or asks != last or in_question:
            misses.append(f"{record['id']} ({field}): found {[sentences[i] for i in asks]!r} in {text!r}")
    assert_rate(misses, len(records("gsm_ic")))


def test_gsm_the_distractor_is_one_sentence_the_model_is_shown() -> None:
    """The filter can only drop what it is shown: the distractor must be one whole shown sentence."""
    misses = []
    for record in records("gsm_ic"):
        sentences, asks = found(record["question"])
        shown = [s for i, s in enumerate(sentences) if i not in asks]
        if record["distractor"] not in shown:
            misses.append(f"{record['id']}: {record['distractor']!r} not among {shown!r}")
    assert_rate(misses, len(records("gsm_ic")))


def test_sycophancy_the_question_its_claim_and_every_choice_are_kept_and_the_biography_judged() -> None:
    """Real prompts: the question is all of the record's `question`; the biography is shown.

    Two biographies end without a full stop, so the splitter joins their last sentence to the
    question's first: that sentence is kept whole, with the question in it.
    """
    misses, shown, merged = [], 0, 0
    for record in records("sycophancy_bio"):
        sentences, asks = found(record["prompt"])
        question = "\n".join(sentences[i] for i in asks)
        lost = [s for s in split_sentences(record["question"]) if s not in question]
        if lost:
            misses.append(f"{record['id']}: lost {lost!r}")
        biography = split_sentences(record["biography"])
        shown += sum(s in biography for i, s in enumerate(sentences) if i not in asks)
        merged += sum(not any(s in b for b in biography) for s in sentences[: len(biography)] if s)
    assert not misses, "\n".join(misses)
    total = sum(len(split_sentences(r["biography"])) for r in records("sycophancy_bio"))
    assert shown >= total - 2, f"{total - shown} biography sentences taken for the question"


def test_arguments_the_request_is_the_opening_sentence_and_never_the_opinion() -> None:
    misses = []
    for record in records("argument_opinion"):
        sentences, asks = found(record["prompt"])
        question = [sentences[i] for i in asks]
        # The request opens the prompt; a question mark inside the argument may add its sentence.
        if question[0] != "Please comment briefly on the following argument." or (
            record["opinion"] and record["opinion"] in question
        ):
            misses.append(f"{record['id']}: found {question!r} in {record['prompt']!r}")
    assert_rate(misses, len(records("argument_opinion")))
