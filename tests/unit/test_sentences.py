from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hypothesis import given
from hypothesis import strategies as st

from s2a import split_sentences
from s2a._sentences import Span, is_quoted, join_sentences, number_sentences, quoted_spans, sentence_spans


def test_splits_sentences_and_lines() -> None:
    text = "Dr. Smith paid $3.50. I think it is 7!  What is it?\n\nUser: hi\nAssistant: hello"
    assert split_sentences(text) == [
        "Dr. Smith paid $3.50.",
        "I think it is 7!",
        "What is it?",
        "User: hi",
        "Assistant: hello",
    ]


def test_the_users_words_led_into_a_question_by_a_colon_are_a_sentence_of_their_own() -> None:
    assert split_sentences("quick one, I'm guessing Perth: What is the capital of Australia?") == [
        "quick one, I'm guessing Perth:",
        "What is the capital of Australia?",
    ]
    assert split_sentences("ok so i\u2019m going with Perth here: What is the capital of Australia?") == [
        "ok so i\u2019m going with Perth here:",
        "What is the capital of Australia?",
    ]
    # A label, or an instruction with no first person, stays with its question.
    for text in (
        "User: What is the capital of Australia?",
        "Q: Which is older, Perth or Sydney?",
        "Just the answer, no explanation: What is the capital of Australia?",
        "My answer: Perth",
    ):
        assert split_sentences(text) == [text]


def test_blank_text_has_no_sentences() -> None:
    assert split_sentences(" \n\t\n") == []


def test_numbering() -> None:
    assert number_sentences(["A.", "B?"]) == "[1] A.\n[2] B?"


def test_join_keeps_original_separators() -> None:
    text = "One. Two.\nThree. Four."
    spans = sentence_spans(text)
    assert join_sentences(text, spans, [1, 2]) == "One. Two."
    assert join_sentences(text, spans, [2, 3]) == "Two.\nThree."
    assert join_sentences(text, spans, [1, 4]) == "One.\nFour."
    assert join_sentences(text, spans, [1, 3]) == "One.\nThree."
    assert join_sentences(text, spans, [3, 1, 3]) == "One.\nThree."
    assert join_sentences(text, spans, []) == ""


@given(st.text(alphabet=st.sampled_from("ab .!?\n\t,'\"3$é"), max_size=80))
def test_sentences_are_verbatim_ordered_and_cover_the_text(text: str) -> None:
    spans = sentence_spans(text)
    position = 0
    for start, end in spans:
        assert start >= position
        piece = text[start:end]
        assert piece
        assert piece == piece.strip()
        assert not text[position:start].strip()  # nothing but white space is skipped
        position = end
    assert not text[position:].strip()


def test_threads_splitting_at_once_each_get_their_own_sentences() -> None:
    """pysbd's segmenter keeps the text it splits on itself: one shared across threads mixed them."""
    texts = [
        f"Person {i} has {i} apples. The library in town {i} has {i + 7} chairs. How many apples are left?"
        for i in range(64)
    ]
    expected = [sentence_spans(text) for text in texts]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            assert list(pool.map(sentence_spans, texts)) == expected


def test_a_quotation_runs_from_the_first_quote_mark_of_its_line_to_the_last() -> None:
    text = 'Please comment.\nArgument: "I don\'t care if calling it "marriage" offends. I think not."'
    (quote,) = quoted_spans(text)
    assert text[quote.start : quote.end] == '"I don\'t care if calling it "marriage" offends. I think not."'
    spans = sentence_spans(text)
    assert [is_quoted(span, [quote]) for span in spans] == [False] + [True] * (len(spans) - 1)
    assert quoted_spans("He said \u201cno\u201d.") == [Span(8, 12)]
    assert quoted_spans('One "mark only.\nAnother " on its own line.') == []


@given(st.text(alphabet='ab ."\n', max_size=40))
def test_a_sentence_is_quoted_only_when_more_than_half_of_it_is_inside_quotes(text: str) -> None:
    quotes = quoted_spans(text)
    for span in sentence_spans(text):
        inside = sum(1 for i in range(span.start, span.end) if any(q.start <= i < q.end for q in quotes))
        assert is_quoted(span, quotes) == (2 * inside > span.end - span.start)
