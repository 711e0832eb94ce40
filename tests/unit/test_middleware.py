"""`S2AMiddleware` in `create_agent` agents, on LangChain's fake chat models.

The agent's model is GenericFakeChatModel scripted with tool calls (`ToolCallingFake`); the S2A
model answers the scored calls by rules (`RuleChatModel`, `scored_judge`), so that concurrent
calls get the same replies in any order, or a FakeListChatModel when one call is made.
`ChatInputs` records what the agent's model was sent: the answer step's view.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from langchain_s2a import S2ADocumentCompressor, S2AMiddleware, S2ARunnable
from langchain_s2a._middleware import DEFAULT_PLACEHOLDER, S2AState, paragraphs
from s2a import NO_RETRY, S2ACallError, S2AParseError
from tests.fake_models import ChatInputs, PromptRecorder, RuleChatModel, ToolCallingFake, scored_judge

SYSTEM = "You answer questions about programming languages.  Be brief.\n"
QUESTION = "Who created the Python programming language?"
ANSWER = "Python was created by Guido van Rossum and first released in 1991."
OPINION = "I'm sure it was James Gosling, though."
OFF_TOPIC = "The python is a large snake that kills its prey by constriction. It lives in Africa and Asia."
PAGE = f"{ANSWER} {OPINION}\n\n{OFF_TOPIC}"


@tool
def search(query: str) -> str:
    """Search the web."""
    return PAGE


@tool
def lookup(query: str) -> str:
    """Look a name up in the encyclopedia."""
    return "Guido van Rossum is a Dutch programmer. He likes cycling on weekends in the dunes."


@tool
def encyclopedia(query: str) -> str:
    """Read the encyclopedia's article."""
    return f"{ANSWER}\n\n{OPINION} Many say so.\n  \n{OFF_TOPIC}"


@tool
def count(query: str) -> str:
    """Count the results."""
    return "42"


def calls(*tools: str, answers: int = 1) -> list[AIMessage]:
    """The agent model's script: one tool call a step, in order, then `answers` answers (one a turn)."""
    steps = [
        AIMessage("", tool_calls=[{"name": name, "args": {"query": "Python"}, "id": f"call-{i}"}])
        for i, name in enumerate(tools)
    ]
    return [*steps, *(AIMessage("Guido van Rossum.") for _ in range(answers))]


def relevant(sentence: str) -> bool:
    return "Guido" in sentence or "Gosling" in sentence


def judge() -> RuleChatModel:
    return RuleChatModel(reply=scored_judge(relevant))


def agent(
    middleware: S2AMiddleware, *script: str, answers: int = 1, **kwargs: Any
) -> tuple[CompiledStateGraph[Any, Any, Any, Any], ChatInputs]:
    """An agent whose model follows `calls(*script)`, and what its model is sent."""
    seen = ChatInputs()
    # Not streamed: GenericFakeChatModel's stream would lose the tool calls.
    script_ = iter(calls(*script, answers=answers))
    model = ToolCallingFake(messages=script_, callbacks=[seen], disable_streaming=True)
    tools: list[BaseTool] = [search, lookup, encyclopedia, count]
    built = create_agent(model, tools, system_prompt=SYSTEM, middleware=[middleware], **kwargs)
    return built, seen


def ask(question: str = QUESTION) -> dict[str, Any]:
    return {"messages": [HumanMessage(question)]}


def tool_results(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


# What the model reads, and what is recorded.


def test_the_model_reads_the_tool_result_without_the_opinion_and_the_off_topic_paragraph() -> None:
    s2a = judge()
    built, seen = agent(S2AMiddleware(llm=s2a), "search")
    state = built.invoke(ask())

    first, answer_step = seen.calls
    (result,) = tool_results(answer_step)
    assert result.content == ANSWER
    assert OPINION not in str(answer_step)
    assert "snake" not in str(answer_step)
    # The system prompt and the user's request reach the model byte for byte.
    assert [type(m) for m in first] == [SystemMessage, HumanMessage]
    assert answer_step[0].content == SYSTEM
    assert answer_step[1].content == QUESTION
    assert answer_step[1].id == state["messages"][0].id
    # The tool call and its result still pair up.
    (call,) = [m for m in answer_step if isinstance(m, AIMessage)]
    assert call.tool_calls[0]["id"] == result.tool_call_id == "call-0"

    (record,) = state["s2a_filtered"]
    assert record["dropped"] == [
        OPINION,
        "The python is a large snake that kills its prey by constriction.",
        "It lives in Africa and Asia.",
    ]
    assert record == {
        "message_id": result.id,
        "role": "tool",
        "tool": "search",
        "question": QUESTION,
        "original": PAGE,
        "text": ANSWER,
        "dropped": record["dropped"],
        "variant": "scored",
        "fallback": None,
    }
    assert state["messages"][2].response_metadata["s2a"] == record
    assert all(QUESTION in prompt or "Sentence: " in prompt for prompt in s2a.prompts)


def test_the_state_keeps_the_filtered_message_in_place() -> None:
    built, _ = agent(S2AMiddleware(llm=judge()), "search")
    messages = built.invoke(ask())["messages"]
    assert [type(m) for m in messages] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert messages[2].content == ANSWER
    assert messages[2].name == "search"


def test_each_tool_result_is_filtered_once_across_model_calls_and_turns() -> None:
    recorder = PromptRecorder()
    # One keep-or-drop call a result, relevance only: one S2A call per tool message.
    s2a = FakeListChatModel(
        responses=["1 keep\n2 drop\n3 drop\n4 drop", "1 keep\n2 drop"], callbacks=[recorder]
    )
    middleware = S2AMiddleware(llm=s2a, scored_calls="one", focus="relevance")
    built, seen = agent(middleware, "search", "lookup", answers=2, checkpointer=InMemorySaver())
    thread: RunnableConfig = {"configurable": {"thread_id": "1"}}
    state = built.invoke(ask(), thread)

    assert len(seen.calls) == 3
    assert len(recorder.prompts) == 2  # two tool results, each once, though three model calls
    assert [m.content for m in tool_results(seen.calls[2])] == [
        ANSWER,
        "Guido van Rossum is a Dutch programmer.",
    ]
    assert [r["tool"] for r in state["s2a_filtered"]] == ["search", "lookup"]

    # A new turn: the old results are not filtered again for the new request.
    state = built.invoke(ask("And when was it first released?"), thread)
    assert len(recorder.prompts) == 2
    assert len(state["s2a_filtered"]) == 2


def test_short_results_pass_through_with_no_call() -> None:
    s2a = judge()
    built, seen = agent(S2AMiddleware(llm=s2a), "count")
    state = built.invoke(ask())
    assert tool_results(seen.calls[1])[0].content == "42"
    assert s2a.prompts == []
    assert state["s2a_filtered"] == []
    assert "s2a" not in state["messages"][2].response_metadata


def test_a_tool_error_is_left_for_the_model_to_read() -> None:
    error = ToolMessage(f"Error: {PAGE}", tool_call_id="c1", name="search", id="tool-1", status="error")
    call = AIMessage("", tool_calls=[{"name": "search", "args": {"query": "Python"}, "id": "c1"}], id="ai-1")
    state: S2AState = {"messages": [HumanMessage(QUESTION, id="human-1"), call, error]}
    s2a = judge()
    assert S2AMiddleware(llm=s2a).before_model(state, Runtime()) is None
    assert s2a.prompts == []


def test_only_the_named_tools_are_filtered() -> None:
    s2a = judge()
    built, seen = agent(S2AMiddleware(llm=s2a, tool_names=["lookup"]), "search", "lookup")
    state = built.invoke(ask())
    assert [m.content for m in tool_results(seen.calls[2])] == [
        PAGE,
        "Guido van Rossum is a Dutch programmer.",
    ]
    assert [r["tool"] for r in state["s2a_filtered"]] == ["lookup"]


def test_a_message_dropped_whole_says_so() -> None:
    never = RuleChatModel(reply=scored_judge(lambda _sentence: False))
    built, seen = agent(S2AMiddleware(llm=never, relative=None), "lookup")
    state = built.invoke(ask())
    assert tool_results(seen.calls[1])[0].content == DEFAULT_PLACEHOLDER
    assert state["s2a_filtered"][0]["text"] == DEFAULT_PLACEHOLDER


# Failures.


def test_a_failed_s2a_step_keeps_the_original_and_flags_it_once() -> None:
    def down(_prompt: str) -> str:
        raise ConnectionError("the S2A server is down")

    s2a = RuleChatModel(reply=down)
    built, seen = agent(S2AMiddleware(llm=s2a, retry=NO_RETRY, scored_calls="one"), "search", "count")
    state = built.invoke(ask())

    assert tool_results(seen.calls[1])[0].content == PAGE  # byte for byte
    (record,) = state["s2a_filtered"]
    assert record["fallback"] is not None
    assert "the S2A server is down" in record["fallback"]
    assert record["text"] == PAGE
    asked = len(s2a.prompts)
    assert tool_results(seen.calls[2])[0].content == PAGE
    assert len(s2a.prompts) == asked  # not retried on the next model call


def test_fallback_raise_ends_the_run() -> None:
    unusable = FakeListChatModel(responses=["I would rather not say."])
    built, _ = agent(S2AMiddleware(llm=unusable, scored_calls="one", fallback="raise"), "search")
    with pytest.raises(S2AParseError):
        built.invoke(ask())

    def down(_prompt: str) -> str:
        raise ConnectionError("the S2A server is down")

    middleware = S2AMiddleware(llm=RuleChatModel(reply=down), fallback="raise", retry=NO_RETRY)
    built, _ = agent(middleware, "search")
    with pytest.raises(S2ACallError, match="the S2A server is down"):
        built.invoke(ask())


# Async.


async def test_async_gives_what_sync_gives() -> None:
    states = []
    for run in ("sync", "async"):
        built, seen = agent(S2AMiddleware(llm=judge()), "search", "lookup")
        states.append(built.invoke(ask()) if run == "sync" else await built.ainvoke(ask()))
        assert [m.content for m in tool_results(seen.calls[2])] == [
            ANSWER,
            "Guido van Rossum is a Dutch programmer.",
        ]
    sync, concurrent = (
        [{k: v for k, v in r.items() if k != "message_id"} for r in s["s2a_filtered"]] for s in states
    )
    assert sync == concurrent


async def test_async_fallback_raise_raises() -> None:
    unusable = FakeListChatModel(responses=["I would rather not say."])
    built, _ = agent(S2AMiddleware(llm=unusable, scored_calls="one", fallback="raise"), "search")
    with pytest.raises(S2AParseError):
        await built.ainvoke(ask())


# A RAG filter, and the history.


@pytest.mark.parametrize("run", ["sync", "async"])
async def test_a_document_compressor_keeps_whole_paragraphs(run: str) -> None:
    recorder = PromptRecorder()
    llm = FakeListChatModel(responses=["1 keep\n2 drop\n3 drop"], callbacks=[recorder])
    middleware = S2AMiddleware(S2ADocumentCompressor(llm=llm, fusion=None))
    built, seen = agent(middleware, "encyclopedia")
    state = built.invoke(ask()) if run == "sync" else await built.ainvoke(ask())

    assert tool_results(seen.calls[1])[0].content == ANSWER
    (record,) = state["s2a_filtered"]
    assert record["dropped"] == [f"{OPINION} Many say so.", OFF_TOPIC]
    assert record["variant"] == "rag:scored"
    assert "[3] The python is a large snake" in recorder.prompts[0]


def test_paragraphs_split_at_blank_lines() -> None:
    assert paragraphs("a\nb\n\n c \n \t\n\n\nd\n") == ["a\nb", "c", "d"]


def test_history_is_filtered_only_when_asked() -> None:
    history = [
        HumanMessage("I think it was James Gosling who made it. What's the weather in Amsterdam today?"),
        AIMessage("It is sunny in Amsterdam. Guido van Rossum created Python, not James Gosling."),
        HumanMessage(QUESTION),
    ]
    s2a = judge()
    built, seen = agent(S2AMiddleware(llm=s2a))
    state = built.invoke({"messages": history})
    assert s2a.prompts == []
    assert [m.content for m in seen.calls[0][1:]] == [m.content for m in history]

    built, seen = agent(S2AMiddleware(llm=s2a, filter_history=True))
    state = built.invoke({"messages": history})
    sent = seen.calls[0]
    assert sent[1].content == "What's the weather in Amsterdam today?"  # a question is never judged
    assert sent[2].content == "Guido van Rossum created Python, not James Gosling."
    assert sent[3].content == QUESTION
    assert [r["role"] for r in state["s2a_filtered"]] == ["human", "ai"]


# The hook alone, tracing, streaming, settings.


def test_the_hook_replaces_messages_by_id_and_leaves_tool_calls_alone() -> None:
    call = AIMessage("", tool_calls=[{"name": "search", "args": {"query": "Python"}, "id": "c1"}], id="ai-1")
    state: S2AState = {
        "messages": [
            SystemMessage("Be brief.", id="sys"),
            HumanMessage(QUESTION, id="human-1"),
            call,
            ToolMessage(PAGE, tool_call_id="c1", name="search", id="tool-1"),
        ]
    }
    update = S2AMiddleware(llm=judge()).before_model(state, Runtime())
    assert update is not None
    (message,) = update["messages"]
    assert (message.id, message.tool_call_id, message.content) == ("tool-1", "c1", ANSWER)
    assert update["s2a_filtered"][0]["message_id"] == "tool-1"
    filtered: S2AState = {"messages": [*state["messages"][:3], message]}
    assert S2AMiddleware(llm=judge()).before_model(filtered, Runtime()) is None


class Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.names: dict[UUID, str] = {}
        self.parents: dict[UUID, UUID | None] = {}

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any
    ) -> None:
        self.names[run_id], self.parents[run_id] = kw.get("name") or "", parent_run_id

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any
    ) -> None:
        self.names[run_id], self.parents[run_id] = "chat model", parent_run_id

    def ancestors(self, run: UUID) -> list[str]:
        names = []
        parent = self.parents.get(run)
        while parent is not None:
            names.append(self.names.get(parent, "?"))
            parent = self.parents.get(parent)
        return names


@pytest.mark.parametrize(
    ("s2a", "step"),
    [
        (S2ARunnable(llm=judge()), "S2ARunnable"),
        (
            S2ADocumentCompressor(llm=FakeListChatModel(responses=["1 keep\n2 drop"]), fusion=None),
            "S2ADocumentCompressor",
        ),
    ],
    ids=["runnable", "compressor"],
)
def test_s2a_runs_nest_under_the_hook_and_stay_out_of_the_message_stream(
    s2a: S2ARunnable | S2ADocumentCompressor, step: str
) -> None:
    runs = Runs()
    built, _ = agent(S2AMiddleware(s2a), "search")
    chunks = built.stream(ask(), {"callbacks": [runs]}, stream_mode="messages")
    streamed = cast("list[tuple[BaseMessage, dict[str, Any]]]", list(chunks))

    s2a_runs = [run for run, name in runs.names.items() if name == step]
    assert s2a_runs
    for run in s2a_runs:
        assert runs.ancestors(run)[0] == "S2AMiddleware.before_model"
        assert runs.ancestors(run)[-1] == "LangGraph"
    model_calls = [run for run, name in runs.names.items() if name == "chat model"]
    assert any(step in runs.ancestors(run) for run in model_calls)
    # The agent's own messages stream; the S2A step's replies, made in the hook, do not.
    assert "Guido van Rossum." in [chunk.content for chunk, _ in streamed]
    assert {meta["langgraph_node"] for _, meta in streamed} == {"model", "tools"}


def test_bad_settings_name_the_problem() -> None:
    llm = FakeListChatModel(responses=["keep"])
    with pytest.raises(ValueError, match="not both"):
        S2AMiddleware(S2ARunnable(llm=llm), llm=llm)
    with pytest.raises(ValueError, match="needs one S2A step"):
        S2AMiddleware()
    with pytest.raises(ValueError, match=r"\['variant'\] build an S2ARunnable"):
        S2AMiddleware(S2ARunnable(llm=llm), variant="separated")
    with pytest.raises(TypeError, match="got FakeListChatModel"):
        S2AMiddleware(llm)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"tool_names=\['search'\]"):
        S2AMiddleware(llm=llm, tool_names="search")
    with pytest.raises(ValueError, match="min_chars"):
        S2AMiddleware(llm=llm, min_chars=-1)
    with pytest.raises(ValueError, match="tempreature"):
        S2AMiddleware(llm=llm, tempreature=0.1)
