"""Agents whose tool output goes through S2A before the agent reasons on it.

A noisy search returns the relevant text mixed with an opinion, ads and a paragraph about the
snake. The agent must see only what helps answer the question.

1. LangChain: `create_agent` with `S2AMiddleware`. The search tool returns the raw page; before
   each model call the middleware filters the tool's result against the user's question, and
   records what it dropped in the agent's state (`s2a_filtered`). The agent's model calls the
   tool through the server's TGI-style tool calling.
2. LlamaIndex: `FunctionAgent` with a `QueryEngineTool` whose query engine filters the pages
   it retrieves with `S2ANodePostprocessor` before it answers; its instrumentation events say
   which pages S2A kept and dropped. The agent calls the tool through the same tool calling.

    S2A_TGI_URL=http://127.0.0.1:8080 python examples/agent_with_tools.py
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse, wrap_model_call
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.tools import QueryEngineTool

from langchain_s2a import S2AMiddleware, tgi_chat_model
from llamaindex_s2a import S2ANodePostprocessor, S2ASelectionEndEvent, tgi_llm

QUESTION = "Who created the Python programming language?"
NOISY_PAGE = (
    "Python was created by Guido van Rossum and first released in 1991. "
    "I am convinced Python was created by James Gosling; I read it somewhere once. "
    "SPONSORED: learn Python in 24 hours with our bootcamp, 50% off today only! "
    "The python is a large snake that kills its prey by constriction. "
    "Click here for cheap flights to Amsterdam."
)
PAGES = {  # the same result as pages of a search index, for the LlamaIndex agent
    "answer": "Python was created by Guido van Rossum and first released in 1991.",
    "opinion": "I am convinced Python was created by James Gosling; I read it somewhere once.",
    "snake": "The python is a large snake that kills its prey by constriction. Click here for cheap flights!",
}


def web_search(query: str) -> str:
    """Search the web (a canned, noisy result page)."""
    return f"Results for {query!r}: {NOISY_PAGE}"


# 1. LangChain --------------------------------------------------------------------------------


@wrap_model_call
def search_then_answer(
    request: ModelRequest[None], handler: Callable[[ModelRequest[None]], ModelResponse[Any]]
) -> ModelResponse[Any]:
    """Make the first step a search and the next one an answer (`tool_choice`).

    Left to choose (`auto`), the 1.5B default model searched again after every result, four
    times, up to the call limit.
    """
    searched = any(isinstance(m, ToolMessage) for m in request.messages)
    return handler(request.override(tool_choice="none" if searched else "search"))


@tool
def search(question: str) -> str:
    """Search the web for the answer to a question."""
    print(f"(the agent called search({question!r}))")
    return web_search(question)


def langchain_agent(base_url: str) -> None:
    llm = tgi_chat_model(base_url, max_new_tokens=160, timeout=600)
    # The tool returns the raw page; the middleware filters it before the model reads it.
    # scored_calls="one": one keep-or-drop call for the whole result, then the opinion tests.
    agent = create_agent(
        llm,
        tools=[search],
        system_prompt="Answer the user's question in one sentence, from the search results.",
        middleware=[S2AMiddleware(llm=llm, scored_calls="one"), search_then_answer],
    )
    state = agent.invoke({"messages": [HumanMessage(QUESTION)]})
    for record in state["s2a_filtered"]:
        print(f"--- raw {record['tool']} output:\n{record['original']}")
        print(f"--- after the S2A middleware (what the agent read):\n{record['text']}")
        print(f"--- dropped by S2A: {record['dropped']}")
    print("--- langchain agent answer:", state["messages"][-1].text.strip())


# 2. LlamaIndex -------------------------------------------------------------------------------


class SearchIndex(BaseRetriever):
    """A search that brings back every page of the noisy result, as a broad web search would."""

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:  # noqa: ARG002
        return [NodeWithScore(node=TextNode(text=text, id_=name), score=1.0) for name, text in PAGES.items()]


async def llamaindex_agent(base_url: str) -> None:
    # Made in this event loop: huggingface_hub's async client binds to the loop that first uses it.
    llm = tgi_llm(base_url, max_new_tokens=160, timeout=600)
    engine = RetrieverQueryEngine.from_args(
        SearchIndex(), llm=llm, node_postprocessors=[S2ANodePostprocessor(llm=llm)]
    )
    search_docs = QueryEngineTool.from_defaults(
        engine, name="search_docs", description="Search the web for the answer to a question."
    )
    agent = FunctionAgent(
        tools=[search_docs],
        llm=llm,
        system_prompt="Answer the user's question in one sentence, from the search results.",
        initial_tool_choice="search_docs",  # the first step is a search
        # Left to choose, the 1.5B default model searches again after every result: at the
        # second step it answers from what it has instead.
        early_stopping_method="generate",
    )
    try:
        with selection_records() as records:
            handler = agent.run(user_msg=QUESTION, max_iterations=2)
            async for event in handler.stream_events():
                if isinstance(event, ToolCallResult):
                    print(f"(the agent called {event.tool_name}({event.tool_kwargs}))")
                    print(f"--- search_docs answer, from the nodes S2A kept:\n{event.tool_output}")
            response = await handler
        for record in records:
            print(f"--- S2A kept: {record.kept_ids}")
            print(f"--- dropped by S2A: {record.dropped_ids}")
        print("--- llamaindex agent answer:", str(response).strip())
    finally:
        await llm._async_client.close()


@contextmanager
def selection_records() -> Iterator[list[S2ASelectionEndEvent]]:
    """What each S2A step kept and dropped, from LlamaIndex's instrumentation events."""
    records: list[S2ASelectionEndEvent] = []

    class Handler(BaseEventHandler):
        def handle(self, event: BaseEvent, **kwargs: Any) -> None:  # noqa: ARG002
            if isinstance(event, S2ASelectionEndEvent):
                records.append(event)

    dispatcher = get_dispatcher()
    handler = Handler()
    dispatcher.add_event_handler(handler)
    try:
        yield records
    finally:
        dispatcher.event_handlers.remove(handler)


def main() -> None:
    base_url = os.environ.get("S2A_TGI_URL", "http://127.0.0.1:8080")
    print(f"=== LangChain create_agent with S2AMiddleware: {QUESTION}")
    langchain_agent(base_url)
    print(f"=== LlamaIndex FunctionAgent with a query engine tool and S2ANodePostprocessor: {QUESTION}")
    asyncio.run(llamaindex_agent(base_url))


if __name__ == "__main__":
    main()
