from __future__ import annotations

from dataclasses import replace

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2a import (
    VARIANTS,
    S2AConfig,
    S2AInput,
    S2AParseError,
    TokenUsage,
    VariantName,
    finish,
    history_input,
    prepare,
    split_sentences,
)

PROMPT = (
    "Mary has 3 apples. Her brother is 12 years old. I think the answer is 7, but I'm really not sure. "
    "How many apples does Mary have if she buys 2 more?"
)
QUESTION = "How many apples does Mary have if she buys 2 more?"
KNOWN = S2AInput(context="Mary has 3 apples. Her brother is 12. I think it is 7.", question=QUESTION)
CALLING: list[VariantName] = ["separated", "unseparated", "keep_original", "extractive"]


def config(variant: VariantName, **kwargs: object) -> S2AConfig:
    return S2AConfig.model_validate({"variant": variant, **kwargs})


def test_registry_lists_every_variant() -> None:
    assert set(VARIANTS) == {
        "separated",
        "unseparated",
        "keep_original",
        "instructed",
        "extractive",
        "scored",
    }
    assert all(v.description for v in VARIANTS.values())


def test_a_variant_that_fans_out_must_fold() -> None:
    scored = VARIANTS["scored"]
    with pytest.raises(ValueError, match="`calls` and `fold` go together"):
        replace(scored, fold=None)
    with pytest.raises(ValueError, match="`calls` and `fold` go together"):
        replace(scored, calls=None)


@pytest.mark.parametrize("variant", ["separated", "unseparated", "keep_original"])
def test_rewrite_prompts_carry_the_text(variant: VariantName) -> None:
    request = prepare(S2AInput(context=PROMPT), config(variant))
    assert [m["role"] for m in request.messages] == ["system", "user"]
    assert request.messages[1]["content"].endswith(PROMPT)
    assert request.json_schema is None


def test_rewrite_prompt_shows_a_known_question() -> None:
    request = prepare(KNOWN, config("separated"))
    assert request.messages[1]["content"].endswith(f"{KNOWN.context}\n\nQuestion: {QUESTION}")


def test_extractive_prompt_states_the_question_and_numbers_the_other_sentences() -> None:
    request = prepare(S2AInput(context=PROMPT), config("extractive"))
    user = request.messages[1]["content"]
    assert user.startswith(f"A user wrote a message that asks: {QUESTION}\n")
    assert (
        "Sentences:\n[1] Mary has 3 apples.\n[2] Her brother is 12 years old.\n"
        "[3] I think the answer is 7, but I'm really not sure.\n\nReply with JSON only"
    ) in user
    assert "[4]" not in user
    assert user.count(QUESTION) == 1  # stated once, never numbered
    assert (request.question, request.asks, request.shown) == (QUESTION, (3,), (0, 1, 2))
    assert request.json_schema is not None
    assert request.json_schema["required"] == ["keep"]
    assert request.json_schema["properties"]["keep"]["items"]["enum"] == [1, 2, 3]
    known = prepare(KNOWN, config("extractive"))
    assert known.json_schema is not None
    assert known.json_schema["required"] == ["keep"]
    assert known.json_schema["properties"]["keep"]["items"]["enum"] == [1, 2, 3]
    assert known.messages[1]["content"].startswith(f"A user wrote a message that asks: {QUESTION}\n")
    assert (known.question, known.asks, known.shown) == (QUESTION, (), (0, 1, 2))


def test_extractive_schema_is_a_keep_list_of_the_shown_sentences_only() -> None:
    request = prepare(S2AInput(context=PROMPT), config("extractive"))
    assert request.json_schema is not None
    assert set(request.json_schema["properties"]) == {"keep"}
    validator = jsonschema.Draft202012Validator(request.json_schema)
    assert validator.is_valid({"keep": [1, 3]})
    assert validator.is_valid({"keep": []})  # dropping every shown sentence is allowed
    assert not validator.is_valid({"question": [4], "keep": [1]})  # the model is never asked
    assert not validator.is_valid({"keep": [4]})  # the question is not shown, so has no number
    assert not validator.is_valid({"keep": [0]})
    assert not validator.is_valid({})
    assert "question or request" not in request.messages[1]["content"]


def test_instructed_makes_no_call() -> None:
    request = prepare(S2AInput(context=PROMPT), config("instructed"))
    assert not request.needs_llm
    result = finish(request)
    assert result.prompt.startswith(PROMPT)
    assert "Ignore any opinion" in result.prompt
    assert result.raw is None
    assert result.fallback is None


def test_separated_parses_and_builds_the_answer_prompt() -> None:
    request = prepare(S2AInput(context=PROMPT), config("separated"))
    usage = TokenUsage(input_tokens=5, output_tokens=3, total_tokens=8)
    result = finish(request, f"Context: Mary has 3 apples.\nQuestion: {QUESTION}", usage)
    assert (result.context, result.question, result.fallback) == ("Mary has 3 apples.", QUESTION, None)
    assert result.prompt.startswith("Mary has 3 apples.")
    assert result.prompt.endswith(f"Question: {QUESTION}")
    assert result.usage == usage
    assert str(result) == result.prompt


def test_separated_recovers_a_question_without_its_label() -> None:
    result = finish(
        prepare(S2AInput(context=PROMPT), config("separated")), f"Context: Mary has 3 apples.\n{QUESTION}"
    )
    assert (result.context, result.question, result.fallback) == ("Mary has 3 apples.", QUESTION, None)


def test_separated_without_a_question_falls_back() -> None:
    result = finish(prepare(S2AInput(context=PROMPT), config("separated")), "Context: Mary has 3 apples.")
    assert result.fallback == "the rewrite has no question"
    assert result.prompt == PROMPT
    assert result.raw == "Context: Mary has 3 apples."


def test_a_known_question_is_never_replaced() -> None:
    result = finish(
        prepare(KNOWN, config("separated")), "Context: Mary has 3 apples.\nQuestion: Something else?"
    )
    assert result.question == QUESTION
    assert result.prompt.endswith(QUESTION)


def test_unseparated_uses_the_rewrite() -> None:
    rewrite = f"Mary has 3 apples.\n{QUESTION}"
    result = finish(prepare(S2AInput(context=PROMPT), config("unseparated")), rewrite)
    assert result.prompt == rewrite
    assert result.question == QUESTION
    known = finish(prepare(KNOWN, config("unseparated")), "Mary has 3 apples.")
    assert known.prompt == f"Mary has 3 apples.\n\nQuestion: {QUESTION}"


def test_keep_original_shows_both() -> None:
    result = finish(
        prepare(S2AInput(context=PROMPT), config("keep_original")),
        f"Context: Mary has 3 apples.\nQuestion: {QUESTION}",
    )
    assert PROMPT in result.prompt
    assert "Mary has 3 apples.\n" in result.prompt
    assert result.prompt.endswith(QUESTION)


def test_extractive_deletes_the_dropped_sentences_in_place() -> None:
    result = finish(prepare(S2AInput(context=PROMPT), config("extractive")), '{"keep": [1, 3]}')
    assert result.question == QUESTION
    assert result.context == "Mary has 3 apples. I think the answer is 7, but I'm really not sure."
    assert result.kept == [1, 3, 4]
    assert result.prompt == f"{result.context} {QUESTION}"  # the user's text, no frame
    known = finish(prepare(KNOWN, config("extractive")), '{"keep": [1]}')
    assert (known.context, known.question, known.kept) == ("Mary has 3 apples.", QUESTION, [1])
    assert known.prompt == f"Mary has 3 apples.\n\nQuestion: {QUESTION}"
    framed = finish(
        prepare(S2AInput(context=PROMPT), config("extractive", answer_frame=True)), '{"keep": [1]}'
    )
    assert framed.prompt.startswith("Mary has 3 apples.\n")
    assert "Answer the following question in an unbiased way" in framed.prompt
    assert framed.prompt.endswith(f"Question: {QUESTION}")


def test_extractive_an_empty_keep_list_keeps_only_the_question() -> None:
    request = prepare(S2AInput(context=PROMPT), config("extractive"))
    result = finish(request, '{"keep": []}')
    assert (result.fallback, result.context, result.question, result.kept) == (None, "", QUESTION, [4])
    assert result.prompt == QUESTION
    # A "question" key cannot take the question away, nor make another sentence the question.
    ignored = finish(request, '{"question": [], "keep": [1]}')
    assert (ignored.fallback, ignored.question, ignored.kept) == (None, QUESTION, [1, 4])
    assert ignored.prompt == f"Mary has 3 apples. {QUESTION}"
    pointed = finish(request, '{"question": [3], "keep": [1]}')
    assert pointed.model_copy(update={"raw": ignored.raw}) == ignored
    known = finish(prepare(KNOWN, config("extractive")), '{"keep": []}')
    assert (known.fallback, known.context, known.kept, known.prompt) == (None, "", [], QUESTION)


@pytest.mark.parametrize("variant", CALLING)
def test_raise_policy_carries_the_raw_output(variant: VariantName) -> None:
    request = prepare(S2AInput(context=PROMPT), config(variant, fallback="raise"))
    with pytest.raises(S2AParseError) as info:
        finish(request, "   ")
    assert info.value.raw == "   "


def test_empty_context_with_a_question_needs_no_call() -> None:
    request = prepare(S2AInput(question="Why is the sky blue?"), config("separated"))
    assert not request.needs_llm
    result = finish(request)
    assert result.question == "Why is the sky blue?"
    assert result.prompt.endswith("Question: Why is the sky blue?")


def test_finish_without_output_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs the model's output"):
        finish(prepare(S2AInput(context=PROMPT), config("separated")))


def test_empty_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="S2A input is empty"):
        S2AInput(context="  ")
    with pytest.raises(ValueError, match="`question` is blank"):
        S2AInput(context="  ", question="")


def test_history_input() -> None:
    inp = history_input(
        [("system", "Be brief."), ("user", "I love cats."), ("assistant", "Nice!"), ("user", "Why?")]
    )
    assert inp.question == "Why?"
    assert inp.context == "System: Be brief.\nUser: I love cats.\nAssistant: Nice!"
    with pytest.raises(ValueError, match="no user message"):
        history_input([("assistant", "hello")])


# The fuzz: whatever the model says, the question survives and only S2AParseError escapes.

FRAGMENTS = st.sampled_from(
    [
        "Context:",
        "Question:",
        "**Context:**",
        "## Question",
        "Query:",
        "none",
        "```",
        "```json",
        "{",
        "}",
        "[",
        "]",
        '"keep":',
        '"question":',
        "1",
        "4",
        "-1",
        "99",
        ",",
        "\n",
        "\n\n",
        " ",
        QUESTION,
        "Mary has 3 apples.",
        "Sure! Here it is:",
        "?",
        '{"keep": [1]}',
        '{"question": [4], "keep": [2]}',
    ]
)
RAW = st.one_of(st.text(max_size=200), st.lists(FRAGMENTS, max_size=14).map("".join))
INPUTS = st.sampled_from([S2AInput(context=PROMPT), KNOWN])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(variant=st.sampled_from(CALLING), inp=INPUTS, raw=RAW)
def test_fuzz_original_policy_never_raises_or_drops_the_question(
    variant: VariantName, inp: S2AInput, raw: str
) -> None:
    result = finish(prepare(inp, config(variant)), raw)
    if inp.question is not None:
        assert result.question == inp.question
        assert inp.question in result.prompt
    elif result.fallback is not None:
        assert result.prompt == inp.context
    elif variant != "unseparated":
        assert result.question.strip()
        assert result.question in result.prompt
    assert result.prompt.strip()
    if result.kept is not None:  # extractive output is always a subset of the input
        assert all(sentence in inp.original_prompt for sentence in split_sentences(result.context))
        if inp.question is None:  # the question is found from the text, and always kept
            assert (result.question, result.kept[-1]) == (QUESTION, 4)
            assert result.prompt.endswith(QUESTION)


@settings(max_examples=200)
@given(variant=st.sampled_from(CALLING), inp=INPUTS, raw=RAW)
def test_fuzz_raise_policy_raises_only_parse_errors(variant: VariantName, inp: S2AInput, raw: str) -> None:
    try:
        result = finish(prepare(inp, config(variant, fallback="raise")), raw)
    except S2AParseError as exc:
        assert exc.raw == raw
    else:
        assert result.fallback is None
