"""The extractive variant: the question from the text, a keep list from the model, deletion in place.

`delete_sentences` is checked on small texts and as a property; the variant on the development
data (../shared/data), with a fake model that keeps every sentence it is shown, must give the
user's prompt back byte for byte; the numbers the model sees skip the question, which is stated
above them and always kept; a context split into parts sends every part at once.

Tests marked `xfail(strict=True)` pin library defects found while writing this file: each says
what is wrong, and fails loudly (XPASS) once the library is fixed, so the mark can go.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from langchain_s2a import S2ARunnable, tgi_chat_model
from s2a import DEFAULT_PROMPTS, NO_RETRY, Decoding, S2AConfig, S2AInput, S2ARequest, finish, prepare
from s2a._client import run_s2a
from s2a._sentences import Span, delete_sentences, sentence_spans
from s2a._steps import Reply, run_plan
from s2a._windows import plan_step, request_tokens
from s2a.tgi import inference_client
from tests.fake_models import keep_shown, sentence_block, stated_question, without_cost
from tests.fake_tgi import FakeTGI
from tests.ledger import question_kept, record

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
URL = "http://tgi.test:8080"
EXTRACTIVE = S2AConfig(variant="extractive")
FRAMED = S2AConfig(variant="extractive", answer_frame=True)
FRAME = "Answer the following question in an unbiased way"


@cache
def records(name: str) -> tuple[dict[str, Any], ...]:
    lines = (SHARED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def built(sentences: list[str], separators: list[str]) -> tuple[str, list[Span]]:
    """`sentences` joined by `separators` (one fewer), and where each sentence lies."""
    text, spans = "", []
    for index, sentence in enumerate(sentences):
        spans.append(Span(len(text), len(text) + len(sentence)))
        text += sentence + (separators[index] if index < len(separators) else "")
    return text, spans


def deleted(text: str, *dropped: int) -> str:
    """`delete_sentences` with the segmenter's own spans."""
    return delete_sentences(text, sentence_spans(text), dropped)


# delete_sentences: small texts.

LINE = "Mary has 3 apples. I think it is 7. She buys 2 more."
LINES = "Tom is 9.\nI think it is 7. Maybe 8.\nHow old is Tom?"
PARAGRAPHS = "Tom is 9.\n\nI think it is 7. Maybe 8.\n\nHow old is Tom?"


@pytest.mark.parametrize(
    "text", [LINE, LINES, PARAGRAPHS, "  Odd. Spacing.\t\n\n", "One.", "\r\nA.\r\nB?\r\n"]
)
def test_nothing_dropped_is_the_text_itself(text: str) -> None:
    assert delete_sentences(text, sentence_spans(text), []) is text
    assert delete_sentences(text, sentence_spans(text), iter(())) is text


@pytest.mark.parametrize(
    ("text", "dropped", "expected"),
    [
        pytest.param(LINE, (1,), "Mary has 3 apples. She buys 2 more.", id="line-middle"),
        pytest.param(LINE, (0,), "I think it is 7. She buys 2 more.", id="line-first"),
        pytest.param(LINE, (2,), "Mary has 3 apples. I think it is 7.", id="line-last"),
        pytest.param(LINE, (0, 2), "I think it is 7.", id="line-both-ends"),
        pytest.param(LINES, (1, 2), "Tom is 9.\nHow old is Tom?", id="lines-a-whole-line"),
        pytest.param(LINES, (0,), "I think it is 7. Maybe 8.\nHow old is Tom?", id="lines-the-first-line"),
        pytest.param(LINES, (3,), "Tom is 9.\nI think it is 7. Maybe 8.", id="lines-the-last-line"),
        pytest.param(LINES, (2,), "Tom is 9.\nI think it is 7.\nHow old is Tom?", id="lines-end-of-a-line"),
        pytest.param(PARAGRAPHS, (1, 2), "Tom is 9.\n\nHow old is Tom?", id="paragraphs-the-middle-one"),
        pytest.param(
            PARAGRAPHS, (0,), "I think it is 7. Maybe 8.\n\nHow old is Tom?", id="paragraphs-the-first"
        ),
        pytest.param(PARAGRAPHS, (3,), "Tom is 9.\n\nI think it is 7. Maybe 8.", id="paragraphs-the-last"),
        pytest.param(PARAGRAPHS, (1, 2, 3), "Tom is 9.", id="paragraphs-all-but-the-first"),
        pytest.param(LINE, (0, 1, 2), "", id="everything"),
        pytest.param(PARAGRAPHS, (3, 0, 2, 1), "", id="everything-in-any-order"),
        pytest.param(LINE, (1, 1, 1), "Mary has 3 apples. She buys 2 more.", id="a-repeated-index"),
        pytest.param("  Tom is 9. I think 7.\n", (1,), "  Tom is 9.\n", id="outer-white-space-stays"),
        pytest.param("  Tom is 9. I think 7.\n", (0,), "  I think 7.\n", id="outer-white-space-stays-2"),
    ],
)
def test_delete_sentences(text: str, dropped: tuple[int, ...], expected: str) -> None:
    result = deleted(text, *dropped)
    assert result == expected
    assert "\n\n\n" not in result
    assert "  " not in result.strip()


@pytest.mark.parametrize(
    ("sentences", "separators", "dropped", "expected"),
    [
        pytest.param(
            ["A.", "B.", "C.", "D."],
            [" ", " ", "\n"],
            (1, 2),
            "A.\nD.",
            # The first drop takes the blank after it, so the second, at the line's end, finds no
            # blank before it to take: the blank after "A." is left before the line break.
            id="two-drops-at-a-line-end-leave-a-blank-before-the-break",
        ),
        pytest.param(
            ["A.", "B.", "C."],
            ["\n", "\n\n"],
            (1,),
            "A.\n\nC.",
            # A line alone takes its own line break along, and the seam then keeps one break:
            # "C." moves up into "A."'s paragraph.
            id="the-last-line-of-a-paragraph-takes-the-paragraph-break",
        ),
        pytest.param(
            ["A.", "B.", "C?"],
            ["\r\n", "\r\n"],
            (1,),
            "A.\r\nC?",
            # "\r" is neither a blank nor a line break to _cut, so the line's "\r\n" stays.
            id="windows-line-endings-leave-an-empty-line",
        ),
        pytest.param(
            ["A.", "B.", "C?"],
            ["\xa0 ", "\xa0 "],
            (1,),
            "A.\xa0 C?",
            # Only " " and "\t" are blanks: the no-break space after the dropped sentence stays
            # (gsm_ic's gsm8k-test-0576 is written so).
            id="no-break-spaces-are-left-doubled",
        ),
    ],
)
def test_delete_sentences_seams(
    sentences: list[str], separators: list[str], dropped: tuple[int, ...], expected: str
) -> None:
    text, spans = built(sentences, separators)
    assert delete_sentences(text, spans, dropped) == expected


# delete_sentences: the property.

SENTENCES = st.lists(
    st.text(alphabet=st.sampled_from("abXY09.,!?'\"é中 "), min_size=1, max_size=10)
    .map(str.strip)
    .filter(bool),
    min_size=1,
    max_size=10,
)
SEPARATORS = (" ", "\n", "\n\n")
STRENGTH = {separator: rank for rank, separator in enumerate(SEPARATORS)}


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[str], list[str], set[int]]:
    sentences = draw(SENTENCES)
    separators = draw(
        st.lists(st.sampled_from(SEPARATORS), min_size=len(sentences) - 1, max_size=len(sentences) - 1)
    )
    dropped = draw(st.sets(st.integers(min_value=0, max_value=len(sentences) - 1)))
    return sentences, separators, dropped


@given(case=cases())
def test_deleting_any_sentences_leaves_exactly_the_others_verbatim_in_order(
    case: tuple[list[str], list[str], set[int]],
) -> None:
    sentences, separators, dropped = case
    text, spans = built(sentences, separators)
    result = delete_sentences(text, spans, dropped)
    if not dropped:
        assert result is text
    kept = [i for i in range(len(sentences)) if i not in dropped]
    if not kept:
        assert result == ""
    assert all(sentences[i] in result for i in kept)
    # The result is the kept sentences, in order, with only white space between them: a blank
    # or line breaks, no more of them than the input had between the two.
    position = 0
    for order, index in enumerate(kept):
        rest = result[position:]
        gap = rest[: len(rest) - len(rest.lstrip())]
        if order == 0:
            assert gap == ""
        else:
            between = separators[kept[order - 1] : index]
            assert gap
            assert set(gap) <= {" ", "\n"}
            assert gap.count(" ") <= 1
            assert gap.count("\n") <= max(separator.count("\n") for separator in between)
        position += len(gap)
        assert result.startswith(sentences[index], position)
        position += len(sentences[index])
    assert position == len(result)


@example(case=(["A.", "B.", "C.", "D."], [" ", " ", "\n"], {1, 2}))
@example(case=(["A.", "B.", "C."], ["\n", "\n\n"], {1}))
@given(case=cases())
def test_a_seam_keeps_the_strongest_break_the_dropped_sentences_had(
    case: tuple[list[str], list[str], set[int]],
) -> None:
    """Exactly: two kept sentences are joined by the strongest separator that lay between them."""
    sentences, separators, dropped = case
    text, spans = built(sentences, separators)
    kept = [i for i in range(len(sentences)) if i not in dropped]
    expected = sentences[kept[0]] if kept else ""
    for before, after in itertools.pairwise(kept):
        expected += max(separators[before:after], key=STRENGTH.__getitem__) + sentences[after]
    assert delete_sentences(text, spans, dropped) == expected


def test_removing_the_distractor_gives_the_original_gsm_problem() -> None:
    """The data's README: removing `distractor` (and one white space run) gives `original_question`."""
    misses = []
    for problem in records("gsm_ic"):
        spans = sentence_spans(problem["question"])
        sentences = [problem["question"][s.start : s.end] for s in spans]
        result = delete_sentences(problem["question"], spans, [sentences.index(problem["distractor"])])
        if result != problem["original_question"]:
            misses.append(f"{problem['id']}: {result!r}")
    assert len(misses) <= 0.02 * len(records("gsm_ic")), "\n".join(misses)


# The variant on clean input: a model that keeps everything gives the prompt back.


def keep_everything(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda body: keep_shown(body["messages"][-1]["content"])


def clean_prompts() -> list[str]:
    """Every plain trivia question and every GSM problem without its distractor."""
    trivia = [r["prompt"] for r in records("trivia_opinion") if r["opinion_type"] == "none"]
    return trivia + [r["original_question"] for r in records("gsm_ic")]


def test_a_clean_prompt_with_the_question_inside_comes_back_byte_for_byte(fake_tgi: FakeTGI) -> None:
    keep_everything(fake_tgi)
    s2a = S2ARunnable(llm=tgi_chat_model(URL), variant="extractive")
    client = inference_client(URL)
    prompts = clean_prompts()
    for prompt in prompts:
        record("clean prompts checked")
        calls = len(fake_tgi.requests)
        result = s2a.invoke(prompt)
        assert (result.prompt, result.fallback) == (prompt, None)
        assert result.kept == list(range(1, len(sentence_spans(prompt)) + 1))
        # A question alone has nothing to decide: no call. A problem is one call.
        assert len(fake_tgi.requests) - calls == (0 if result.context == "" else 1)
        assert run_s2a(client, S2AInput(context=prompt), EXTRACTIVE, Decoding()) == result
        framed = run_s2a(client, S2AInput(context=prompt), FRAMED, Decoding())
        assert framed.prompt == (
            DEFAULT_PROMPTS.answer_separated.format(context=result.context, question=result.question).strip()
        )
        assert FRAME in framed.prompt
        assert framed.prompt.endswith(f"Question: {result.question}")
        question_kept(result, result.question)
    asked = [body["messages"][-1]["content"] for path, body in fake_tgi.requests if "chat" in path]
    assert len(asked) == 3 * len(records("gsm_ic"))  # runnable, core, framed: trivia made none
    assert all(stated_question(prompt) for prompt in asked)


def test_a_clean_context_with_the_question_given_comes_back_byte_for_byte(fake_tgi: FakeTGI) -> None:
    keep_everything(fake_tgi)
    s2a = S2ARunnable(llm=tgi_chat_model(URL), variant="extractive")
    client = inference_client(URL)
    for problem in records("gsm_ic"):
        text = problem["original_question"]
        spans = sentence_spans(text)
        question = text[spans[-1].start : spans[-1].end]
        inp = S2AInput(context=text[: spans[-1].start].rstrip(), question=question)
        result = s2a.invoke({"context": inp.context, "question": question})
        assert (result.prompt, result.context, result.question) == (
            inp.original_prompt,
            inp.context,
            question,
        )
        assert result.kept == list(range(1, len(spans)))
        framed = run_s2a(client, inp, FRAMED, Decoding())
        assert framed.prompt == DEFAULT_PROMPTS.answer_separated.format(
            context=inp.context, question=question
        )
        assert FRAME in framed.prompt
        question_kept(result, question)
    # The opinion prompts too, with the opinion as the given context.
    for trivia in records("trivia_opinion"):
        opinion = trivia["prompt"][len(trivia["question"]) :].strip()
        if opinion:
            inp = S2AInput(context=opinion, question=trivia["question"])
            result = s2a.invoke({"context": opinion, "question": trivia["question"]})
            assert (result.prompt, result.context) == (inp.original_prompt, opinion)


def test_an_opinion_kept_by_the_model_stays_where_the_user_put_it(fake_tgi: FakeTGI) -> None:
    """Every trivia and GSM-IC prompt: all kept, the prompt as given; the opinions dropped, the clean one."""
    s2a = S2ARunnable(llm=tgi_chat_model(URL), variant="extractive")
    keep_everything(fake_tgi)
    for trivia in records("trivia_opinion"):
        assert s2a.invoke(trivia["prompt"]).prompt == trivia["prompt"]
    for problem in records("gsm_ic"):
        assert s2a.invoke(problem["question"]).prompt == problem["question"]
    # The segmenter may cut an opinion in two ("I think the answer is ." "nl, but ..."): drop both.
    opinions = [r["prompt"][len(r["question"]) :] for r in records("trivia_opinion")]
    opinions = [opinion for opinion in opinions if opinion.strip()]
    fake_tgi.reply = lambda body: keep_shown(
        body["messages"][-1]["content"], lambda s: not any(s in opinion for opinion in opinions)
    )
    for trivia in records("trivia_opinion"):
        result = s2a.invoke(trivia["prompt"])
        assert (result.prompt, result.question, result.kept) == (trivia["question"], trivia["question"], [1])
    distractors = {problem["distractor"] for problem in records("gsm_ic")}
    fake_tgi.reply = lambda body: keep_shown(body["messages"][-1]["content"], lambda s: s not in distractors)
    misses = []
    for problem in records("gsm_ic"):
        result = s2a.invoke(problem["question"])
        assert result.fallback is None
        assert problem["distractor"] not in result.prompt
        if result.prompt != problem["original_question"]:
            misses.append(problem["id"])
    assert len(misses) <= 0.02 * len(records("gsm_ic")), misses  # see test_delete_sentences_seams


# The numbers the model sees: the question is stated, never numbered.


def test_an_opinion_phrased_as_a_question_is_shown_and_can_be_dropped() -> None:
    prompt = "What is the capital of Australia? Could it be Sydney? Which territory is it in?"
    request = prepare(S2AInput(context=prompt), EXTRACTIVE)
    user = request.messages[1]["content"]
    assert stated_question(user) == "What is the capital of Australia? Which territory is it in?"
    assert sentence_block(user) == ["[1] Could it be Sydney?"]
    assert request.json_schema is not None
    assert request.json_schema["properties"]["keep"]["items"]["enum"] == [1]
    dropped = finish(request, '{"keep": []}')
    assert (dropped.prompt, dropped.context, dropped.kept, dropped.fallback) == (
        "What is the capital of Australia? Which territory is it in?",
        "",
        [1, 3],
        None,
    )
    kept = finish(request, '{"keep": [1]}')
    assert (kept.prompt, kept.context, kept.kept) == (prompt, "Could it be Sydney?", [1, 2, 3])


def test_an_open_question_last_is_kept_as_a_question() -> None:
    """At the very end it may be the user's own question: S2A never drops a question."""
    prompt = "What is the capital of Australia? Which state is Sydney in?"
    request = prepare(S2AInput(context=prompt), EXTRACTIVE)
    assert not request.needs_llm
    result = finish(request)
    assert (result.prompt, result.question, result.kept) == (prompt, prompt, [1, 2])


def test_a_closed_follow_up_that_checks_a_candidate_is_judged() -> None:
    """ "Could it be Sydney?" after an open question leads the model: it is shown, and may go."""
    prompt = "What is the capital of Australia? Could it be Sydney?"
    request = prepare(S2AInput(context=prompt), EXTRACTIVE)
    assert request.question == "What is the capital of Australia?"
    result = finish(request, '{"keep": []}')
    assert (result.prompt, result.kept) == ("What is the capital of Australia?", [1])


PROMPT = "Mary has 3 apples. How many apples does Mary have? Round to a whole number. I think it is 7."
"""The question and a request after it (sentences 2 and 3) lie between the two sentences shown."""


@pytest.mark.parametrize(
    ("reply", "kept", "context", "prompt"),
    [
        ('{"keep": [1, 2]}', [1, 2, 3, 4], "Mary has 3 apples. I think it is 7.", PROMPT),
        (
            '{"keep": [1]}',
            [1, 2, 3],
            "Mary has 3 apples.",
            "Mary has 3 apples. How many apples does Mary have? Round to a whole number.",
        ),
        (
            '{"keep": [2]}',
            [2, 3, 4],
            "I think it is 7.",
            "How many apples does Mary have? Round to a whole number. I think it is 7.",
        ),
        ('{"keep": []}', [2, 3], "", "How many apples does Mary have? Round to a whole number."),
        ('{"question": [1, 4], "keep": [1]}', [1, 2, 3], "Mary has 3 apples.", None),
    ],
)
def test_number_k_is_the_kth_sentence_shown_and_kept_counts_the_whole_prompt(
    reply: str, kept: list[int], context: str, prompt: str | None
) -> None:
    request = prepare(S2AInput(context=PROMPT), EXTRACTIVE)
    user = request.messages[1]["content"]
    assert stated_question(user) == "How many apples does Mary have? Round to a whole number."
    assert sentence_block(user) == ["[1] Mary has 3 apples.", "[2] I think it is 7."]
    result = finish(request, reply)
    assert result.fallback is None
    assert (result.kept, result.context, result.question) == (
        kept,
        context,
        "How many apples does Mary have? Round to a whole number.",
    )
    if prompt is not None:
        assert result.prompt == prompt


@pytest.mark.parametrize(
    "reply",
    [
        '{"question": "Mary has 42 apples.", "keep": [1]}',
        '{"question": [[2]], "keep": [1]}',
        '{"question": [1.5], "keep": [1]}',
        '{"question": [true], "keep": [1]}',
    ],
)
def test_a_malformed_question_key_is_ignored(reply: str) -> None:
    result = finish(prepare(S2AInput(context=PROMPT), EXTRACTIVE), reply)
    assert (result.fallback, result.kept) == (None, [1, 2, 3])


# Windows: the question is known before the split, so every part goes at once.

PARAGRAPHS_OF_FACTS = [
    [
        ["Canberra was chosen as the capital in 1908.", "I think it is Sydney."],
        ["The city was planned by Walter Burley Griffin."],
    ],
    [
        ["Parliament House opened in 1988.", "It sits on Capital Hill."],
        ["I think it is Sydney."],
        ["It is large."],
    ],
    [["The High Court is in Canberra.", "I think it is Sydney.", "The lake is named after Griffin."]],
    [["Sydney is the largest city."], ["Melbourne was the seat of government until 1927."]],
    [["I think it is Sydney."], ["Canberra lies in the Australian Capital Territory."]],
]
QUESTION = "What is the capital of Australia?"
OPINION = "I think it is Sydney."


def written(paragraphs: list[list[list[str]]], keep: Callable[[str], bool] = lambda _sentence: True) -> str:
    """Sentences joined by a space, lines by a line break, paragraphs by a blank line: those `keep`."""
    lines = [[" ".join(s for s in line if keep(s)) for line in paragraph] for paragraph in paragraphs]
    return "\n\n".join(text for text in ("\n".join(line for line in p if line) for p in lines) if text)


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_split_prompt_sends_every_part_at_once_and_deletes_in_the_whole(where: str) -> None:
    question = [[[QUESTION]]]
    paragraphs = question + PARAGRAPHS_OF_FACTS if where == "first" else PARAGRAPHS_OF_FACTS + question
    text = written(paragraphs)
    plan = plan_step(S2AInput(context=text), EXTRACTIVE, window_tokens=300)
    assert len(plan.parts) > 2
    assert len(plan.first) == len(plan.parts)  # every part in the first round
    assert all(request_tokens(request) <= 300 for request in plan.first)
    # A part that holds nothing but the question has nothing to decide: it makes no call.
    assert all(request.needs_llm or (request.asks and not request.shown) for request in plan.first)
    prompts = [request.messages[1]["content"] for request in plan.first if request.needs_llm]
    assert len(prompts) >= len(plan.parts) - 1
    assert all(stated_question(prompt) == QUESTION for prompt in prompts)
    numbered = [line for prompt in prompts for line in sentence_block(prompt)]
    everything = [sentence for paragraph in PARAGRAPHS_OF_FACTS for line in paragraph for sentence in line]
    assert [line.split("] ", 1)[1] for line in numbered] == everything  # each once, never the question

    def drop_opinions(request: S2ARequest) -> Reply:
        return Reply(keep_shown(request.messages[1]["content"], lambda s: s != OPINION))

    first = [plan.read(r, drop_opinions(r) if r.needs_llm else None) for r in plan.first]
    assert plan.rest(first) == ()  # nothing waits for the question
    result = plan.merge(first, [])
    driven = run_plan(plan, drop_opinions, NO_RETRY)
    assert without_cost(driven) == result
    assert driven.cost is not None
    assert driven.cost.calls == sum(r.needs_llm for r in plan.first)
    assert (result.fallback, result.question, result.parts) == (None, QUESTION, len(plan.parts))
    assert result.prompt == written(paragraphs, lambda s: s != OPINION)
    assert result.context == written(PARAGRAPHS_OF_FACTS, lambda s: s != OPINION)
    question_kept(result, QUESTION)
    spans = sentence_spans(text)
    opinions = [i for i, span in enumerate(spans) if text[span.start : span.end] == OPINION]
    assert result.prompt == delete_sentences(text, spans, opinions)
    assert result.kept == [i + 1 for i in range(len(spans)) if i not in opinions]
    assert all(request.question == QUESTION for request in plan.first)
    assert sum(len(request.asks) for request in plan.first) == 1  # the part holding it keeps it unshown
