"""The OpenAI-compatible path: `ChatOpenAI` and LlamaIndex's `OpenAILike` on the local server's `/v1`.

vLLM and SGLang, which Hugging Face points TGI's users to, speak only the OpenAI API; a user
reaches s2a through these clients. Each is run beside the TGI client (`tgi_chat_model`,
`tgi_llm`) on the same server and inputs: `scored` reads its probabilities from the OpenAI
`logprobs` and keeps the same sentences (or nodes).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from langchain_core.documents import Document
from langchain_openai import ChatOpenAI
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.llms.openai_like import OpenAILike

from langchain_s2a import S2ADocumentCompressor, S2ARunnable, openai_chat_model, tgi_chat_model
from llamaindex_s2a import S2ANodePostprocessor, openai_like_llm, tgi_llm

PROMPTS = [
    "Mary has 3 apples and buys 2 more. Her brother likes pears. I think the answer is 4. "
    "How many apples does she have?",
    "Which city is the capital of Australia? My uncle swears it's Sydney. "
    "Australia is a country in the southern hemisphere. Kangaroos eat grass.",
]
QUERY = "What is the capital of Australia?"
TEXTS = [
    "Canberra is the capital of Australia.",
    "My uncle swears the capital is Sydney.",
    "Kangaroos eat grass.",
    "Australia's parliament sits in Canberra.",
]


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """The OpenAI clients' connection pool, closed after the test (the clients do not close theirs)."""
    with httpx.Client(timeout=600) as client:
        yield client


def chat_openai(server_url: str, http: httpx.Client) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=f"{server_url}/v1",
        api_key="unused",
        model="local",
        temperature=0,
        max_tokens=64,
        http_client=http,
    )


def test_scored_through_chat_openai_keeps_what_the_tgi_client_keeps(
    server_url: str, http: httpx.Client
) -> None:
    through_openai = S2ARunnable(llm=chat_openai(server_url, http), variant="scored")
    through_tgi = S2ARunnable(llm=tgi_chat_model(server_url, max_new_tokens=64), variant="scored")
    for prompt in PROMPTS:
        openai_result, tgi_result = through_openai.invoke(prompt), through_tgi.invoke(prompt)
        print(openai_result.prompt, "|", tgi_result.prompt)
        assert openai_result.fallback is None
        assert openai_result.scores_from == tgi_result.scores_from == "logprobs"
        assert openai_result.prompt == tgi_result.prompt  # the same sentences kept, in place
        assert openai_result.prompt != prompt  # and something was removed


def test_compressor_through_chat_openai(server_url: str, http: httpx.Client) -> None:
    documents = [Document(page_content=t, id=f"d{i}") for i, t in enumerate(TEXTS)]
    through_openai = S2ADocumentCompressor(llm=chat_openai(server_url, http)).compress_documents(
        documents, QUERY
    )
    through_tgi = S2ADocumentCompressor(llm=tgi_chat_model(server_url, max_new_tokens=64)).compress_documents(
        documents, QUERY
    )
    # The same documents; their order is P(keep)'s, whose last bits differ with and without a
    # grammar, so two close scores may swap (seen: 0.69 and 0.67).
    assert sorted(str(d.id) for d in through_openai) == sorted(str(d.id) for d in through_tgi)
    assert "d0" in [d.id for d in through_openai]
    openai_scores = {
        d.id: d.metadata["relevance_score"] for d in through_openai
    }  # P(keep), from the logprobs
    tgi_scores = {d.id: d.metadata["relevance_score"] for d in through_tgi}
    assert all(abs(openai_scores[d] - tgi_scores[d]) < 0.1 for d in openai_scores)


def test_node_postprocessor_through_openai_like(server_url: str, http: httpx.Client) -> None:
    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=1.0) for i, t in enumerate(TEXTS)]
    openai_like = OpenAILike(
        api_base=f"{server_url}/v1",
        api_key="unused",
        model="local",
        is_chat_model=True,
        max_tokens=64,
        http_client=http,
    )
    through_openai = S2ANodePostprocessor(llm=openai_like).postprocess_nodes(nodes, query_str=QUERY)
    through_tgi = S2ANodePostprocessor(llm=tgi_llm(server_url, max_new_tokens=64)).postprocess_nodes(
        nodes, query_str=QUERY
    )
    print([(n.node.node_id, n.score) for n in [*through_openai, *through_tgi]])
    assert sorted(n.node.node_id for n in through_openai) == sorted(n.node.node_id for n in through_tgi)
    assert "n0" in [n.node.node_id for n in through_openai]
    assert all(n.score is not None and 0.0 <= n.score <= 1.0 and n.score != 1.0 for n in through_openai)


def test_keep_lists_under_the_servers_grammar(server_url: str, http: httpx.Client) -> None:
    """`server="tgi"`: the keep list is constrained by TGI's `response_format`, as through TGI's client."""
    documents = [Document(page_content=t, id=f"d{i}") for i, t in enumerate(TEXTS)]
    llm = openai_chat_model(f"{server_url}/v1", server="tgi", model="local", max_tokens=64, http_client=http)
    through_openai = S2ADocumentCompressor(llm=llm, mode="keep_list").compress_documents(documents, QUERY)
    through_tgi = S2ADocumentCompressor(
        llm=tgi_chat_model(server_url, max_new_tokens=64), mode="keep_list"
    ).compress_documents(documents, QUERY)
    assert sorted(str(d.id) for d in through_openai) == sorted(str(d.id) for d in through_tgi)
    assert "d0" in [d.id for d in through_openai]

    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=1.0) for i, t in enumerate(TEXTS)]
    li_llm = openai_like_llm(
        f"{server_url}/v1", server="tgi", model="local", context_window=4096, max_tokens=64
    )
    kept = S2ANodePostprocessor(llm=li_llm, mode="keep_list").postprocess_nodes(nodes, query_str=QUERY)
    assert "n0" in [n.node.node_id for n in kept]
