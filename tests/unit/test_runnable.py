from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel, FakeListLLM
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel, ParrotFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.tools import BaseTool

from langchain_s2a import S2ARunnable, create_s2a_chain
from s2a import S2AParseError, S2AResult

PROMPT = "Mary has 3 apples. I think the answer is 4. How many apples does Mary have?"
REWRITE = "Context: Mary has 3 apples.\nQuestion: How many apples does Mary have?"
INPUTS: list[Any] = [
    PROMPT,
    {"context": "Mary has 3 apples. Tom likes cars.", "question": "How many apples?"},
    {"messages": [("human", "I love Paris."), ("ai", "Nice."), ("human", "Where is Paris?")]},
]


def make(response: str = REWRITE, **kwargs: Any) -> S2ARunnable:
    return S2ARunnable(llm=FakeListChatModel(responses=[response]), **{"variant": "separated", **kwargs})


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.chains: dict[UUID, tuple[str, UUID | None]] = {}
        self.models: list[UUID | None] = []
        self.errors: list[BaseException] = []

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any
    ) -> None:
        self.chains[run_id] = (kw.get("name") or "", parent_run_id)

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kw: Any,
    ) -> None:
        self.models.append(parent_run_id)

    def on_llm_start(
        self,
        serialized: Any,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kw: Any,
    ) -> None:
        self.models.append(parent_run_id)

    def on_chain_error(self, error: BaseException, **kw: Any) -> None:
        self.errors.append(error)

    def run_named(self, name: str) -> UUID:
        return next(run_id for run_id, (n, _) in self.chains.items() if n == name)


class AsyncRecorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.chains: dict[UUID, str] = {}
        self.models: list[UUID | None] = []

    async def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any
    ) -> None:
        self.chains[run_id] = kw.get("name") or ""

    async def on_chat_model_start(
        self,
        serialized: Any,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kw: Any,
    ) -> None:
        self.models.append(parent_run_id)


@pytest.mark.parametrize("value", INPUTS)
async def test_sync_async_batch_stream_agree(value: Any) -> None:
    s2a = make()
    expected = s2a.invoke(value)
    assert isinstance(expected, S2AResult)
    assert await s2a.ainvoke(value) == expected
    assert s2a.batch([value, value]) == [expected, expected]
    assert await s2a.abatch([value, value]) == [expected, expected]
    assert list(s2a.stream(value)) == [expected]
    assert [chunk async for chunk in s2a.astream(value)] == [expected]


def test_input_forms() -> None:
    s2a = make()
    plain = s2a.invoke(PROMPT)
    assert (plain.context, plain.question) == ("Mary has 3 apples.", "How many apples does Mary have?")
    known = s2a.invoke(INPUTS[1])
    assert known.question == "How many apples?"  # the caller's question, not the model's
    history = s2a.invoke(INPUTS[2])
    assert history.question == "Where is Paris?"
    prompt_value = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")]).invoke(
        {"q": "Why?"}
    )
    assert s2a.invoke(prompt_value).question == "Why?"  # type: ignore[arg-type]
    messages = [SystemMessage("Be brief."), HumanMessage("I love Paris."), HumanMessage("Where is Paris?")]
    assert s2a.invoke({"messages": messages}).question == "Where is Paris?"


def test_history_turns_reach_the_model_as_context() -> None:
    parrot = ParrotFakeChatModel()
    result = S2ARunnable(variant="separated", llm=parrot, fallback="original").invoke(INPUTS[2])
    assert result.raw is not None
    assert "User: I love Paris.\nAssistant: Nice." in result.raw
    assert result.question == "Where is Paris?"


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (42, TypeError, "must be a str, a dict"),
        ({"context": 3, "question": "Why?"}, TypeError, "'context' must be a str"),
        ({"context": "a", "qestion": "Why?"}, ValueError, r"unknown input keys \['qestion'\]"),
        ({"messages": "hello"}, TypeError, "`messages` must be a list"),
        ({"messages": [("ai", "hi")]}, ValueError, "no user message"),
        ({"messages": [("human", "hi")], "context": "x"}, ValueError, "takes no other keys"),
        ("   ", ValueError, "S2A input is empty"),
    ],
)
def test_bad_input_names_the_problem(value: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make().invoke(value)


def test_callbacks_nest_the_llm_run_under_the_s2a_run() -> None:
    recorder = Recorder()
    make().invoke(PROMPT, config={"callbacks": [recorder]})
    s2a_run = recorder.run_named("S2ARunnable")
    assert recorder.models == [s2a_run]


async def test_async_callbacks_nest_the_llm_run_under_the_s2a_run() -> None:
    recorder = AsyncRecorder()
    await make().ainvoke(PROMPT, config={"callbacks": [recorder]})
    (s2a_run,) = [run_id for run_id, name in recorder.chains.items() if name == "S2ARunnable"]
    assert recorder.models == [s2a_run]


def test_config_reaches_the_inner_call() -> None:
    recorder = Recorder()
    make().with_config(run_name="filter", tags=["s2a"]).invoke(PROMPT, config={"callbacks": [recorder]})
    assert recorder.models == [recorder.run_named("filter")]


def test_llm_not_chat_model() -> None:
    result = S2ARunnable(variant="separated", llm=FakeListLLM(responses=[REWRITE])).invoke(PROMPT)
    assert result.context == "Mary has 3 apples."
    recorder = Recorder()
    S2ARunnable(variant="separated", llm=FakeListLLM(responses=[REWRITE])).invoke(
        PROMPT, config={"callbacks": [recorder]}
    )
    assert recorder.models == [recorder.run_named("S2ARunnable")]


def test_usage_is_reported() -> None:
    message = AIMessage(REWRITE, usage_metadata={"input_tokens": 50, "output_tokens": 12, "total_tokens": 62})
    result = S2ARunnable(variant="separated", llm=GenericFakeChatModel(messages=iter([message]))).invoke(
        PROMPT
    )
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (50, 12, 62)


def test_fallback_flags_and_raise_raises() -> None:
    kept = make("I cannot help with that.").invoke(PROMPT)
    assert kept.fallback is not None
    assert kept.prompt == PROMPT
    recorder = Recorder()
    with pytest.raises(S2AParseError) as info:
        make("I cannot help with that.", fallback="raise").invoke(PROMPT, config={"callbacks": [recorder]})
    assert info.value.raw == "I cannot help with that."
    assert recorder.errors == [info.value]


def test_extractive_through_a_fake_model() -> None:
    result = make('{"keep": [1]}', variant="extractive").invoke(PROMPT)
    assert (result.context, result.question, result.kept) == (
        "Mary has 3 apples.",
        "How many apples does Mary have?",
        [1, 3],
    )
    assert result.prompt == "Mary has 3 apples. How many apples does Mary have?"


def test_instructed_calls_no_model() -> None:
    recorder = Recorder()
    result = make(variant="instructed").invoke(PROMPT, config={"callbacks": [recorder]})
    assert recorder.models == []
    assert result.prompt.startswith(PROMPT)


def test_lcel_composition() -> None:
    answer = ParrotFakeChatModel()
    # A one-variable prompt receives the S2A prompt (LangChain types prompt input as a dict,
    # hence the ignore; at run time it fills the single variable).
    prompt = PromptTemplate.from_template("Answer this.\n{s2a}")
    chain = make() | prompt | answer | StrOutputParser()  # type: ignore[operator]
    out = chain.invoke(PROMPT)
    assert out.startswith("Answer this.\nMary has 3 apples.")
    assert "I think" not in out


def test_lcel_with_context_and_question_variables() -> None:
    prompt = ChatPromptTemplate.from_template("Facts: {context}\nAnswer: {question}")
    chain = make() | (lambda result: result.model_dump()) | prompt | ParrotFakeChatModel() | StrOutputParser()
    assert chain.invoke(PROMPT) == "Facts: Mary has 3 apples.\nAnswer: How many apples does Mary have?"


def test_create_s2a_chain_answers_from_the_regenerated_prompt() -> None:
    chain = create_s2a_chain(
        FakeListChatModel(responses=[REWRITE]), answer_llm=ParrotFakeChatModel(), variant="separated"
    )
    out = chain.invoke(PROMPT)
    assert out == make().invoke(PROMPT).prompt
    single = create_s2a_chain(FakeListChatModel(responses=[REWRITE]), variant="separated")
    assert single.invoke(PROMPT) == REWRITE  # one model for both steps


async def test_create_s2a_chain_async_and_batch() -> None:
    chain = create_s2a_chain(
        FakeListChatModel(responses=[REWRITE]), answer_llm=ParrotFakeChatModel(), variant="separated"
    )
    expected = chain.invoke(PROMPT)
    assert await chain.ainvoke(PROMPT) == expected
    assert await chain.abatch([PROMPT] * 3) == [expected] * 3


def test_as_tool() -> None:
    tool = make().as_tool()
    assert isinstance(tool, BaseTool)
    assert tool.name == "s2a_filter"
    assert set(tool.args) == {"context", "question"}
    result = tool.invoke({"context": "Mary has 3 apples. I love cats.", "question": "How many apples?"})
    assert isinstance(result, S2AResult)
    assert result.question == "How many apples?"
    call = {
        "type": "tool_call",
        "id": "1",
        "name": "s2a_filter",
        "args": {"context": "x y", "question": "Why?"},
    }
    message = tool.invoke(call)
    assert isinstance(message, ToolMessage)
    assert message.content == make().invoke({"context": "x y", "question": "Why?"}).prompt


async def test_as_tool_async_and_custom_name() -> None:
    tool = make().as_tool(name="clean_search_results", description="Filter search results.")
    assert tool.name == "clean_search_results"
    result = await tool.ainvoke({"context": "Mary has 3 apples.", "question": "How many?"})
    assert result.question == "How many?"


def test_types_and_schema() -> None:
    s2a = make()
    assert s2a.OutputType is S2AResult
    schema = s2a.get_input_jsonschema()
    assert "anyOf" in schema
    assert s2a.get_name() == "S2ARunnable"


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ValueError, match="variant"):
        make(variant="nope")
    with pytest.raises(ValueError, match="tempreature"):
        S2ARunnable(variant="separated", llm=FakeListChatModel(responses=["x"]), tempreature=0)  # type: ignore[call-arg]
