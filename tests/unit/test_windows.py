"""A context longer than the model's window: split into parts that fit, each filtered, merged.

Nothing is cut: every sentence of the input lies in exactly one part, in order; a part that
fails keeps its text, flagged; the question is never lost.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from langchain_s2a import S2ARunnable
from langchain_s2a._convert import ContextQuestion
from s2a import NO_RETRY, S2AConfig, S2AInput, S2AParseError, S2ARequest, TokenUsage, prepare, split_sentences
from s2a._steps import Reply, arun_plan, run_plan
from s2a._windows import approx_tokens, plan_step, request_tokens
from tests.fake_models import sentence_block, stated_question, without_cost
from tests.ledger import question_kept, record

QUESTION = "How many apples does Mary have in the end?"
OPINION = "I think the answer is 7."
SEPARATED = S2AConfig(variant="separated")
"""These tests split the paper's rewrite; `scored` has its own in test_scored.py."""


def story(sentences: int) -> str:
    lines = [f"On day {i} Mary picks {i} apples from the old orchard." for i in range(1, sentences + 1)]
    lines[sentences // 2] = OPINION
    return " ".join(lines)


def rewrite(request: S2ARequest) -> Reply:
    """An obedient filter: drops the opinion, keeps the rest, names the question."""
    part = request.input
    kept = " ".join(s for s in split_sentences(part.context) if s not in (OPINION, QUESTION))
    question = part.question or (QUESTION if QUESTION in part.context else "")
    return Reply(f"Context: {kept}\nQuestion: {question}", TokenUsage(input_tokens=10, total_tokens=12))


def test_a_context_that_fits_is_one_call_exactly_as_prepare_builds_it() -> None:
    inp = S2AInput(context=story(5), question=QUESTION)
    plan = plan_step(inp, SEPARATED, window_tokens=10_000)
    assert not plan.split
    assert plan.first == (prepare(inp, SEPARATED),)
    result = run_plan(plan, rewrite, NO_RETRY)
    assert result.parts == 1
    assert OPINION not in result.context


def test_a_long_context_is_split_into_parts_that_fit_and_merged_in_order() -> None:
    inp = S2AInput(context=story(60), question=QUESTION)
    window = 400
    plan = plan_step(inp, SEPARATED, window_tokens=window)
    assert len(plan.first) > 3
    assert all(request_tokens(request) <= window for request in plan.first)
    assert all(QUESTION in request.messages[1]["content"] for request in plan.first)
    # Every sentence in exactly one part, in order: nothing cut, nothing repeated.
    parts = [s for request in plan.first for s in split_sentences(request.input.context)]
    assert parts == split_sentences(inp.context)

    result = run_plan(plan, rewrite, NO_RETRY)
    record("long contexts split into parts")
    assert result.parts == len(plan.first)
    question_kept(result, QUESTION)
    assert result.fallback is None
    assert split_sentences(result.context) == [s for s in split_sentences(inp.context) if s != OPINION]
    assert result.usage == TokenUsage(input_tokens=10 * result.parts, total_tokens=12 * result.parts)
    assert result.prompt.endswith(QUESTION)


def test_with_the_question_inside_the_context_the_last_part_finds_it_for_the_others() -> None:
    inp = S2AInput(context=f"{story(40)} {QUESTION}")
    plan = plan_step(inp, SEPARATED, window_tokens=400)
    assert len(plan.first) == 1  # only the last part, which holds the end of the prompt
    assert plan.first[0].input.question is None
    assert QUESTION in plan.first[0].input.context
    seen: list[str | None] = []

    def call(request: S2ARequest) -> Reply:
        seen.append(request.input.question)
        return rewrite(request)

    result = run_plan(plan, call, NO_RETRY)
    assert seen[0] is None
    assert len(seen) == result.parts > 2
    assert set(seen[1:]) == {QUESTION}
    question_kept(result, QUESTION)
    assert result.fallback is None
    assert OPINION not in result.context
    assert split_sentences(result.context) == [
        s for s in split_sentences(inp.context) if s not in (OPINION, QUESTION)
    ]


def test_if_the_last_part_yields_no_question_the_whole_input_is_kept_flagged() -> None:
    inp = S2AInput(context=f"{story(40)} {QUESTION}")
    result = run_plan(
        plan_step(inp, SEPARATED, window_tokens=400), lambda _r: Reply("I cannot help with that."), NO_RETRY
    )
    assert result.prompt == inp.context
    question_kept(result, QUESTION)
    assert result.fallback is not None
    assert "question was not found in the last part" in result.fallback


def test_a_failed_part_keeps_its_own_text_and_says_which_it_was() -> None:
    inp = S2AInput(context=story(60), question=QUESTION)
    plan = plan_step(inp, SEPARATED, window_tokens=400)
    second = plan.first[1].input.context

    def call(request: S2ARequest) -> Reply:
        if request.input.context == second:
            raise httpx.ConnectError("refused")
        return rewrite(request)

    result = run_plan(plan, call, NO_RETRY)
    assert result.fallback is not None
    assert result.fallback.startswith(f"part 2 of {len(plan.first)}: the S2A call failed")
    assert second in result.context  # verbatim, opinion and all when it is there
    question_kept(result, QUESTION)


def test_raise_policy_raises_for_a_part() -> None:
    inp = S2AInput(context=story(60), question=QUESTION)
    plan = plan_step(inp, S2AConfig(variant="separated", fallback="raise"), window_tokens=400)
    with pytest.raises(S2AParseError):
        run_plan(plan, lambda _r: Reply("no labels here"), NO_RETRY)


def test_extractive_parts_keep_verbatim_sentences_numbered_over_the_whole_context() -> None:
    inp = S2AInput(context=story(60), question=QUESTION)
    plan = plan_step(inp, S2AConfig(variant="extractive"), window_tokens=400)
    assert len(plan.first) > 2

    def keep_all_but_opinion(request: S2ARequest) -> Reply:
        numbers = [i for i, s in enumerate(split_sentences(request.input.context), 1) if s != OPINION]
        return Reply(f'{{"keep": {numbers}}}')

    result = run_plan(plan, keep_all_but_opinion, NO_RETRY)
    everything = split_sentences(inp.context)
    assert result.kept == [i for i, s in enumerate(everything, 1) if s != OPINION]
    assert split_sentences(result.context) == [s for s in everything if s != OPINION]


def test_extractive_with_the_question_inside_sends_every_part_at_once() -> None:
    """The question is found before the split: every part states it, none numbers it, none waits."""
    inp = S2AInput(context=f"{story(40)} {QUESTION}")
    plan = plan_step(inp, S2AConfig(variant="extractive"), window_tokens=400)
    assert plan.split
    assert len(plan.first) == len(plan.parts) > 2
    assert plan.rest([]) == ()
    assert all(request_tokens(request) <= 400 for request in plan.first)
    prompts = [request.messages[1]["content"] for request in plan.first]
    assert all(stated_question(prompt) == QUESTION for prompt in prompts)
    shown = [line.split("] ", 1)[1] for prompt in prompts for line in sentence_block(prompt)]
    assert shown == split_sentences(story(40))  # every other sentence once, in order; never the question

    def pick(request: S2ARequest) -> Reply:
        lines = sentence_block(request.messages[1]["content"])
        return Reply(f'{{"keep": {[n for n, line in enumerate(lines, 1) if not line.endswith(OPINION)]}}}')

    result = run_plan(plan, pick, NO_RETRY)
    question_kept(result, QUESTION)
    assert (result.fallback, result.question, result.parts) == (None, QUESTION, len(plan.parts))
    everything = split_sentences(inp.context)
    assert result.kept == [i for i, s in enumerate(everything, 1) if s != OPINION]
    assert result.prompt == inp.context.replace(f"{OPINION} ", "")  # deleted in place in the whole
    assert result.context == story(40).replace(f"{OPINION} ", "")


def test_one_enormous_sentence_is_cut_at_words_and_nothing_is_lost() -> None:
    words = [f"word{i}" for i in range(30_000)]
    inp = S2AInput(context=" ".join(words), question=QUESTION)
    plan = plan_step(inp, SEPARATED, window_tokens=2_000)
    assert len(plan.first) > 10
    assert all(request_tokens(request) <= 2_000 for request in plan.first)
    assert " ".join(r.input.context for r in plan.first).split() == words


def test_a_word_longer_than_a_window_is_cut_at_characters_and_nothing_is_lost() -> None:
    blob = "x" * 20_000
    inp = S2AInput(context=f"Short start. {blob} Short end.", question=QUESTION)
    plan = plan_step(inp, SEPARATED, window_tokens=1_000)
    assert all(request_tokens(request) <= 1_000 for request in plan.first)
    assert re.sub(r"\s", "", "".join(r.input.context for r in plan.first)) == re.sub(r"\s", "", inp.context)


def test_a_window_too_small_for_the_prompt_itself_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"window_tokens=50 leaves no room for the context"):
        plan_step(S2AInput(context=story(60), question=QUESTION), SEPARATED, window_tokens=50)


def test_no_call_variants_and_empty_context_are_never_split() -> None:
    long = story(200)
    assert not plan_step(S2AInput(context=long), S2AConfig(variant="instructed"), window_tokens=100).split
    assert not plan_step(S2AInput(context="", question=QUESTION), SEPARATED, window_tokens=100).split


def test_token_estimate_does_not_undercount_other_scripts() -> None:
    assert approx_tokens("abc" * 100) == 101
    assert approx_tokens("苹果" * 100) == 201
    assert approx_tokens("яблоко") == 7


def test_sync_and_async_give_the_same_result() -> None:
    inp = S2AInput(context=f"{story(40)} {QUESTION}")
    plan = plan_step(inp, SEPARATED, window_tokens=400)

    async def acall(request: S2ARequest) -> Reply:
        await asyncio.sleep(0)
        return rewrite(request)

    together, in_turn = asyncio.run(arun_plan(plan, acall, NO_RETRY)), run_plan(plan, rewrite, NO_RETRY)
    assert without_cost(together) == without_cost(in_turn)
    assert together.cost is not None
    assert in_turn.cost is not None
    assert together.cost.calls == in_turn.cost.calls == len(plan.parts)
    # the last part first, then the others: two rounds when they go together, one a call in turn
    assert (together.cost.rounds, in_turn.cost.rounds) == (2, len(plan.parts))


def _obedient(count: int) -> GenericFakeChatModel:
    return GenericFakeChatModel(
        messages=iter([AIMessage(f"Context: part {i}.\nQuestion: {QUESTION}") for i in range(count)])
    )


async def test_runnable_splits_by_window_tokens_sync_and_async() -> None:
    value: ContextQuestion = {"context": story(60), "question": QUESTION}
    parts = len(plan_step(S2AInput(**value), SEPARATED, window_tokens=400).first)
    s2a = S2ARunnable(variant="separated", llm=_obedient(parts), window_tokens=400)
    result = s2a.invoke(value)
    assert result.parts == parts
    assert result.context == " ".join(f"part {i}." for i in range(parts))
    again = await S2ARunnable(variant="separated", llm=_obedient(parts), window_tokens=400).ainvoke(value)
    assert again.parts == parts
    assert sorted(again.context.split(" ")) == sorted(result.context.split(" "))  # concurrent parts


@pytest.mark.parametrize("metadata", [{"finish_reason": "length"}, {"stop_reason": "max_tokens"}])
def test_a_reply_cut_off_at_the_token_limit_is_not_used(metadata: dict[str, str]) -> None:
    cut = AIMessage("Context: Mary has 3 apples. She also", response_metadata=metadata)
    value: ContextQuestion = {"context": "Mary has 3 apples. She also has a pear.", "question": QUESTION}
    result = S2ARunnable(variant="separated", llm=GenericFakeChatModel(messages=iter([cut]))).invoke(value)
    assert result.fallback is not None
    assert "cut off at the token limit" in result.fallback
    assert result.context == value["context"]
    with pytest.raises(S2AParseError, match="cut off"):
        S2ARunnable(
            variant="separated", llm=GenericFakeChatModel(messages=iter([cut])), fallback="raise"
        ).invoke(value)
