"""Tool calling end to end on the real model: a call, its result sent back, and LangChain's `bind_tools`.

The server constrains the reply with TGI's tool grammar (s2a/local/tools.py), so the call parses
whatever the model; what the model puts in it is the model's. Greedy, and short: each request
takes 10-60 s on a 2-core CPU.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from langchain_core.tools import tool

from langchain_s2a import tgi_chat_model
from tests.openapi import sse_events, validate, validate_named

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "What's the weather in Paris?"}]


def test_a_call_then_its_result(server_url: str) -> None:
    url = f"{server_url}/v1/chat/completions"
    body = {"messages": ASK, "tools": [WEATHER], "tool_choice": "required", "temperature": 0}
    body["max_tokens"] = 60
    reply = httpx.post(url, json=body, timeout=300)
    assert reply.status_code == 200, reply.text
    validate(reply.json(), "/v1/chat/completions", "post", 200)
    message = reply.json()["choices"][0]["message"]
    (call,) = message["tool_calls"]
    assert (call["id"], call["type"], call["function"]["name"]) == ("0", "function", "get_weather")
    assert "paris" in json.loads(call["function"]["arguments"])["city"].lower()

    result = {"role": "tool", "content": "18 degrees C, light rain", "tool_call_id": call["id"]}
    answer = httpx.post(
        url,
        json={"messages": [*ASK, message, result], "temperature": 0, "max_tokens": 40, "stream": True},
        timeout=300,
    )
    chunks = [json.loads(payload) for payload in sse_events(answer.text)[:-1]]
    for chunk in chunks:
        validate_named(chunk, "ChatCompletionChunk")
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "18" in text


def test_langchain_bind_tools_gets_the_call(server_url: str) -> None:
    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return f"18 degrees C, light rain in {city}"

    model = tgi_chat_model(server_url, max_new_tokens=60).bind_tools([get_weather], tool_choice="get_weather")
    reply = model.invoke("What's the weather in Paris?")
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather"
    assert "paris" in str(call["args"]["city"]).lower()
