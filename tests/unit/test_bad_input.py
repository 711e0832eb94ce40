"""Bad and large input, through `S2ARunnable`, the core (`S2AInput`, `prepare`, `finish`) and selection.

Empty and whitespace contexts, a prompt that is only a question or has none, non-English
scripts, one enormous sentence, control characters, thousands of sentences, wrong types. The
tests pin what happens: no model call when there is nothing to filter, text reaching the model
and coming back verbatim, and a TypeError or ValueError that names the field at fault. The
defects this file found (a blank given question, a word cut to fit rejoined with spaces, unclear
errors for mixed key types, unconvertible messages, bytes and wrong arguments to the core) are
fixed; their tests are ordinary ones.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from langchain_s2a import S2ADocumentCompressor, S2ARunnable
from llamaindex_s2a import S2ANodePostprocessor
from s2a import (
    DEFAULT_PROMPTS,
    VARIANTS,
    S2AConfig,
    S2AInput,
    VariantName,
    finish,
    prepare,
    split_sentences,
)
from s2a._windows import approx_tokens
from s2a.selection import Granularity
from tests.fake_models import PromptRecorder, ScriptedLLM, sentence_block, stated_question, without_cost
from tests.ledger import question_kept, record

QUESTION = "How many apples does Mary have?"


def runnable(*replies: str, **kwargs: Any) -> tuple[S2ARunnable, PromptRecorder]:
    """An S2ARunnable over FakeListChatModel, and a recorder of the prompts its calls send."""
    recorder = PromptRecorder()
    llm = FakeListChatModel(responses=list(replies) or ["unused"], callbacks=[recorder])
    return S2ARunnable(llm=llm, **{"variant": "separated", **kwargs}), recorder


def is_subsequence(text: str, of: str) -> bool:
    """Whether every character of `text` is in `of`, in order: deleting from `of` can give `text`."""
    rest = iter(of)
    return all(char in rest for char in text)


# Nothing to filter: no call is made, and the question goes through.


@pytest.mark.parametrize("context", ["", "   ", "\n\t\r\n", "\u2028\u3000\xa0"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_an_empty_context_with_a_question_makes_no_call(variant: VariantName, context: str) -> None:
    record("bad inputs tried")
    inp = S2AInput(context=context, question=QUESTION)
    request = prepare(inp, S2AConfig(variant=variant))
    assert not request.needs_llm
    assert inp.original_prompt == QUESTION  # no empty "context" before the question
    result = finish(request)
    assert (result.question, result.fallback, result.raw) == (QUESTION, None, None)
    assert result.kept is None or (
        variant in {"extractive", "scored"} and result.kept == []
    )  # no sentence to number
    assert not result.context.strip()
    question_kept(result, QUESTION)
    assert result.prompt == result.prompt.strip()
    expected = {
        "separated": DEFAULT_PROMPTS.answer_separated.format(context="", question=QUESTION).strip(),
        "extractive": QUESTION,  # nothing dropped: the input's own prompt (no answer_frame)
        "scored": QUESTION,
        "unseparated": f"Question: {QUESTION}",
        "instructed": DEFAULT_PROMPTS.answer_instructed.format(original=QUESTION).strip(),
    }
    if variant in expected:
        assert result.prompt == expected[variant]
    else:  # keep_original: the original is the question alone
        head = DEFAULT_PROMPTS.answer_keep_original.split("{original}", 1)[0]
        assert result.prompt.startswith(f"{head}{QUESTION}\n")
        assert result.prompt.endswith(f"Question: {QUESTION}")

    s2a, recorder = runnable(variant=variant)
    assert without_cost(s2a.invoke({"context": context, "question": QUESTION})) == result
    only_question: Any = {"question": QUESTION}  # no "context" key at all
    assert s2a.invoke(only_question).question == QUESTION
    assert recorder.prompts == []


def test_a_prompt_that_is_only_a_question() -> None:
    record("bad inputs tried", 2)
    s2a, recorder = runnable(f"Context: none\nQuestion: {QUESTION}")
    result = s2a.invoke(QUESTION)
    assert (result.context, result.question, result.fallback) == ("", QUESTION, None)
    assert recorder.prompts[0].endswith(f"Text by the user:\n{QUESTION}")

    # Extractive: the question sentence is never shown, so there is nothing to decide and no call.
    s2a, recorder = runnable('{"keep": []}', variant="extractive")
    result = s2a.invoke(QUESTION)
    assert recorder.prompts == []
    assert (result.context, result.question, result.kept, result.fallback, result.raw) == (
        "",
        QUESTION,
        [1],
        None,
        None,
    )
    assert result.prompt == QUESTION
    two = f"{QUESTION} How many pears does Tom have?"  # the first and the last question: both kept
    s2a, recorder = runnable('{"keep": []}', variant="extractive")
    assert s2a.invoke(two).prompt == two
    assert recorder.prompts == []
    three = f"{QUESTION} Is it 7? How many pears does Tom have?"  # one between them is decided
    s2a, recorder = runnable('{"keep": []}', variant="extractive")
    assert s2a.invoke(three).prompt == two
    assert sentence_block(recorder.prompts[0]) == ["[1] Is it 7?"]


@pytest.mark.parametrize(
    ("variant", "reply", "reason"),
    [
        ("separated", "Context: Mary has 3 apples.", "the rewrite has no question"),
        ("keep_original", "Context: Mary has 3 apples.", "the rewrite has no question"),
    ],
)
def test_a_prompt_with_no_question_is_kept_flagged(variant: VariantName, reply: str, reason: str) -> None:
    record("bad inputs tried")
    prompt = "Mary has 3 apples. Tom likes cars."
    s2a, _ = runnable(reply, variant=variant)
    result = s2a.invoke(prompt)
    assert (result.fallback, result.prompt, result.context) == (reason, prompt, prompt)


@pytest.mark.parametrize(
    ("reply", "kept", "prompt"), [('{"keep": [1]}', [1, 2], None), ('{"keep": []}', [2], "")]
)
def test_a_prompt_with_no_question_has_its_last_sentence_as_the_request(
    reply: str, kept: list[int], prompt: str | None
) -> None:
    """Extractive: with no question mark and no opening request, the last sentence is what is asked."""
    record("bad inputs tried")
    text = "Mary has 3 apples. Tom likes cars."
    s2a, recorder = runnable(reply, variant="extractive")
    result = s2a.invoke(text)
    assert stated_question(recorder.prompts[0]) == "Tom likes cars."
    assert sentence_block(recorder.prompts[0]) == ["[1] Mary has 3 apples."]
    assert (result.fallback, result.question, result.kept) == (None, "Tom likes cars.", kept)
    assert result.prompt == (text if prompt is None else "Tom likes cars.")


@pytest.mark.parametrize(
    "value",
    [
        {"context": f"Mary has 3 apples. {QUESTION}", "question": ""},
        {"context": f"Mary has 3 apples. {QUESTION}", "question": "   "},
        {"messages": [("human", f"Mary has 3 apples. {QUESTION}"), ("human", " ")]},
    ],
)
def test_a_blank_given_question_is_rejected_or_ignored(value: Any) -> None:
    s2a, _ = runnable(f"Context: Mary has 3 apples.\nQuestion: {QUESTION}")
    try:
        result = s2a.invoke(value)
    except ValueError as error:
        assert "question" in str(error)
    else:
        assert result.question.strip()


# Scripts other than Latin: the sentences reach the model, and come back, verbatim.

SCRIPTS = {
    "chinese": ["玛丽有3个苹果。", "她弟弟12岁。", "我觉得答案是7。", "玛丽有几个苹果？"],  # noqa: RUF001
    "arabic": ["لدى ماري ثلاث تفاحات.", "أظن أن الجواب سبعة.", "كم تفاحة لدى ماري؟"],
    "russian": ["У Марии 3 яблока.", "Я думаю, ответ 7.", "Сколько яблок у Марии?"],  # noqa: RUF001
    "mixed_and_emoji": ["Mary 🍎 has 3 apples 👩\u200d👩\u200d👧.", "Я думаю 7.", "她有几个苹果？"],  # noqa: RUF001
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_non_english_text_is_numbered_and_kept_verbatim(name: str) -> None:
    record("bad inputs tried", 2)
    sentences = SCRIPTS[name]
    separator = "" if name == "chinese" else " "
    prompt = separator.join(sentences)
    last = len(sentences)
    s2a, recorder = runnable('{"keep": [1]}', variant="extractive")
    result = s2a.invoke(prompt)
    # The question, stated above the numbers; only the other sentences are numbered.
    assert stated_question(recorder.prompts[0]) == sentences[-1]
    shown = sentences[:-1]
    assert sentence_block(recorder.prompts[0]) == [f"[{i}] {s}" for i, s in enumerate(shown, start=1)]
    assert (result.context, result.question, result.kept, result.fallback) == (
        sentences[0],
        sentences[-1],
        [1, last],
        None,
    )
    assert result.prompt == separator.join([sentences[0], sentences[-1]])  # deleted in place

    s2a, recorder = runnable(f"Context: {sentences[0]}\nQuestion: {sentences[1]}")
    context = separator.join(sentences[:-1])
    result = s2a.invoke({"context": context, "question": sentences[-1]})
    assert recorder.prompts[0].endswith(f"{context}\n\nQuestion: {sentences[-1]}")
    assert (result.context, result.question) == (sentences[0], sentences[-1])
    question_kept(result, sentences[-1])


# One enormous sentence, and thousands of short ones.

HUGE = "word " * 40_000  # 200,000 characters, no full stop
LONG = "word " * 12_000  # 60,000: cutting to fit a window counts tokens per word, so keep it shorter


def test_one_enormous_sentence_in_one_call() -> None:
    record("bad inputs tried")
    s2a, recorder = runnable('{"keep": [1]}', variant="extractive")
    result = s2a.invoke({"context": HUGE, "question": QUESTION})
    (prompt,) = recorder.prompts
    assert sentence_block(prompt) == [f"[1] {HUGE.strip()}"]
    # Nothing dropped: the context comes back as given, byte for byte, trailing space and all.
    assert (result.context, result.question, result.kept, result.parts) == (HUGE, QUESTION, [1], 1)
    assert result.prompt == S2AInput(context=HUGE, question=QUESTION).original_prompt


def test_one_enormous_sentence_is_cut_at_words_to_fit_a_window() -> None:
    record("bad inputs tried")
    s2a, recorder = runnable('{"keep": [1]}', variant="extractive", window_tokens=1000)
    result = s2a.invoke({"context": LONG, "question": QUESTION})
    assert result.parts == len(recorder.prompts) > 1
    assert all(approx_tokens(DEFAULT_PROMPTS.system) + approx_tokens(p) <= 1000 for p in recorder.prompts)
    assert (result.context, result.question, result.fallback, result.kept) == (LONG, QUESTION, None, [1])
    assert result.prompt == S2AInput(context=LONG, question=QUESTION).original_prompt


def test_one_enormous_word_cut_to_fit_a_window_comes_back_verbatim() -> None:
    word = "a" * 50_000
    s2a, recorder = runnable('{"keep": [1]}', variant="extractive", window_tokens=1000)
    result = s2a.invoke({"context": word, "question": QUESTION})
    assert len(recorder.prompts) > 1
    assert result.context == word


@pytest.mark.parametrize(("separator", "joined"), [("\n", "\n"), (" ", " ")])
def test_thousands_of_short_sentences(separator: str, joined: str) -> None:
    record("bad inputs tried")
    count = 2000 if separator == "\n" else 1000  # one line: the segmenter is quadratic in sentences
    facts = [f"Fact {i} is true." for i in range(count)]
    s2a, recorder = runnable(f'{{"keep": [1, {count}, {count + 1}]}}', variant="extractive")
    result = s2a.invoke({"context": separator.join(facts), "question": QUESTION})
    lines = sentence_block(recorder.prompts[0])
    assert lines == [f"[{i}] {fact}" for i, fact in enumerate(facts, start=1)]
    assert (result.context, result.kept) == (f"Fact 0 is true.{joined}Fact {count - 1} is true.", [1, count])
    request = prepare(
        S2AInput(context=separator.join(facts), question=QUESTION), S2AConfig(variant="extractive")
    )
    assert request.json_schema is not None
    assert request.json_schema["properties"]["keep"]["maxItems"] == count


# Control characters and line-break look-alikes.

CONTROL = (
    "Mary has 3 apples.\x00 Her brother\x1b[31m is 12 years old.\r I think it is 7.\u2028 "
    "Zero\u200bwidth\ufeff here. How many\x00 apples?"
)


def test_control_characters_reach_the_model_and_come_back_verbatim() -> None:
    record("bad inputs tried", 2)
    sentences = split_sentences(CONTROL)
    assert sentences == [
        "Mary has 3 apples.",
        "\x00 Her brother\x1b[31m is 12 years old.",
        "I think it is 7.",
        "Zero\u200bwidth\ufeff here.",
        "How many\x00 apples?",
    ]
    s2a, recorder = runnable('{"keep": [2, 4]}', variant="extractive")
    result = s2a.invoke(CONTROL)
    assert stated_question(recorder.prompts[0]) == sentences[4]
    assert sentence_block(recorder.prompts[0]) == [f"[{i}] {s}" for i, s in enumerate(sentences[:4], start=1)]
    assert (result.question, result.kept) == (sentences[4], [2, 4, 5])
    assert split_sentences(result.context) == [sentences[1], sentences[3]]
    assert split_sentences(result.prompt) == [sentences[1], sentences[3], sentences[4]]
    # Deleted in place: every character left is the input's, in order; the dropped ones are gone.
    assert is_subsequence(result.prompt, CONTROL)
    assert sentences[0] not in result.prompt
    assert sentences[2] not in result.prompt

    s2a, recorder = runnable("Context: Mary has 3 apples.\nQuestion: ignored?")
    result = s2a.invoke({"context": CONTROL, "question": "How\x00 many\u2028 apples\x1b?"})
    assert recorder.prompts[0].endswith(f"{CONTROL}\n\nQuestion: How\x00 many\u2028 apples\x1b?")
    assert result.question == "How\x00 many\u2028 apples\x1b?"


def test_windows_line_endings() -> None:
    record("bad inputs tried")
    prompt = f"Mary has 3 apples.\r\n{QUESTION}\r\n"
    s2a, recorder = runnable('{"keep": [1]}', '{"keep": []}', variant="extractive")
    result = s2a.invoke(prompt)
    assert stated_question(recorder.prompts[0]) == QUESTION
    assert sentence_block(recorder.prompts[0]) == ["[1] Mary has 3 apples."]
    assert (result.context.strip(), result.question, result.prompt) == (
        "Mary has 3 apples.",
        QUESTION,
        prompt,
    )
    dropped = s2a.invoke(prompt)
    assert (dropped.context, dropped.question, dropped.kept) == ("", QUESTION, [2])
    assert dropped.prompt == f"{QUESTION}\r\n"


# Wrong types: a TypeError or ValueError naming the field.


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (None, TypeError, "S2ARunnable input must be a str.*got NoneType"),
        (["Mary has 3 apples."], TypeError, "S2ARunnable input must be a str.*got list"),
        (b"Mary has 3 apples.", TypeError, "S2ARunnable input must be a str.*got bytes"),
        (3.5, TypeError, "S2ARunnable input must be a str.*got float"),
        ({"context": "Mary has 3 apples.", "question": 5}, TypeError, "'question' must be a str, got int"),
        (
            {"context": "Mary has 3 apples.", "question": None},
            TypeError,
            "'question' must be a str, got None",
        ),
        ({"context": None, "question": QUESTION}, TypeError, "'context' must be a str, got NoneType"),
        ({"context": b"Mary", "question": QUESTION}, TypeError, "'context' must be a str, got bytes"),
        ({"context": ["Mary"], "question": QUESTION}, TypeError, "'context' must be a str, got list"),
        ({"question": {"text": QUESTION}}, TypeError, "'question' must be a str, got dict"),
        ({"context": "Mary", "extra": 1, "more": 2}, ValueError, r"unknown input keys \['extra', 'more'\]"),
        ({1: "Mary"}, ValueError, r"unknown input keys \[1\]"),
        ({"messages": [("human", 5)]}, ValueError, "content"),
        ({"messages": []}, ValueError, "`messages` has no user message"),
        ({"messages": [("human", "")]}, ValueError, "last user message is blank"),
    ],
)
def test_wrong_input_types_name_the_field(value: Any, error: type[Exception], match: str) -> None:
    record("bad inputs tried")
    s2a, recorder = runnable()
    with pytest.raises(error, match=match):
        s2a.invoke(value)
    assert recorder.prompts == []


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(
            {1: "x", "extra": "y", "context": "Mary"},
            r"unknown input keys",
            id="mixed_key_types",
        ),
        pytest.param(
            {"messages": [None]},
            r"messages",
            id="unconvertible_message",
        ),
    ],
)
def test_wrong_input_gets_a_clear_error(value: Any, match: str) -> None:
    s2a, _ = runnable()
    with pytest.raises((TypeError, ValueError), match=match):
        s2a.invoke(value)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"context": 5}, "context"),
        ({"context": None}, "context"),
        ({"context": ["Mary"]}, "context"),
        ({"context": "Mary", "question": 3}, "question"),
        ({"context": "Mary", "question": ["Why?"]}, "question"),
        ({"context": "Mary", "qestion": "Why?"}, "qestion"),
        ({"context": b"\xff\xfe"}, "context"),
    ],
)
def test_core_input_of_the_wrong_type_names_the_field(fields: dict[str, Any], name: str) -> None:
    record("bad inputs tried")
    with pytest.raises(ValueError, match=name):  # pydantic's ValidationError is a ValueError
        S2AInput(**fields)


def test_core_input_rejects_bytes() -> None:
    error: Exception | None = None
    try:
        S2AInput(context=b"Mary has 3 apples.")  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        error = exc
    assert error is not None
    assert "context" in str(error)


_REQUEST = prepare(S2AInput(context=f"Mary has 3 apples. {QUESTION}"))


def _prepare_a_str() -> object:
    return prepare(f"Mary has 3 apples. {QUESTION}")  # type: ignore[arg-type]


def _prepare_with_a_variant_name() -> object:
    return prepare(S2AInput(context="Mary has 3 apples."), "extractive")  # type: ignore[arg-type]


def _finish_with_a_message() -> object:
    return finish(_REQUEST, AIMessage(f"Context: Mary has 3 apples.\nQuestion: {QUESTION}"))  # type: ignore[arg-type]


def _finish_with_a_number() -> object:
    return finish(_REQUEST, 5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(_prepare_a_str, "S2AInput", id="prepare_a_str"),
        pytest.param(_prepare_with_a_variant_name, "S2AConfig", id="prepare_a_variant_name"),
        pytest.param(_finish_with_a_message, "output", id="finish_an_AIMessage"),
        pytest.param(_finish_with_a_number, "output", id="finish_an_int"),
    ],
)
def test_core_functions_name_a_wrong_argument(call: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        call()


# Selection: empty documents, and queries of the wrong type.


async def test_documents_with_no_text_are_not_shown_and_not_returned() -> None:
    record("bad inputs tried", 3)
    recorder = PromptRecorder()
    llm = FakeListChatModel(responses=["unused"], callbacks=[recorder])
    compressor = S2ADocumentCompressor(mode="keep_list", llm=llm)
    assert compressor.compress_documents([Document(""), Document(" \n\t")], QUESTION) == []
    assert await compressor.acompress_documents([Document("")], QUESTION) == []
    assert await compressor.acompress_documents([], QUESTION) == []
    assert recorder.prompts == []

    given = [Document(""), Document("Mary has 3 apples."), Document("   ")]
    shown = PromptRecorder()
    kept = S2ADocumentCompressor(
        mode="keep_list", llm=FakeListChatModel(responses=['{"keep": [1]}'], callbacks=[shown])
    )
    assert list(kept.compress_documents(given, QUESTION)) == [given[1]]
    (prompt,) = shown.prompts
    assert "[1] Mary has 3 apples.\n\nReply" in prompt
    assert "[2]" not in prompt
    # On a fallback the documents shown are kept; the empty ones, never shown, are not.
    unusable = S2ADocumentCompressor(mode="keep_list", llm=FakeListChatModel(responses=["no idea"]))
    assert list(unusable.compress_documents(given, QUESTION)) == [given[1]]

    nodes = [NodeWithScore(node=TextNode(text=t)) for t in ("", "Mary has 3 apples.", " ")]
    llm_index = ScriptedLLM(lambda _prompt: '{"keep": [1]}')
    postprocessor = S2ANodePostprocessor(mode="keep_list", llm=llm_index)
    assert postprocessor.postprocess_nodes(nodes, query_str=QUESTION) == [nodes[1]]
    assert len(llm_index.prompts) == 1
    assert await postprocessor.apostprocess_nodes([], query_str=QUESTION) == []
    assert await postprocessor.apostprocess_nodes(nodes[::2], query_str=QUESTION) == []
    assert len(llm_index.prompts) == 1


@pytest.mark.parametrize(
    ("query", "error", "match"),
    [
        (5, TypeError, "query must be a str, got int"),
        (None, TypeError, "query must be a str, got NoneType"),
        (b"Why?", TypeError, "query must be a str, got bytes"),
        ("", ValueError, "query is empty"),
        (" \n", ValueError, "query is empty"),
    ],
)
def test_compressor_query_of_the_wrong_type(query: Any, error: type[Exception], match: str) -> None:
    record("bad inputs tried")
    compressor = S2ADocumentCompressor(mode="keep_list", llm=FakeListChatModel(responses=['{"keep": [1]}']))
    with pytest.raises(error, match=match):
        compressor.compress_documents([Document("Mary has 3 apples.")], query)


@pytest.mark.parametrize(
    ("query", "error", "match"),
    [
        (5, TypeError, "query must be a str, got int"),
        (["Why?"], TypeError, "query must be a str, got list"),
        ("  ", ValueError, "query is empty"),
    ],
)
def test_postprocessor_query_of_the_wrong_type(query: Any, error: type[Exception], match: str) -> None:
    record("bad inputs tried")
    llm = ScriptedLLM(lambda _prompt: '{"keep": [1]}')
    nodes = [NodeWithScore(node=TextNode(text="Mary has 3 apples."))]
    with pytest.raises(error, match=match):
        S2ANodePostprocessor(mode="keep_list", llm=llm).postprocess_nodes(
            nodes, query_bundle=QueryBundle(query_str=query)
        )
    assert llm.prompts == []


@pytest.mark.parametrize("granularity", ["document", "sentence"])
def test_a_document_larger_than_the_window_is_sent_whole(granularity: Granularity) -> None:
    record("bad inputs tried")
    recorder = PromptRecorder()
    llm = FakeListChatModel(responses=['{"keep": [1]}', '{"keep": []}'], callbacks=[recorder])
    given = [Document(LONG, id="long"), Document("Mary has 3 apples.", id="small")]
    compressor = S2ADocumentCompressor(mode="keep_list", llm=llm, window_tokens=2000, granularity=granularity)
    kept = compressor.compress_documents(given, QUESTION)
    assert len(recorder.prompts) == 2  # the long one alone, uncut, then the small one
    assert f"[1] {LONG.strip()}\n" in recorder.prompts[0]
    assert "Mary has 3 apples." in recorder.prompts[1]
    assert [d.id for d in kept] == ["long"]
    assert kept[0].page_content.strip() == LONG.strip()
