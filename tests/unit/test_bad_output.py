"""Bad model output, injected through the frameworks' fake models, for every S2A call.

The matrix is `BAD`: each bad reply, against each variant that calls a model (with the
question inside the prompt, and given apart) and each selection adapter and granularity. A
cell says what must happen: `F`, the reply is not used (the original is kept, flagged, or
`S2AParseError` is raised with `fallback="raise"`); `U`, it is used; a tuple, it is used and
these sentence (or document) numbers are kept. The matrix found three defects (an unseparated
rewrite that lost the question, a list in prose or in a cut-off object taken for the answer);
they are fixed, and their cells are ordinary ones.

Extractive never asks the model for the question: it is found from the text (here sentence 4,
the only one ending with "?"), never shown, and always kept; a "question" key in a reply is
ignored. With the question last, the shown numbers 1-3 are the prompt's own.

Whatever the reply: a given question comes back verbatim, a question inside the prompt is
either found or the prompt is kept whole, and extractive and selection output is made of
input sentences only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from llama_index.core.schema import NodeWithScore, TextNode

from langchain_s2a import S2ADocumentCompressor, S2ARunnable
from llamaindex_s2a import S2ANodePostprocessor
from s2a import FallbackPolicy, S2AParseError, S2AResult, VariantName, split_sentences
from s2a.selection import Granularity
from tests.fake_models import ScriptedLLM, selection_ends
from tests.ledger import LOST, question_kept, record

QUESTION = "How many apples does Mary have if she buys 2 more?"
CONTEXT = "Mary has 3 apples. Her brother is 12 years old. I think the answer is 7."
PROMPT = f"{CONTEXT} {QUESTION}"
MODES = ("in_prompt", "given")
"""The question inside the prompt (the paper's setting), or given apart from the context."""
INPUT: dict[str, Any] = {"in_prompt": PROMPT, "given": {"context": CONTEXT, "question": QUESTION}}
ORIGINAL_CONTEXT = {"in_prompt": PROMPT, "given": CONTEXT}
ORIGINAL_PROMPT = {"in_prompt": PROMPT, "given": f"{CONTEXT}\n\nQuestion: {QUESTION}"}

QUERY = "What is the capital of France?"
DOCS = [
    "Paris is the capital of France.",
    "I am sure Lyon is the capital.",
    "Bananas are yellow.",
    "Paris is on the Seine. It has 2 million people.",
]
"""Numbers 1-3 are the same documents at both granularities; 4 is the last document's first sentence."""

Cell = str | tuple[int, ...]


@dataclass(frozen=True)
class Bad:
    """A bad reply and what each column must do with it: (question inside the prompt, given)."""

    raw: str
    rewrite: tuple[Cell, Cell]
    """`separated` and `keep_original` (the same parser)."""
    unseparated: tuple[Cell, Cell]
    extractive: tuple[Cell, Cell]
    selection: Cell
    """Both adapters, both granularities (the query is always given)."""


FF = ("F", "F")
UU = ("U", "U")
NO_QUESTION = ("F", "U")
"""Unseparated: a rewrite that asks nothing, for a prompt that asked, is not used."""
BAD: dict[str, Bad] = {
    "empty": Bad("", FF, FF, FF, "F"),
    "whitespace": Bad(" \n\t  \n", FF, FF, FF, "F"),
    "truncated_json": Bad('{"question": [4], "keep": [1, ', FF, NO_QUESTION, FF, "F"),
    "truncated_rewrite": Bad("Context: Mary has 3 apples. Her bro", ("F", "U"), NO_QUESTION, FF, "F"),
    "answer_label": Bad("Answer: Mary will have 5 apples.", FF, NO_QUESTION, FF, "F"),
    "lowercase_labels": Bad(
        "context: mary has 3 apples.\nquestion: how many apples does mary have if she buys 2 more?",
        UU,
        UU,
        FF,
        "F",
    ),
    "german_labels": Bad(
        "Kontext: Maria hat 3 Äpfel.\nFrage: Wie viele Äpfel hat Maria, wenn sie 2 kauft?", FF, UU, FF, "F"
    ),
    "prose": Bad("I would keep the first sentence and drop the opinion.", FF, NO_QUESTION, FF, "F"),
    "prose_then_json": Bad(
        'Sentence [3] is an opinion, so: {"question": [4], "keep": [1]}',
        FF,
        NO_QUESTION,
        ((1, 4), (1,)),
        (1,),
    ),
    "json_zero": Bad('{"question": [0], "keep": [0]}', FF, NO_QUESTION, ((4,), ()), ()),
    "json_negative": Bad('{"question": [-4], "keep": [-1, 1]}', FF, NO_QUESTION, ((1, 4), (1,)), (1,)),
    "json_beyond_count": Bad('{"question": [99], "keep": [1, 42]}', FF, NO_QUESTION, ((1, 4), (1,)), (1,)),
    # 4 is the question's place in the prompt, but only 3 sentences are shown: it names none of them.
    "json_beyond_the_shown": Bad('{"keep": [4]}', FF, NO_QUESTION, ((4,), ()), (4,)),
    "json_duplicates": Bad(
        '{"question": [4, 4], "keep": [1, 1, 2, 1]}', FF, NO_QUESTION, ((1, 2, 4), (1, 2)), (1, 2)
    ),
    "json_fraction": Bad('{"question": [4], "keep": [1.5]}', FF, NO_QUESTION, FF, "F"),
    "json_whole_floats": Bad('{"question": [4.0], "keep": [1.0]}', FF, NO_QUESTION, ((1, 4), (1,)), (1,)),
    "json_digit_strings": Bad('{"question": ["4"], "keep": ["2"]}', FF, NO_QUESTION, ((2, 4), (2,)), (2,)),
    "json_booleans": Bad('{"question": [4], "keep": [true]}', FF, NO_QUESTION, FF, "F"),
    "json_nested": Bad('{"question": [[4]], "keep": [{"n": 1}]}', FF, NO_QUESTION, FF, "F"),
    "json_nulls": Bad('{"question": null, "keep": null}', FF, NO_QUESTION, FF, "F"),
    "json_wrong_key": Bad('{"answer": 5}', FF, NO_QUESTION, FF, "F"),
    "json_empty_question": Bad(
        '{"question": [], "keep": [1, 2, 3]}', FF, NO_QUESTION, ((1, 2, 3, 4), (1, 2, 3)), (1, 2, 3)
    ),
    # The model cannot make the opinion the question: the key is ignored, and sentence 4 kept.
    "json_question_points_at_the_opinion": Bad(
        '{"question": [3], "keep": [1]}', FF, NO_QUESTION, ((1, 4), (1,)), (1,)
    ),
    "json_bare_list": Bad("[1, 3]", FF, NO_QUESTION, ((1, 3, 4), (1, 3)), (1, 3)),
    "question_missing": Bad("Context: Mary has 3 apples.", ("F", "U"), NO_QUESTION, FF, "F"),
    "only_the_question": Bad(QUESTION, FF, UU, FF, "F"),
    "only_the_question_labelled": Bad(f"Question: {QUESTION}", UU, UU, FF, "F"),
    "much_longer_rewrite": Bad(
        "Context: " + "Mary has 3 apples and a long story follows. " * 400 + f"\nQuestion: {QUESTION}",
        UU,
        UU,
        FF,
        "F",
    ),
    "much_longer_json": Bad(
        '{"question": [4], "keep": [' + ", ".join(["1", "2", "3"] * 2000) + "]}",
        FF,
        NO_QUESTION,
        ((1, 2, 3, 4), (1, 2, 3)),
        (1, 2, 3),
    ),
}

COLUMNS: dict[VariantName, str] = {
    "separated": "rewrite",
    "keep_original": "rewrite",
    "unseparated": "unseparated",
    "extractive": "extractive",
}


def _param(cell: Cell, *values: str, id: str) -> Any:  # noqa: A002 - pytest's name
    return pytest.param(*values, cell, id=id)


VARIANT_MATRIX = [
    _param(getattr(bad, column)[m], variant, mode, name, id=f"{variant}-{mode}-{name}")
    for name, bad in BAD.items()
    for variant, column in COLUMNS.items()
    for m, mode in enumerate(MODES)
]
SELECTION_MATRIX = [
    _param(bad.selection, adapter, granularity, name, id=f"{adapter}-{granularity}-{name}")
    for name, bad in BAD.items()
    for adapter in ("compressor", "postprocessor")
    for granularity in ("document", "sentence")
]


def invoke(variant: VariantName, mode: str, raw: str, fallback: FallbackPolicy = "original") -> S2AResult:
    llm = FakeListChatModel(responses=[raw])
    return S2ARunnable(llm=llm, variant=variant, fallback=fallback).invoke(INPUT[mode])


def assert_question_kept(result: S2AResult, mode: str) -> None:
    if mode == "given":
        question_kept(result, QUESTION)
        assert result.question == QUESTION
    elif result.fallback is not None:
        assert result.prompt == PROMPT
        question_kept(result, QUESTION)
    else:  # the question the model found (maybe reworded), which the answer step is asked
        record("questions checked")
        if not result.question.strip() or result.question not in result.prompt:
            record(LOST)
            msg = f"the question was lost: prompt {result.prompt!r}"
            raise AssertionError(msg)


def assert_extractive_verbatim(result: S2AResult, mode: str) -> None:
    """The context (and a found question) are input sentences; with `kept`, exactly those.

    And the answer prompt is the user's text with the other sentences deleted in place: with the
    question inside, the kept sentences in order (the prompt is one line); with it given, the
    kept context and then the question.
    """
    source = split_sentences(ORIGINAL_CONTEXT[mode])
    shown = split_sentences(result.context)
    if mode == "in_prompt" and result.fallback is None:
        shown += split_sentences(result.question)
    assert all(sentence in source for sentence in shown)
    if result.kept is not None:
        assert set(shown) == {source[n - 1] for n in result.kept}
        kept = " ".join(source[n - 1] for n in result.kept)
        if mode == "in_prompt":
            assert (result.question, result.kept[-1], result.prompt) == (QUESTION, 4, kept)
        else:
            assert result.context == kept
            assert result.prompt == (f"{kept}\n\nQuestion: {QUESTION}" if kept else QUESTION)


@pytest.mark.parametrize(("variant", "mode", "name", "expect"), VARIANT_MATRIX)
def test_bad_output_through_s2a_runnable(variant: VariantName, mode: str, name: str, expect: Cell) -> None:
    raw = BAD[name].raw
    record("bad outputs tried")
    result = invoke(variant, mode, raw)
    assert result.raw == raw
    assert_question_kept(result, mode)
    if expect == "F":
        assert isinstance(result.fallback, str)
        assert result.fallback.strip()
        assert (result.context, result.prompt, result.kept) == (
            ORIGINAL_CONTEXT[mode],
            ORIGINAL_PROMPT[mode],
            None,
        )
    else:
        assert result.fallback is None
        if isinstance(expect, tuple):
            assert result.kept == list(expect)
    if variant == "extractive":
        assert_extractive_verbatim(result, mode)

    if expect == "F":
        with pytest.raises(S2AParseError) as info:
            invoke(variant, mode, raw, fallback="raise")
        assert (info.value.raw, info.value.reason) == (raw, result.fallback)
    else:
        assert invoke(variant, mode, raw, fallback="raise") == result


def select(
    adapter: str, granularity: Granularity, raw: str, fallback: FallbackPolicy = "original"
) -> tuple[list[tuple[int, str]], str | None]:
    """(document index, kept text) for each kept document, and the fallback reason."""
    if adapter == "compressor":
        compressor = S2ADocumentCompressor(
            mode="keep_list",
            llm=FakeListChatModel(responses=[raw]),
            granularity=granularity,
            fallback=fallback,
        )
        documents = [Document(text, metadata={"n": i}) for i, text in enumerate(DOCS)]
        reason = compressor.select(documents, QUERY).fallback
        kept = compressor.compress_documents(documents, QUERY)
        return [(d.metadata["n"], d.page_content) for d in kept], reason
    postprocessor = S2ANodePostprocessor(
        mode="keep_list", llm=ScriptedLLM(lambda _prompt: raw), granularity=granularity, fallback=fallback
    )
    nodes = [NodeWithScore(node=TextNode(text=text, id_=str(i)), score=1.0) for i, text in enumerate(DOCS)]
    with selection_ends() as ends:
        kept_nodes = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    (end,) = ends
    return [(int(n.node.node_id), n.node.get_content()) for n in kept_nodes], end.fallback


def assert_selection_verbatim(kept: list[tuple[int, str]]) -> None:
    indices = [index for index, _ in kept]
    assert indices == sorted(set(indices))
    for index, text in kept:
        assert text.strip()
        assert all(sentence in split_sentences(DOCS[index]) for sentence in split_sentences(text))


@pytest.mark.parametrize(("adapter", "granularity", "name", "expect"), SELECTION_MATRIX)
def test_bad_output_through_selection(
    adapter: str, granularity: Granularity, name: str, expect: Cell
) -> None:
    raw = BAD[name].raw
    record("bad outputs tried")
    kept, reason = select(adapter, granularity, raw)
    assert_selection_verbatim(kept)
    if expect == "F":
        assert isinstance(reason, str)
        assert reason.strip()
        assert kept == list(enumerate(DOCS))  # every document, whole
        with pytest.raises(S2AParseError) as info:
            select(adapter, granularity, raw, fallback="raise")
        assert (info.value.raw, info.value.reason) == (raw, reason)
    else:
        assert reason is None
        assert [index + 1 for index, _ in kept] == list(expect)
        assert select(adapter, granularity, raw, fallback="raise") == (kept, None)


GOOD_REPLY: dict[VariantName, tuple[str, str]] = {
    "separated": (f"Context: Mary has 3 apples.\nQuestion: {QUESTION}", "Context: Mary has 3 apples."),
    "keep_original": (f"Context: Mary has 3 apples.\nQuestion: {QUESTION}", "Context: Mary has 3 apples."),
    "unseparated": (f"Mary has 3 apples.\n{QUESTION}", "Mary has 3 apples."),
    "extractive": ('{"keep": [1]}', '{"keep": [1]}'),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", list(GOOD_REPLY))
def test_a_reply_cut_off_at_the_token_limit_is_not_used(variant: VariantName, mode: str) -> None:
    """A good reply whose message says `finish_reason: length`: the part cut off may be needed."""
    reply = GOOD_REPLY[variant][MODES.index(mode)]

    def runnable(finish_reason: str, fallback: FallbackPolicy = "original") -> S2ARunnable:
        message = AIMessage(reply, response_metadata={"finish_reason": finish_reason})
        llm = GenericFakeChatModel(messages=iter([message]))
        return S2ARunnable(llm=llm, variant=variant, fallback=fallback)

    assert runnable("stop").invoke(INPUT[mode]).fallback is None  # the same reply, complete, is used
    cut = runnable("length").invoke(INPUT[mode])
    assert cut.fallback is not None
    assert "cut off at the token limit" in cut.fallback
    assert (cut.context, cut.prompt, cut.raw) == (ORIGINAL_CONTEXT[mode], ORIGINAL_PROMPT[mode], reply)
    assert_question_kept(cut, mode)
    with pytest.raises(S2AParseError, match="cut off") as info:
        runnable("length", fallback="raise").invoke(INPUT[mode])
    assert info.value.raw == reply


# The property: for any reply at all, extractive and selection output is input text only.

_SCALARS = st.one_of(
    st.integers(min_value=-3, max_value=9),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.sampled_from(["keep", "question", "Keep", "QUESTION", "other"]), inner, max_size=3
        ),
    ),
    max_leaves=12,
)
REPLIES = st.one_of(
    st.text(),
    st.tuples(st.text(max_size=20), _JSON.map(json.dumps), st.text(max_size=20)).map("".join),
)


@settings(max_examples=150, deadline=None)
@given(raw=REPLIES, mode=st.sampled_from(MODES))
def test_any_reply_extractive_returns_only_input_sentences(raw: str, mode: str) -> None:
    record("bad outputs tried")
    result = invoke("extractive", mode, raw)
    assert_question_kept(result, mode)
    assert_extractive_verbatim(result, mode)
    if result.fallback is None and mode == "in_prompt":
        assert all(sentence in split_sentences(PROMPT) for sentence in split_sentences(result.question))


@settings(max_examples=150, deadline=None)
@given(
    raw=REPLIES,
    adapter=st.sampled_from(["compressor", "postprocessor"]),
    granularity=st.sampled_from(["document", "sentence"]),
)
def test_any_reply_selection_returns_only_input_text(
    raw: str, adapter: str, granularity: Granularity
) -> None:
    record("bad outputs tried")
    kept, reason = select(adapter, granularity, raw)
    assert_selection_verbatim(kept)
    if reason is not None:
        assert kept == list(enumerate(DOCS))
    if granularity == "document":
        assert all(text == DOCS[index] for index, text in kept)


def test_the_documents_split_as_the_matrix_assumes() -> None:
    """Numbers 1-3 name the same documents at both granularities (see `DOCS`)."""
    assert [len(split_sentences(d)) for d in DOCS] == [1, 1, 1, 2]
    assert split_sentences(PROMPT) == [*split_sentences(CONTEXT), QUESTION]
