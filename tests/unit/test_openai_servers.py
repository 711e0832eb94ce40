"""Grammars on OpenAI-compatible servers: each kind's own fields, through `ChatOpenAI` and `OpenAILike`.

The clients run for real over an in-memory transport that answers as an OpenAI server does and
records what it was sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from langchain_core.documents import Document
from langchain_openai import ChatOpenAI
from llama_index.core.schema import NodeWithScore, TextNode

from langchain_s2a import S2ADocumentCompressor, openai_chat_model
from llamaindex_s2a import S2ANodePostprocessor, openai_like_llm
from s2a import S2AConfigError
from s2a.openai_servers import SERVER_KINDS, grammar_fields

SCHEMA = {"type": "object", "properties": {"keep": {"type": "array"}}}
QUERY = "Where is Paris?"
TEXTS = ["Paris is in France.", "I am sure Paris is in Spain.", "Bananas are yellow."]
CONSTRAINTS = {"response_format", "structured_outputs", "regex", "json_schema"}
"""Every server kind's constraint fields."""


@pytest.mark.parametrize(
    ("server", "kind", "fields"),
    [
        ("tgi", "json", {"response_format": {"type": "json", "value": SCHEMA}}),
        ("tgi", "regex", {"response_format": {"type": "regex", "value": "a|b"}}),
        ("vllm", "json", {"structured_outputs": {"json": SCHEMA}}),
        ("vllm", "regex", {"structured_outputs": {"regex": "a|b"}}),
        (
            "sglang",
            "json",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "s2a", "schema": SCHEMA}}},
        ),
        ("sglang", "regex", {"regex": "a|b"}),
        ("llama.cpp", "json", {"json_schema": SCHEMA}),
        ("llama.cpp", "regex", {}),  # no regular expressions there: unconstrained
    ],
)
def test_each_server_kind_has_its_fields(server: Any, kind: str, fields: dict[str, Any]) -> None:
    value = SCHEMA if kind == "json" else "a|b"
    assert grammar_fields(server, {"type": kind, "value": value}) == fields


def test_bad_grammars_and_kinds_are_named() -> None:
    with pytest.raises(S2AConfigError, match="a grammar is"):
        grammar_fields("vllm", {"type": "ebnf", "value": "x"})
    with pytest.raises(S2AConfigError, match="unknown server kind 'ollama'; choose from tgi, vllm"):
        openai_chat_model("http://h/v1", server="ollama", model="m")  # type: ignore[arg-type]
    with pytest.raises(S2AConfigError, match="not an http"):
        openai_like_llm("h/v1", server="vllm", model="m", context_window=4096)


class OpenAIServer:
    """Answers `/v1/chat/completions` with `{"keep": [1]}`, as an OpenAI server would; keeps each body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read()))
        message = {"role": "assistant", "content": '{"keep": [1]}'}
        return httpx.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
            },
        )


@pytest.mark.parametrize("server", SERVER_KINDS)
def test_the_compressor_sends_the_servers_fields(server: Any) -> None:
    fake = OpenAIServer()
    llm = openai_chat_model(
        "http://h/v1",
        server=server,
        model="m",
        extra_body={"top_k": 1},  # the user's own extras stay
        http_client=httpx.Client(transport=httpx.MockTransport(fake)),
    )
    documents = [Document(page_content=t) for t in TEXTS]
    kept = S2ADocumentCompressor(llm=llm, mode="keep_list").compress_documents(documents, QUERY)
    assert [d.page_content for d in kept] == [TEXTS[0]]
    (body,) = fake.bodies
    fields = CONSTRAINTS & set(body)
    assert fields == set(grammar_fields(server, {"type": "json", "value": {}}))
    assert "keep" in json.dumps(body[fields.pop()])  # the keep list's schema
    assert body["top_k"] == 1
    assert body["temperature"] == 0


def test_a_plain_chat_openai_sends_no_grammar() -> None:
    fake = OpenAIServer()
    llm = ChatOpenAI(
        base_url="http://h/v1",
        api_key="k",
        model="m",
        http_client=httpx.Client(transport=httpx.MockTransport(fake)),
    )
    S2ADocumentCompressor(llm=llm, mode="keep_list").compress_documents(
        [Document(page_content=t) for t in TEXTS], QUERY
    )
    (body,) = fake.bodies
    assert not CONSTRAINTS & set(body)


@pytest.mark.parametrize("server", SERVER_KINDS)
def test_the_node_postprocessor_sends_the_servers_fields(server: Any) -> None:
    fake = OpenAIServer()
    llm = openai_like_llm(
        "http://h/v1",
        server=server,
        model="m",
        context_window=4096,
        http_client=httpx.Client(transport=httpx.MockTransport(fake)),
    )
    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=1.0) for i, t in enumerate(TEXTS)]
    kept = S2ANodePostprocessor(llm=llm, mode="keep_list").postprocess_nodes(nodes, query_str=QUERY)
    assert [n.node.node_id for n in kept] == ["n0"]
    (body,) = fake.bodies
    fields = CONSTRAINTS & set(body)
    assert fields == set(grammar_fields(server, {"type": "json", "value": {}}))
    assert body["temperature"] == 0
