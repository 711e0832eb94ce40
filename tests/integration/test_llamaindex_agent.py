"""A LlamaIndex `FunctionAgent` whose query engine tool filters with `S2ANodePostprocessor`, on the model.

The tool's index holds the answer, an opinion naming another answer and an off-topic paragraph.
The agent's first step is made a call of the tool (`initial_tool_choice`); left to choose, the
1.5B default model calls it again after every result, so the second step is its answer
(`max_iterations=2`, `early_stopping_method="generate"`). What the model was sent is read from
the HTTP requests themselves, plain and streamed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from huggingface_hub import close_session, set_async_client_factory, set_client_factory
from huggingface_hub.utils._http import default_async_client_factory, default_client_factory
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.tools import QueryEngineTool

from llamaindex_s2a import S2ANodePostprocessor, S2ASelectionEndEvent, tgi_llm
from tests.fake_models import selection_ends

QUESTION = "Who created the Python programming language?"
PAGES = {
    "answer": "Python was created by Guido van Rossum and first released in 1991.",
    "opinion": "I'm sure Python was created by James Gosling, though; I read it somewhere once.",
    "snake": "The python is a large snake that kills its prey by constriction. Pythons live in Asia.",
}


class Pages(BaseRetriever):
    """Every page, as a search that brings back noise with the answer would."""

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [NodeWithScore(node=TextNode(text=text, id_=name), score=1.0) for name, text in PAGES.items()]


@pytest.fixture
def sent() -> Iterator[list[dict[str, Any]]]:
    """The JSON body of every request huggingface_hub's clients send while the test runs, sync or async."""
    bodies: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> None:
        if request.method == "POST":
            bodies.append(json.loads(request.read()))

    async def arecord(request: httpx.Request) -> None:
        record(request)

    def client() -> httpx.Client:
        made = default_client_factory()
        made.event_hooks["request"].append(record)
        return made

    def async_client() -> httpx.AsyncClient:
        made = default_async_client_factory()
        made.event_hooks["request"].append(arecord)
        return made

    set_client_factory(client)
    set_async_client_factory(async_client)
    close_session()
    try:
        yield bodies
    finally:
        close_session()
        set_client_factory(default_client_factory)
        set_async_client_factory(default_async_client_factory)


@pytest.mark.parametrize("streaming", [False, True])
async def test_the_agent_never_sees_what_s2a_dropped(
    server_url: str, sent: list[dict[str, Any]], streaming: bool
) -> None:
    llm = tgi_llm(server_url, max_new_tokens=80, timeout=600)
    s2a = S2ANodePostprocessor(llm=llm)
    engine = RetrieverQueryEngine.from_args(Pages(), llm=llm, node_postprocessors=[s2a])
    search = QueryEngineTool.from_defaults(
        engine, name="search_docs", description="Search the documentation for the answer to a question."
    )
    agent = FunctionAgent(
        tools=[search],
        llm=llm,
        system_prompt="Answer the user's question in one sentence, from the search results.",
        streaming=streaming,
        initial_tool_choice="search_docs",
        early_stopping_method="generate",
    )
    try:
        with selection_ends() as ends:
            handler = agent.run(user_msg=QUESTION, max_iterations=2)
            results = [e async for e in handler.stream_events() if isinstance(e, ToolCallResult)]
            answer = str(await handler)
    finally:
        await llm._async_client.close()  # its connection pool; huggingface_hub does not close it
    print("tool results:", [str(r.tool_output) for r in results], "answer:", answer)

    assert results, "the agent never called its tool"
    assert all(r.tool_name == "search_docs" and r.tool_kwargs.get("input") for r in results)
    records: list[S2ASelectionEndEvent] = list(ends)
    assert len(records) == len(results)  # one S2A step per search
    for record in records:
        assert record.fallback is None
        assert record.kept_ids == ["answer"]
        assert record.dropped_ids == ["opinion", "snake"]
    s2a_calls = sum(r.calls for r in records)
    noisy = [b for b in sent if "Gosling" in json.dumps(b) or "constriction" in json.dumps(b)]
    assert len(noisy) == s2a_calls  # only the S2A step read the opinion and the snake
    assert all("tools" not in b for b in noisy)  # none of the agent's own steps did
    assert "Guido van Rossum" in answer
