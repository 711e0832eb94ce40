"""`tgi_chat_model`'s tool calling and structured output as LangChain's conventions have them, on TGI 3.

langchain-huggingface 1.2 sends `tool_choice="any"` as a function named "any", takes a
`tool_choice` with one tool only, refuses pydantic schemas in `with_structured_output`, and
sends `tool_use` content blocks TGI cannot read. What goes out is read from the in-memory TGI.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import BaseModel

from langchain_s2a import tgi_chat_model
from tests.fake_tgi import FakeTGI

URL = "http://tgi.test:8080"


def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return city


def get_time(zone: str) -> str:
    """Get the time in a zone."""
    return zone


class Person(BaseModel):
    """A person."""

    name: str
    age: int


def sent(fake_tgi: FakeTGI) -> dict[str, Any]:
    return fake_tgi.bodies("/v1/chat/completions")[-1]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("any", "required"),
        (True, "required"),
        ("required", "required"),
        ("auto", "auto"),
        ("none", "none"),
        ("get_time", {"type": "function", "function": {"name": "get_time"}}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"type": "function", "function": {"name": "get_time"}},
        ),
    ],
)
def test_tool_choice_as_tgi_reads_it(fake_tgi: FakeTGI, choice: Any, expected: Any) -> None:
    llm = tgi_chat_model(URL).bind_tools([get_weather, get_time], tool_choice=choice)  # two tools: fine
    llm.invoke("weather in Paris?")
    body = sent(fake_tgi)
    assert body["tool_choice"] == expected
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]


def test_no_tool_choice_sends_none(fake_tgi: FakeTGI) -> None:
    tgi_chat_model(URL).bind_tools([get_weather]).invoke("hi")
    assert "tool_choice" not in sent(fake_tgi)


def test_a_choice_naming_no_tool_is_refused() -> None:
    with pytest.raises(ValueError, match="names no bound tool; the tools are get_weather"):
        tgi_chat_model(URL).bind_tools([get_weather], tool_choice="get_time")


def test_structured_output_takes_pydantic_schemas(fake_tgi: FakeTGI) -> None:
    result = tgi_chat_model(URL).with_structured_output(Person, include_raw=True).invoke("Anna is 30.")
    body = sent(fake_tgi)
    assert body["tool_choice"] == "required"
    assert body["tools"][0]["function"]["name"] == "Person"
    assert isinstance(result, dict)
    assert result["parsed"] is None  # the fake TGI answers in text, not with a call


def test_tool_use_blocks_are_left_out_of_the_messages(fake_tgi: FakeTGI) -> None:
    call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "0", "type": "tool_call"}
    history = [
        HumanMessage("weather in Paris?"),
        AIMessage(
            content=[
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "0", "name": "get_weather", "input": {"city": "Paris"}},
            ],
            tool_calls=[call],
        ),
        ToolMessage("sunny", tool_call_id="0"),
    ]
    tgi_chat_model(URL).bind_tools([get_weather]).invoke(history)
    assistant = sent(fake_tgi)["messages"][1]
    assert assistant["content"] == [{"type": "text", "text": "Let me look."}]
    assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
