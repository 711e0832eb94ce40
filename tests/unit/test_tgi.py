"""tgi_chat_model and the core client, through huggingface_hub's real HTTP client (no socket)."""

from __future__ import annotations

import pytest
from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint

from langchain_s2a import S2ARunnable, create_s2a_chain, tgi_chat_model
from s2a import Decoding, S2AConfig, S2AConfigError, S2AInput
from s2a._client import run_s2a
from s2a.tgi import check_base_url, inference_client
from tests.fake_tgi import FakeTGI

PROMPT = "Mary has 3 apples. I think the answer is 4. How many apples does Mary have?"
REWRITE = "Context: Mary has 3 apples.\nQuestion: How many apples does Mary have?"


def test_decoding_is_greedy_by_default(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda body: REWRITE
    result = S2ARunnable(variant="separated", llm=tgi_chat_model("http://tgi.test:8080/")).invoke(PROMPT)
    assert result.context == "Mary has 3 apples."
    assert result.usage is not None
    assert result.usage.total_tokens == 18
    (body,) = fake_tgi.bodies("/v1/chat/completions")
    assert body["temperature"] == 0.0  # TGI's chat route: 0 means greedy
    assert body["max_tokens"] == 512
    assert "response_format" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert fake_tgi.hosts == {"tgi.test"}  # the server itself, never the Hub


async def test_extractive_is_grammar_constrained(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda body: '{"keep": [1]}'
    s2a = S2ARunnable(llm=tgi_chat_model("http://tgi.test:8080"), variant="extractive")
    result = await s2a.ainvoke(PROMPT)
    assert result.kept == [1, 3]  # the question (sentence 3) is found from the text and always kept
    assert result.prompt == "Mary has 3 apples. How many apples does Mary have?"
    (body,) = fake_tgi.bodies("/v1/chat/completions")
    grammar = body["response_format"]
    assert grammar["type"] == "json"
    assert grammar["value"]["required"] == ["keep"]
    assert set(grammar["value"]["properties"]) == {"keep"}  # the model is never asked for the question
    assert grammar["value"]["properties"]["keep"]["items"]["enum"] == [1, 2]  # the two sentences shown


def test_sampling_settings_reach_the_server(fake_tgi: FakeTGI) -> None:
    model = tgi_chat_model("http://tgi.test:8080", temperature=0.7, seed=3, top_p=0.9, max_new_tokens=64)
    model.invoke("hi")
    (body,) = fake_tgi.bodies("/v1/chat/completions")
    assert (body["temperature"], body["seed"], body["top_p"], body["max_tokens"]) == (0.7, 3, 0.9, 64)


def test_generate_route_is_greedy_without_temperature(fake_tgi: FakeTGI) -> None:
    """TGI's /generate rejects temperature=0: the endpoint must send do_sample=False instead."""
    endpoint = tgi_chat_model("http://tgi.test:8080").llm
    assert isinstance(endpoint, HuggingFaceEndpoint)
    fake_tgi.reply = lambda body: '{"keep": [1]}'
    s2a = S2ARunnable(llm=endpoint, variant="extractive")
    result = s2a.invoke({"context": "Mary has 3 apples. Tom is 9.", "question": "How many apples?"})
    assert result.context == "Mary has 3 apples."
    (body,) = [b for path, b in fake_tgi.requests if path in {"", "/"}]
    parameters = body["parameters"]
    assert parameters["do_sample"] is False
    assert parameters.get("temperature") is None
    assert parameters["grammar"]["type"] == "json"


def test_chain_through_tgi(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda body: REWRITE if body["messages"][0]["role"] == "system" else "5 apples."
    assert (
        create_s2a_chain(tgi_chat_model("http://tgi.test:8080"), variant="separated").invoke(PROMPT)
        == "5 apples."
    )
    answer_body = fake_tgi.bodies("/v1/chat/completions")[1]
    assert answer_body["messages"][-1]["content"].startswith("Mary has 3 apples.")


def test_factory_returns_chat_huggingface_over_an_endpoint() -> None:
    model = tgi_chat_model("https://tgi.example.com")
    assert isinstance(model, ChatHuggingFace)
    assert model.llm.endpoint_url == "https://tgi.example.com"


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://x", "", "http://"])
def test_bad_urls_are_named(url: str) -> None:
    with pytest.raises(S2AConfigError, match="is not an http"):
        check_base_url(url)


def test_unknown_decoding_setting_is_named() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        tgi_chat_model("http://tgi.test", max_tokens=5)
    with pytest.raises(ValueError, match="temperature"):
        Decoding(temperature=-1)


@pytest.mark.parametrize("through", ["langchain", "core"])
def test_a_reply_cut_off_at_max_tokens_is_not_used(fake_tgi: FakeTGI, through: str) -> None:
    """TGI says `finish_reason: length`: the rest of the rewrite may be what had to be kept."""
    fake_tgi.reply = lambda body: "Context: Mary has 3 apples.\nQuestion: How many"
    fake_tgi.finish_reason = "length"
    if through == "langchain":
        result = S2ARunnable(variant="separated", llm=tgi_chat_model("http://tgi.test:8080")).invoke(PROMPT)
    else:
        result = run_s2a(
            inference_client("http://tgi.test:8080"),
            S2AInput(context=PROMPT),
            S2AConfig(variant="separated"),
            Decoding(),
        )
    assert result.fallback is not None
    assert "cut off at the token limit" in result.fallback
    assert result.prompt == PROMPT
