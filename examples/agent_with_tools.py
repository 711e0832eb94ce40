"""Agents whose tool output goes through S2A before the agent reasons on it.

A noisy `web_search` tool returns the relevant text mixed with an opinion and ads. Rather than
counting on the model to chain a search tool and a filter tool, the search tool the agent gets
is already filtered: the search's output goes through S2A's tool, and the agent sees only what
helps answer the question. Both agents are text ReAct agents (no OpenAI `tools` parameter,
which a TGI server may not accept), kept to a few iterations.

1. LlamaIndex: `ReActAgent` (a workflow: `await agent.run(user_msg=...)`) with
   `S2ANodePostprocessor(llm=llm).as_tool()` inside its search tool.
2. LangChain: `create_react_agent` + `AgentExecutor` with `S2ARunnable(llm=llm).as_tool()`
   inside its search tool.

    S2A_TGI_URL=http://127.0.0.1:8080 python examples/agent_with_tools.py
"""

from __future__ import annotations

import asyncio
import os

from langchain_classic.agents import AgentExecutor, create_react_agent
from langchain_classic.agents.output_parsers import ReActSingleInputOutputParser
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.prompts import PromptTemplate
from langchain_core.tools import tool
from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.prompts import PromptTemplate as LlamaPromptTemplate
from llama_index.core.tools import FunctionTool

from langchain_s2a import S2ARunnable, tgi_chat_model
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


# 1. LlamaIndex -------------------------------------------------------------------------------


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


# 2. LangChain --------------------------------------------------------------------------------

REACT_PROMPT = PromptTemplate.from_template(
    """Answer the following question as best you can. You have access to the following tools:

{tools}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [{tool_names}]
Action Input: the input to the action
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can repeat N times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!

Question: {input}
Thought:{agent_scratchpad}"""
)
PARSING_ERROR = "Invalid format: write 'Final Answer: ' and the answer, or an Action and its Action Input."


class ReActParser(ReActSingleInputOutputParser):
    """LangChain's ReAct parser, for servers that return the stop sequence with the text.

    TGI includes the stop sequence (`Observation`) in its output; cut it before parsing.
    """

    def parse(self, text: str) -> AgentAction | AgentFinish:
        return super().parse(text.split("\nObservation", maxsplit=1)[0].rstrip())


def langchain_agent(base_url: str) -> None:
    llm = tgi_chat_model(base_url, max_new_tokens=160, timeout=600)
    s2a_filter = S2ARunnable(llm=llm).as_tool()  # a StructuredTool taking `context`, `question`

    def filtered_search(question: str) -> str:
        # The S2A tool returns an S2AResult; the agent has the question, so it gets the context.
        return s2a_filter.invoke({"context": web_search(question), "question": question}).context

    @tool
    def search(question: str) -> str:
        """Search the web for the answer to a question; the results are filtered for it."""
        print(f"(the agent called search({question!r}))")
        return filtered_search(question)

    show(web_search(QUESTION), filtered_search(QUESTION))
    agent = create_react_agent(llm, [search], REACT_PROMPT, output_parser=ReActParser())
    executor = AgentExecutor(
        agent=agent, tools=[search], handle_parsing_errors=PARSING_ERROR, max_iterations=MAX_ITERATIONS
    )
    result = executor.invoke({"input": QUESTION})
    print("--- langchain agent answer:", str(result["output"]).strip())


def main() -> None:
    base_url = os.environ.get("S2A_TGI_URL", "http://127.0.0.1:8080")
    print(f"=== LlamaIndex ReActAgent: {QUESTION}")
    asyncio.run(llamaindex_agent(base_url))
    print(f"=== LangChain ReAct AgentExecutor: {QUESTION}")
    langchain_agent(base_url)


if __name__ == "__main__":
    main()
