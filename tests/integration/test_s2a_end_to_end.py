"""S2A end to end on the real default model behind `s2a serve`."""

from __future__ import annotations

import asyncio
import json

import pytest

from langchain_s2a import ContextQuestion, S2ARunnable, S2ARunnableInput, create_s2a_chain, tgi_chat_model
from s2a import VARIANTS, VariantName, split_sentences
from tests.integration.conftest import async_model

PROMPT = (
    "Mary has 3 apples and buys 2 more. Her brother Tom is 12 years old. "
    "I think the answer is 4, but I'm not sure. How many apples does Mary have now?"
)
KNOWN: ContextQuestion = {
    "context": "Mary has 3 apples and buys 2 more. Her brother Tom is 12 years old. I think the answer is 4.",
    "question": "How many apples does Mary have now?",
}
ALL: list[VariantName] = list(VARIANTS)


@pytest.mark.parametrize("variant", ALL)
def test_every_variant_through_the_runnable(server_url: str, variant: VariantName) -> None:
    s2a = S2ARunnable(llm=tgi_chat_model(server_url, max_new_tokens=256), variant=variant)
    result = s2a.invoke(PROMPT)
    assert result.variant == variant
    assert result.prompt.strip()
    if variant == "instructed":
        assert result.raw is None
        assert PROMPT in result.prompt
    else:
        assert result.raw  # the model was really called
        assert result.usage is not None
        assert result.usage.output_tokens > 0
    if result.fallback is None and variant != "unseparated":
        assert result.question in result.prompt
    known = s2a.invoke(KNOWN)
    assert known.question == KNOWN["question"]  # the caller's question survives every variant
    assert KNOWN["question"] in known.prompt


@pytest.mark.parametrize("variant", ALL)
def test_every_variant_through_the_chain(server_url: str, variant: VariantName) -> None:
    chain = create_s2a_chain(tgi_chat_model(server_url, max_new_tokens=128), variant=variant)
    answer = chain.invoke(KNOWN)
    assert isinstance(answer, str)
    assert answer.strip()


def test_extractive_reply_is_grammar_constrained_json(server_url: str) -> None:
    s2a = S2ARunnable(llm=tgi_chat_model(server_url), variant="extractive")
    result = s2a.invoke(PROMPT)
    assert result.raw is not None
    reply = json.loads(result.raw)  # the whole reply is JSON: no chatter, no fences
    assert set(reply) == {"keep"}  # the question is found from the text, never asked of the model
    count = len(split_sentences(PROMPT)) - 1  # every sentence but the question is shown
    assert all(1 <= n <= count for n in reply["keep"])
    assert result.fallback is None
    assert result.question == split_sentences(PROMPT)[-1]
    for sentence in split_sentences(result.context) + split_sentences(result.question):
        assert sentence in PROMPT  # verbatim subset of the input


def test_scored_drops_the_opinion_by_its_words_and_tests_only_the_facts(deterministic_url: str) -> None:
    result = S2ARunnable(llm=tgi_chat_model(deterministic_url), variant="scored").invoke(PROMPT)
    assert result.fallback is None
    assert result.stance == {3: "first-person belief"}  # "I think the answer is 4, ...": no call
    assert sorted(result.opinions or {}) == [1, 2]  # the model's opinion test read only the facts
    assert "I think the answer is 4" not in result.prompt
    assert result.prompt.startswith("Mary has 3 apples and buys 2 more. ")
    assert result.prompt.endswith(" How many apples does Mary have now?")


def test_scored_drops_the_opinion_on_its_own_test_and_keeps_the_facts(deterministic_url: str) -> None:
    """With the stance rules off, the model's own opinion test tells the opinion from the facts."""
    runnable = S2ARunnable(llm=tgi_chat_model(deterministic_url), variant="scored", stance_rules=False)
    result = runnable.invoke(PROMPT)
    assert result.fallback is None
    assert result.scores_from == "logprobs"
    opinions = result.opinions or {}
    assert sorted(opinions) == [1, 2, 3]  # every sentence but the question was tested
    assert opinions[3] >= 0.75 > max(opinions[1], opinions[2])  # "I think the answer is 4, ..."
    assert "I think the answer is 4" not in result.prompt
    assert result.prompt.startswith("Mary has 3 apples and buys 2 more. ")
    assert result.prompt.endswith(" How many apples does Mary have now?")


def test_extractive_through_the_generate_route(server_url: str) -> None:
    endpoint = tgi_chat_model(server_url).llm  # HuggingFaceEndpoint: TGI's /generate with `grammar`
    result = S2ARunnable(llm=endpoint, variant="extractive").invoke(KNOWN)
    assert result.raw is not None
    assert set(json.loads(result.raw)) == {"keep"}
    assert result.question == KNOWN["question"]


def test_streaming_matches_invoke(deterministic_url: str) -> None:
    model = tgi_chat_model(deterministic_url, max_new_tokens=24)
    chunks = [chunk.text for chunk in model.stream("Name three primary colours.")]
    assert len(chunks) > 3
    assert "".join(chunks) == model.invoke("Name three primary colours.").text  # greedy: same text


async def test_async_streaming(server_url: str) -> None:
    async with async_model(server_url, max_new_tokens=16) as model:
        chunks = [chunk.text async for chunk in model.astream("Say hello.")]
    assert len(chunks) > 1
    assert "".join(chunks).strip()


async def test_abatch_of_8_concurrent_requests_keeps_each_answer_with_its_request(server_url: str) -> None:
    fruits = ["apples", "pears", "plums", "figs", "limes", "dates", "kiwis", "mangos"]
    inputs: list[ContextQuestion] = [
        {
            "context": f"Shop {i} sells {fruit} for {i + 2} dollars. I love the colour blue.",
            "question": f"What does shop {i} sell?",
        }
        for i, fruit in enumerate(fruits)
    ]
    async with async_model(server_url, max_new_tokens=64) as model:
        batch: list[S2ARunnableInput] = [*inputs]
        results = await S2ARunnable(llm=model, variant="extractive").abatch(batch)
    assert len(results) == 8
    for i, (inp, result) in enumerate(zip(inputs, results, strict=True)):
        assert result.question == inp["question"]
        assert result.raw is not None
        for sentence in split_sentences(result.context):
            assert sentence in inp["context"]  # nothing from another request
        others = [fruit for j, fruit in enumerate(fruits) if j != i]
        assert not any(other in result.context for other in others)


async def test_concurrent_answers_each_belong_to_their_own_request(server_url: str) -> None:
    """Eight requests at once over four slots: no crossed, mixed or lost answers.

    Batched greedy replies may differ from solo ones in their last bits (TGI says the same), so
    what is asserted is that each reply answers its own prompt.
    """
    words = ["walrus", "trumpet", "saffron", "glacier", "origami", "lantern", "meteor", "cactus"]
    prompts = [f"Repeat this word twice, nothing else: {word}" for word in words]
    async with async_model(server_url, max_new_tokens=12) as model:
        together = await asyncio.gather(*(model.ainvoke(p) for p in prompts))
    for word, message in zip(words, together, strict=True):
        reply = message.text.lower()
        assert word in reply
        assert not any(other in reply for other in words if other != word)
