"""`tgi_llm` calling tools, plain and streamed, through the local server's real HTTP app over the fake engine.

llama-index-llms-huggingface-api 0.8 reads TGI 2's tool-call shapes; `tgi_llm` reads TGI 3's
(what the local server sends, checked against TGI's OpenAPI document in
test_local_server_tools.py). Here every request goes through huggingface_hub to that app, so a
shape that llama-index, huggingface_hub and the server do not agree on fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from huggingface_hub import close_session, set_async_client_factory, set_client_factory
from huggingface_hub.utils._http import default_async_client_factory, default_client_factory
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.tools import FunctionTool

from llamaindex_s2a import tgi_llm
from s2a.local.server import create_app
from tests.fake_engine import FakeEngine
from tests.unit.test_local_server import wait_ready
from tests.unit.test_local_server_tools import NO_TOOL, PARIS, SETTINGS

URL = "http://tgi.test:8080"


def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"Sunny in {city}."


WEATHER = FunctionTool.from_defaults(fn=get_weather)


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    """The fake engine behind the local server's app, which every huggingface_hub request reaches."""
    engine = FakeEngine()
    app = create_app(SETTINGS, lambda: engine)
    with TestClient(app) as client:
        wait_ready(client)

        def forward(request: httpx.Request) -> httpx.Response:  # streams arrive whole; they parse the same
            url, body = str(request.url), request.read()
            reply = client.request(request.method, url, headers=request.headers, content=body)
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

        set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(forward)))
        set_async_client_factory(lambda: httpx.AsyncClient(transport=httpx.ASGITransport(app=app)))
        close_session()
        try:
            yield engine
        finally:
            close_session()
            set_client_factory(default_client_factory)
            set_async_client_factory(default_async_client_factory)


def selections(llm: Any, response: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(s.tool_name, s.tool_kwargs) for s in llm.get_tool_calls_from_response(response)]


def test_is_a_function_calling_llm(engine: FakeEngine) -> None:
    assert tgi_llm(URL, max_new_tokens=32).metadata.is_function_calling_model


def test_a_call_reads_its_arguments(engine: FakeEngine) -> None:
    engine.replies = [PARIS]
    llm = tgi_llm(URL, max_new_tokens=32)
    response = llm.chat_with_tools([WEATHER], user_msg="weather in Paris?")
    assert selections(llm, response) == [("get_weather", {"city": "Paris"})]


async def test_a_call_reads_its_arguments_async(engine: FakeEngine) -> None:
    engine.replies = [PARIS]
    llm = tgi_llm(URL, max_new_tokens=32)
    response = await llm.achat_with_tools([WEATHER], user_msg="weather in Paris?")
    assert selections(llm, response) == [("get_weather", {"city": "Paris"})]


def test_a_streamed_call_is_whole_at_the_end(engine: FakeEngine) -> None:
    engine.replies = [PARIS]
    llm = tgi_llm(URL, max_new_tokens=32)
    responses = list(llm.stream_chat_with_tools([WEATHER], user_msg="weather in Paris?"))
    seen = [llm.get_tool_calls_from_response(r, error_on_no_tool_call=False) for r in responses]
    assert selections(llm, responses[-1]) == [("get_weather", {"city": "Paris"})]
    assert all(s.tool_name == "get_weather" for call in seen for s in call)  # partial ones parse too


async def test_a_streamed_call_is_whole_at_the_end_async(engine: FakeEngine) -> None:
    engine.replies = [PARIS]
    llm = tgi_llm(URL, max_new_tokens=32)
    responses = [r async for r in await llm.astream_chat_with_tools([WEATHER], user_msg="weather in Paris?")]
    assert selections(llm, responses[-1]) == [("get_weather", {"city": "Paris"})]


def test_no_tool_is_a_text_reply(engine: FakeEngine) -> None:
    engine.replies = [NO_TOOL, ["It", " is", " sunny"]]
    llm = tgi_llm(URL, max_new_tokens=32)
    response = llm.chat_with_tools([WEATHER], user_msg="hi")
    assert response.message.content == "It is sunny"
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="called none"):
        llm.get_tool_calls_from_response(response)


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("get_weather", {"function": {"name": "get_weather"}}),
        ("required", "required"),
        ("none", "none"),
        (None, "auto"),
    ],
)
def test_tool_choice_is_passed_on(engine: FakeEngine, choice: str | None, sent: Any) -> None:
    llm = tgi_llm(URL, max_new_tokens=32)
    prepared = llm._prepare_chat_with_tools([WEATHER], user_msg="hi", tool_choice=choice)
    assert prepared["tool_choice"] == sent


def test_tool_choice_none_reaches_the_server(engine: FakeEngine) -> None:
    response = tgi_llm(URL, max_new_tokens=32).chat_with_tools([WEATHER], user_msg="hi", tool_choice="none")
    assert response.message.content.startswith(" echo")  # the fake engine's plain reply
    assert engine.samplings[-1].json_schema is None  # no tool grammar


def test_a_second_turn_sends_the_call_and_its_result(engine: FakeEngine) -> None:
    engine.replies = [PARIS, NO_TOOL, ["Sunny"]]
    llm = tgi_llm(URL, max_new_tokens=32)
    first = llm.chat_with_tools([WEATHER], user_msg="weather in Paris?")
    result = ChatMessage(
        role=MessageRole.TOOL, content="Sunny in Paris.", additional_kwargs={"tool_call_id": "0"}
    )
    history = [ChatMessage(role=MessageRole.USER, content="weather in Paris?"), first.message, result]
    assert llm.chat_with_tools([WEATHER], chat_history=history).message.content == "Sunny"
    messages, _ = engine.templated[1]
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"  # not the call's id
    assert messages[2]["role"] == "tool"
    assert messages[2]["content"].startswith("Sunny in Paris.")  # the server appends the tool prompt


@pytest.mark.parametrize("streaming", [False, True])
async def test_function_agent_calls_the_tool_and_answers(engine: FakeEngine, streaming: bool) -> None:
    engine.replies = [PARIS, NO_TOOL, ["Sunny", " in", " Paris."]]
    agent = FunctionAgent(tools=[WEATHER], llm=tgi_llm(URL, max_new_tokens=32), streaming=streaming)
    handler = agent.run(user_msg="weather in Paris?")
    calls = [e async for e in handler.stream_events() if isinstance(e, ToolCallResult)]
    answer = await handler
    assert [(c.tool_name, c.tool_kwargs, c.tool_output.content) for c in calls] == [
        ("get_weather", {"city": "Paris"}, "Sunny in Paris.")
    ]
    assert str(answer) == "Sunny in Paris."
