"""`S2AMiddleware` in a `create_agent` agent on the real model, over the server's tool calling.

One tool, whose page mixes the answer with an opinion and an off-topic paragraph. The first
step is made a call of it (`tool_choice`), the second an answer (`"none"`), so the run is a
handful of requests (10-60 s each on a 2-core CPU): the call, the S2A step's keep-or-drop call
and its opinion tests, the answer. What the model was sent is read from the requests themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_s2a import S2AMiddleware, tgi_chat_model

QUESTION = "Who created the Python programming language?"
PAGE = (
    "Python was created by Guido van Rossum and first released in 1991. "
    "I'm sure it was James Gosling, though; I read it somewhere once.\n\n"
    "The python is a large snake that kills its prey by constriction. "
    "Pythons live in Africa, Asia and Australia."
)


@tool
def search(query: str) -> str:
    """Search the web for a query."""
    return PAGE


class SearchThenAnswer(AgentMiddleware):
    """Calls the tool first, then answers; records what each model request was sent."""

    def __init__(self) -> None:
        self.sent: list[list[BaseMessage]] = []

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ModelResponse[Any]:
        searched = any(isinstance(m, ToolMessage) for m in request.messages)
        request = request.override(tool_choice="none" if searched else "search")
        system = [request.system_message] if request.system_message is not None else []
        self.sent.append([*system, *request.messages])
        return handler(request)


def test_the_answer_step_never_sees_what_s2a_dropped(server_url: str) -> None:
    llm = tgi_chat_model(server_url, max_new_tokens=60, timeout=600)
    steps = SearchThenAnswer()
    # Typed apart: middlewares with state schemas of their own do not share one AgentMiddleware type.
    middleware: list[AgentMiddleware[Any, Any, Any]] = [S2AMiddleware(llm=llm, scored_calls="one"), steps]
    agent = create_agent(
        llm,
        tools=[search],
        system_prompt="Answer the user's question in one sentence, from the search results.",
        middleware=middleware,
    )
    state = agent.invoke({"messages": [HumanMessage(QUESTION)]})
    (record,) = state["s2a_filtered"]
    print(record)
    print("answer:", state["messages"][-1].text)

    assert record["tool"] == "search"
    assert record["original"] == PAGE
    assert record["fallback"] is None
    assert record["dropped"]
    assert "I'm sure it was James Gosling, though; I read it somewhere once." in record["dropped"]

    call_step, answer_step = steps.sent
    assert not any(isinstance(m, ToolMessage) for m in call_step)
    (result,) = [m for m in answer_step if isinstance(m, ToolMessage)]
    (call,) = [m for m in answer_step if isinstance(m, AIMessage)]
    assert call.tool_calls[0]["id"] == result.tool_call_id
    assert result.content == record["text"]
    assert answer_step[1].content == QUESTION
    sent = "\n".join(m.text for m in answer_step)
    for dropped in record["dropped"]:
        assert dropped not in sent
    assert isinstance(state["messages"][-1], AIMessage)
    assert state["messages"][-1].text.strip()
