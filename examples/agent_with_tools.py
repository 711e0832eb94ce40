"""Agents whose tool output goes through S2A before the agent reasons on it.

A noisy `web_search` tool returns the relevant text mixed with an opinion, ads and a paragraph
about the snake. The agent must see only what helps answer the question.

1. LangChain: `create_agent` with `S2AMiddleware`. The search tool returns the raw page; before
   each model call the middleware filters the tool's result against the user's question, and
   records what it dropped in the agent's state (`s2a_filtered`). The agent's model calls the
   tool through the server's TGI-style tool calling.
2. LlamaIndex: `ReActAgent` (a workflow: `await agent.run(user_msg=...)`) with
   `S2ANodePostprocessor(llm=llm).as_tool()` inside its search tool: with no middleware, the
   tool filters its own output. A text ReAct agent, kept to a few iterations.

    S2A_TGI_URL=http://127.0.0.1:8080 python examples/agent_with_tools.py
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse, wrap_model_call
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.prompts import PromptTemplate as LlamaPromptTemplate
from llama_index.core.tools import FunctionTool

from langchain_s2a import S2AMiddleware, tgi_chat_model
from llamaindex_s2a import S2ANodePostprocessor, tgi_llm

QUESTION = "Who created the Python programming language?"
NOISY_PAGE = (
    "Python was created by Guido van Rossum and first released in 1991. "
    "I am convinced Python was created by James Gosling; I read it somewhere once. "
    "SPONSORED: learn Python in 24 hours with our bootcamp, 50% off today only! "
    "The python is a large snake that kills its prey by constriction. "
    "Click here for cheap flights to Amsterdam."
)
MAX_ITERATIONS = 4


def web_search(query: str) -> str:
    """Search the web (a canned, noisy result page)."""
    return f"Results for {query!r}: {NOISY_PAGE}"


def show(raw: str, filtered: str) -> None:
    print(f"--- raw web_search output:\n{raw}")
    print(f"--- after the S2A filter (what the agent's search tool returns):\n{filtered}")


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


def tool_call_example(agent: ReActAgent) -> None:
    """Show the agent's ReAct header an Action Input for our tool's own argument.

    The default header's example (`{"input": "hello world", "num_beams": 5}`) is copied
    verbatim by small models, which then call the tool with arguments it does not take.
    """
    header = agent.get_prompts()["react_header"].get_template()
    header = header.replace('"input": "hello world", "num_beams": 5', '"question": "Who wrote Hamlet?"')
    agent.update_prompts({"react_header": LlamaPromptTemplate(header)})


async def llamaindex_agent(base_url: str) -> None:
    # Made in this event loop: huggingface_hub's async client binds to the loop that first uses it.
    llm = tgi_llm(base_url, max_new_tokens=160, timeout=600)
    s2a_filter = S2ANodePostprocessor(llm=llm).as_tool()  # a FunctionTool taking `text`, `question`

    async def filtered_search(question: str) -> str:
        raw = web_search(question)
        return (await s2a_filter.acall(text=raw, question=question)).content

    async def search(question: str) -> str:
        """Search the web for the answer to a question; the results are filtered for it."""
        print(f"(the agent called search({question!r}))")
        return await filtered_search(question)

    agent = ReActAgent(
        tools=[FunctionTool.from_defaults(async_fn=search, name="search")],
        llm=llm,
        streaming=False,
        early_stopping_method="generate",  # answer at the iteration limit rather than raise
    )
    tool_call_example(agent)
    try:
        show(web_search(QUESTION), await filtered_search(QUESTION))
        response = await agent.run(user_msg=QUESTION, max_iterations=MAX_ITERATIONS)
        print("--- llamaindex agent answer:", str(response).strip())
    finally:
        await llm._async_client.close()


def main() -> None:
    base_url = os.environ.get("S2A_TGI_URL", "http://127.0.0.1:8080")
    print(f"=== LangChain create_agent with S2AMiddleware: {QUESTION}")
    langchain_agent(base_url)
    print(f"=== LlamaIndex ReActAgent: {QUESTION}")
    asyncio.run(llamaindex_agent(base_url))


if __name__ == "__main__":
    main()
