"""Tool calling on the local server's chat route, TGI's way (s2a/local/tools.py), over the fake engine.

The grammar for each `tool_choice`, the prompt TGI builds, the reply's shapes (checked against
TGI's OpenAPI document), `no_tool`, streaming, multi-turn messages and every refusal.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from s2a.local import tool_calls, tools
from s2a.local.chat_request import ChatRequest
from s2a.local.engine import InputError, Sampling
from s2a.local.llama import _grammar_error
from s2a.local.protocol import RequestError
from s2a.local.server import ServerSettings, create_app
from tests.fake_engine import FakeEngine
from tests.openapi import sse_events, validate, validate_named
from tests.unit.test_local_server import wait_ready

SETTINGS = ServerSettings(
    model_id="fake/model", max_concurrent_requests=4, max_input_tokens=200, max_total_tokens=260
)
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
TIME: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_time", "arguments": {"type": "object", "properties": {}}},
}
ASK = [{"role": "user", "content": "weather in Paris?"}]
PARIS = ['{"function":', ' {"_name":', ' "get_weather",', ' "city":', ' "Paris"', "}}"]
NO_TOOL = ['{"function":', ' {"_name":', ' "no_tool"', "}}"]


def serve(engine: FakeEngine) -> Iterator[TestClient]:
    with TestClient(create_app(SETTINGS, lambda: engine)) as client:
        wait_ready(client)
        yield client


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def client(engine: FakeEngine) -> Iterator[TestClient]:
    yield from serve(engine)


def chat(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/chat/completions", json={"messages": ASK, "tools": [WEATHER], **body})


def streamed(response: Any) -> list[dict[str, Any]]:
    payloads = sse_events(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(payload) for payload in payloads[:-1]]
    for chunk in chunks:
        validate_named(chunk, "ChatCompletionChunk")
    return chunks


def request(**body: Any) -> ChatRequest:
    return ChatRequest.model_validate({"messages": ASK, **body})


# The grammar -------------------------------------------------------------------------------


def grammar_for(tool_list: list[dict[str, Any]], tool_choice: Any = None) -> dict[str, Any]:
    plan = tools.plan(request(tools=tool_list, tool_choice=tool_choice))
    assert plan is not None
    assert not _grammar_error("json_schema", json.dumps(plan.grammar))  # llguidance compiles it
    return plan.grammar


def choices(grammar: dict[str, Any]) -> list[str]:
    return [ref["$ref"].rsplit("/", 1)[-1] for ref in grammar["properties"]["function"]["anyOf"]]


def test_auto_offers_every_tool_and_no_tool() -> None:
    grammar = grammar_for([WEATHER, TIME])
    assert choices(grammar) == ["get_weather", "get_time", "no_tool"]
    assert grammar["$functions"]["get_weather"] == {
        "description": "Get the weather",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "_name": {"type": "string", "const": "get_weather"},
            "city": {"type": "string"},
            "unit": {"enum": ["c", "f"]},
        },
        "required": ["_name", "city"],
    }
    assert grammar["$functions"]["no_tool"]["description"] == (
        "Open ended response with no specific tool selected"
    )
    assert grammar_for([WEATHER], "auto") == grammar_for([WEATHER])


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("required", ["get_weather", "get_time"]),
        ({"function": {"name": "get_time"}}, ["get_time"]),
        ({"type": "function", "function": {"name": "get_weather"}}, ["get_weather"]),
        ("get_time", ["get_time"]),  # TGI reads any other string as a function's name
    ],
)
def test_required_and_named_choices(tool_choice: Any, expected: list[str]) -> None:
    assert choices(grammar_for([WEATHER, TIME], tool_choice)) == expected


def test_none_and_no_tools_are_a_plain_chat() -> None:
    assert tools.plan(request(tools=[WEATHER], tool_choice="none")) is None
    assert tools.plan(request(tool_choice="auto")) is None
    assert tools.plan(request(tools=[], tool_choice="none")) is None


@pytest.mark.parametrize(
    ("call", "tool_choice", "valid"),
    [
        ({"function": {"_name": "get_weather", "city": "Paris"}}, None, True),
        ({"function": {"_name": "get_weather", "city": "Paris", "unit": "c"}}, None, True),
        ({"function": {"_name": "no_tool"}}, None, True),
        ({"function": {"_name": "no_tool"}}, "required", False),
        ({"function": {"_name": "get_weather"}}, None, False),  # `city` is required
        ({"function": {"_name": "get_weather", "city": "Paris", "extra": 1}}, None, False),
        ({"function": {"_name": "get_time"}}, None, True),
        ({"function": {"_name": "get_time"}}, {"function": {"name": "get_weather"}}, False),
        ({}, None, False),
        ({"function": {"_name": "get_time"}, "more": 1}, None, False),
    ],
)
def test_the_grammar_admits_exactly_the_calls(call: dict[str, Any], tool_choice: Any, valid: bool) -> None:
    grammar = grammar_for([WEATHER, TIME], tool_choice)
    errors = list(jsonschema.Draft202012Validator(grammar).iter_errors(call))
    assert not errors if valid else errors


def test_additional_properties_only_when_the_string_true_as_in_tgi() -> None:
    def opened(value: Any) -> bool:
        tool = {"type": "function", "function": {"name": "f", "parameters": {"additionalProperties": value}}}
        return bool(grammar_for([tool])["$functions"]["f"]["additionalProperties"])

    assert (opened("true"), opened(True), opened(False)) == (True, False, False)


def test_definitions_move_to_the_root_where_references_find_them() -> None:
    nested = {"type": "object", "properties": {"x": {"type": "integer"}}}
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"properties": {"p": {"$ref": "#/$defs/P"}}, "$defs": {"P": nested}},
        },
    }
    grammar = grammar_for([tool])
    assert grammar["$defs"] == {"P": nested}
    validator = jsonschema.Draft202012Validator(grammar)
    assert validator.is_valid({"function": {"_name": "f", "p": {"x": 1}}})
    assert not validator.is_valid({"function": {"_name": "f", "p": {"x": "one"}}})


# Refusals ------------------------------------------------------------------------------------


def tool(name: str = "f", parameters: Any = None, kind: str = "function") -> dict[str, Any]:
    return {"type": kind, "function": {"name": name, "parameters": {} if parameters is None else parameters}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tools": [tool(kind="code")]}, "Tool error: tool `f` has type `code`; only `function` tools"),
        ({"tools": [tool("a b")]}, "tool name 'a b' must be 1 to 64 letters"),
        ({"tools": [tool("")]}, "tool name '' must be 1 to 64 letters"),
        ({"tools": [tool(), tool()]}, "two tools are named `f`; tool names must be unique"),
        ({"tools": [tool("no_tool")]}, "`no_tool` is the function that stands for a text reply"),
        ({"tools": [tool(parameters="{}")]}, "the `parameters` of tool `f` must be a JSON schema object"),
        ({"tools": [tool(parameters={"properties": []})]}, "the `properties` of tool `f` must be an object"),
        ({"tools": [tool(parameters={"properties": {"_name": {}}})]}, "tool `f` has a parameter `_name`"),
        ({"tools": [tool(parameters={"required": "x"})]}, "the `required` of tool `f` must be a list"),
        (
            {"tools": [tool()], "response_format": {"type": "json", "value": {}}},
            "Tool error: Grammar and tools are mutually exclusive",
        ),
        (
            {"tools": [tool()], "tool_choice": {"function": {"name": "g"}}},
            "Tool error: Tool with name g not found (the tools are `f`)",
        ),
        ({"tools": [tool()], "tool_choice": "g"}, "Tool with name g not found"),
        (
            {"tool_choice": "required"},
            "`tool_choice` 'required' asks for a tool call, and the request gives no",
        ),
        ({"tools": [], "tool_choice": "f"}, "`tool_choice` 'f' asks for a tool call"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools.0.function.arguments: Field"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}, "arguments": {}}}]},
            "`parameters` or `arguments` (the same field), not both",
        ),
        ({"tool_choice": {"type": "other", "function": {"name": "f"}}}, "tool_choice"),
    ],
)
def test_refusals_say_what_is_wrong(client: TestClient, body: dict[str, Any], message: str) -> None:
    for stream in (False, True):
        response = client.post("/v1/chat/completions", json={"messages": ASK, "stream": stream, **body})
        assert response.status_code == 422, response.text
        validate(response.json(), "/v1/chat/completions", "post", 422)
        assert message in response.json()["error"]
        assert response.json()["error_type"] in {"tool_error", "validation"}


class NoGrammar(FakeEngine):
    def check(self, sampling: Sampling) -> None:
        if sampling.json_schema is not None:
            msg = "the json schema cannot be turned into a grammar: unknown format"
            raise InputError(msg)


class NoToolTemplate(FakeEngine):
    def chat_prompt(self, messages: list[dict[str, Any]], tools: Any = None) -> tuple[str, list[int]]:
        if tools or any("tool_calls" in m for m in messages):
            msg = "this template has no tools"
            raise InputError(msg)
        return super().chat_prompt(messages, tools)


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        (NoGrammar(), "Tool error: the tools' parameters cannot be turned into a grammar: the json schema"),
        (
            NoToolTemplate(),
            "Tool error: the model's chat template cannot render these tools or tool messages",
        ),
    ],
)
def test_what_the_engine_refuses_is_a_tool_error(client: TestClient, message: str) -> None:
    response = chat(client)
    assert response.status_code == 422
    assert response.json() == {"error": response.json()["error"], "error_type": "tool_error"}
    assert response.json()["error"].startswith(message)


# Replies ------------------------------------------------------------------------------------


def test_a_call_is_tool_calls_with_string_arguments(engine: FakeEngine, client: TestClient) -> None:
    engine.replies = [PARIS]
    completion = chat(client, temperature=0).json()
    validate(completion, "/v1/chat/completions", "post", 200)
    assert completion["choices"][0]["message"] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "0",
                "type": "function",
                "function": {"description": None, "name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"]["completion_tokens"] == len(PARIS) + 1  # and the EOS
    assert "$functions" in (engine.samplings[-1].json_schema or {})


def test_the_fake_calls_the_first_tool_of_the_grammar(client: TestClient) -> None:
    message = chat(client, tools=[TIME, WEATHER], tool_choice="required").json()["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {
        "description": None,
        "name": "get_time",
        "arguments": "{}",
    }


def test_a_streamed_call_as_tgi_streams_it(engine: FakeEngine, client: TestClient) -> None:
    """The tokens and the arguments of TGI's own `test_chat_stream_tool_get_weather` (router/src/chat.rs)."""
    weather = {**WEATHER, "function": {**WEATHER["function"], "name": "get_current_weather"}}
    engine.replies = [
        [
            *['{"', "function", '":', ' {"', "_", "name", '":', ' "', "get", "_current", "_weather", '",'],
            *[' "', "location", '":', ' "', "San", " Francisco", ",", " CA", '",', ' "', "format", '":'],
            *[' "', "c", "elsius", '"}}'],
        ]
    ]
    body = {"tools": [weather], "stream": True, "stream_options": {"include_usage": True}}
    chunks = streamed(chat(client, **body))
    deltas = [c["choices"][0] for c in chunks if c["choices"]]
    calls = [d["delta"]["tool_calls"][0] for d in deltas]
    assert all(d["delta"]["role"] == "assistant" and "content" not in d["delta"] for d in deltas)
    assert [c["function"]["name"] for c in calls if c["function"]["name"]] == ["get_current_weather"]
    assert calls[0]["function"]["arguments"] == "{"
    assert "".join(c["function"]["arguments"] for c in calls) == (
        '{ "location": "San Francisco, CA", "format": "celsius"}'
    )
    assert {(c["index"], c["id"], c["type"]) for c in calls} == {(0, "0", "function")}
    assert [d["finish_reason"] for d in deltas] == [None] * (len(deltas) - 1) + ["stop"]
    assert chunks[-1]["usage"]["completion_tokens"] == 29


@pytest.mark.parametrize(
    ("pieces", "arguments"),
    [
        (['{"function": {"_name": "f", "', 'x": 1}}'], '{ "x": 1}'),  # text that came with the name
        (['{"function": {"_name": "f"}}'], "{}"),  # a function without arguments
        (['{"function": {"_name": "f",', ' "x": {"y": 2}', "}", "}", "\n"], '{ "x": {"y": 2}}'),
    ],
)
def test_streamed_arguments_are_the_whole_object(pieces: list[str], arguments: str) -> None:
    state = tool_calls.ToolStream()
    deltas = [state.push(piece) for piece in pieces]
    sent = [d for d in deltas if isinstance(d, tool_calls.ToolDelta)]
    assert [d.name for d in sent if d.name] == ["f"]
    assert "".join(d.arguments for d in sent) == arguments
    assert json.loads(arguments) is not None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    arguments=st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k != "_name"), JSON_VALUES),
    indent=st.sampled_from([None, 0, 2]),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30),
    trailing=st.sampled_from(["", "\n", " \n"]),
)
def test_any_tokenisation_of_a_call_streams_its_arguments(
    arguments: dict[str, Any], indent: int | None, cuts: list[int], trailing: str
) -> None:
    """However the tokens split the call, the name comes once and the arguments add up to the object."""
    text = json.dumps({"function": {"_name": "get_weather", **arguments}}, indent=indent) + trailing
    bounds = sorted({0, len(text), *(cut for cut in cuts if cut < len(text))})
    state = tool_calls.ToolStream()
    sent = [state.push(text[a:b]) for a, b in itertools.pairwise(bounds)] + [state.finish()]
    deltas = [d for d in sent if isinstance(d, tool_calls.ToolDelta)]
    assert [d.name for d in deltas if d.name] == ["get_weather"]
    assert json.loads("".join(d.arguments for d in deltas)) == arguments


def test_a_call_the_name_member_does_not_open_is_sent_whole_at_the_end() -> None:
    state = tool_calls.ToolStream()
    assert state.push('{"function": {"city": "Paris", "_name": "get_weather"}}') is None
    assert state.finish() == tool_calls.ToolDelta("get_weather", '{"city":"Paris"}')
    state = tool_calls.ToolStream()
    assert state.push('{"function": {"_name": "no_tool"}}') == "no_tool"
    assert state.chose_no_tool


@pytest.mark.parametrize("stream", [False, True])
def test_no_tool_is_answered_again_as_text(engine: FakeEngine, client: TestClient, stream: bool) -> None:
    engine.replies = [NO_TOOL, ["Hello", " there"]]
    response = chat(client, stream=stream, stream_options={"include_usage": True} if stream else None)
    if stream:
        chunks = streamed(response)
        assert "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"]) == "Hello there"
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
        usage = chunks[-1]["usage"]
    else:
        completion = response.json()
        validate(completion, "/v1/chat/completions", "post", 200)
        assert completion["choices"][0]["message"] == {"role": "assistant", "content": "Hello there"}
        usage = completion["usage"]
    assert usage["completion_tokens"] == 3  # the second generation's, as in TGI
    assert engine.samplings[-1].json_schema is None  # the second has no grammar ...
    messages, shown = engine.templated[-1]
    assert shown is None  # ... and no tools or tool prompt
    assert messages == [{"role": "user", "content": "weather in Paris?"}]


def test_tool_choice_none_is_a_plain_chat(engine: FakeEngine, client: TestClient) -> None:
    completion = chat(client, tool_choice="none").json()
    assert completion["choices"][0]["message"]["content"].startswith(" echo")
    assert engine.samplings[-1].json_schema is None
    assert engine.templated[-1][1] is None


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_cut_at_max_tokens(client: TestClient, stream: bool) -> None:
    response = chat(client, max_tokens=2, stream=stream)
    if stream:  # nothing to send as a call: an empty text reply that says why it ended
        chunks = streamed(response)
        assert chunks[-1]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    else:
        assert response.status_code == 422
        validate(response.json(), "/v1/chat/completions", "post", 422)
        assert "raise `max_tokens`" in response.json()["error"]
        assert response.json()["error"].startswith("Tool error: Failed to parse generated text")


# The prompt ---------------------------------------------------------------------------------


def test_the_template_gets_the_tools_and_the_last_message_the_tool_prompt(
    engine: FakeEngine, client: TestClient
) -> None:
    chat(client)
    messages, shown = engine.templated[-1]
    assert shown == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                **{k: WEATHER["function"][k] for k in ("description", "parameters")},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "no_tool",
                "description": "Open ended response with no specific tool selected",
                "parameters": {"type": "object"},
            },
        },
    ]
    assert messages[-1]["content"] == "weather in Paris?\n---\n" + tools.DEFAULT_TOOL_PROMPT
    chat(client, tool_prompt="Call a tool.")
    assert engine.templated[-1][0][-1]["content"] == "weather in Paris?\n---\nCall a tool."
    chat(client, tool_prompt="")
    assert engine.templated[-1][0][-1]["content"].endswith(tools.DEFAULT_TOOL_PROMPT)


def test_without_a_tools_variable_the_tools_are_appended_as_tgi_writes_them() -> None:
    engine = FakeEngine(template_renders_tools=False)
    for client in serve(engine):
        chat(client, tool_choice="get_weather", tool_prompt="Call it.")
    messages, shown = engine.templated[-1]
    assert shown is None
    schema = json.dumps(WEATHER["function"]["parameters"], separators=(",", ":"))
    listed = json.dumps(
        [
            {
                "type": "function",
                "function": {"description": "Get the weather", "name": "get_weather", "arguments": schema},
            }
        ],
        separators=(",", ":"),
    )
    assert messages[-1]["content"] == f"weather in Paris?\n---\n{listed}\nCall it."


def test_chat_tokenize_shows_the_tools(client: TestClient) -> None:
    body = {"messages": ASK, "tools": [WEATHER], "tool_prompt": "Call."}
    text = client.post("/chat_tokenize", json=body).json()["templated_text"]
    assert text == "tools: get_weather no_tool user: weather in Paris?\n---\nCall."


# Multi-turn ---------------------------------------------------------------------------------

CALLED: list[dict[str, Any]] = [
    *ASK,
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    },
    {"role": "tool", "content": "22 C, sunny", "tool_call_id": "0"},
]


def test_calls_and_results_sent_back_reach_the_template(engine: FakeEngine, client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"messages": CALLED, "tools": [WEATHER]})
    assert response.status_code == 200, response.text
    messages, _ = engine.templated[-1]
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": CALLED[1]["tool_calls"]}
    assert messages[2] == {
        "role": "tool",
        "content": "22 C, sunny\n---\n" + tools.DEFAULT_TOOL_PROMPT,  # TGI appends to the last message
        "tool_call_id": "0",
    }
    plain = client.post("/v1/chat/completions", json={"messages": CALLED, "max_tokens": 30}).json()
    assert plain["choices"][0]["message"]["content"].startswith(" echo user: weather in Paris? assistant:")


def test_object_arguments_sent_back_become_a_json_string(engine: FakeEngine, client: TestClient) -> None:
    call = {
        "id": "c",
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
    }
    messages = [*ASK, {"role": "assistant", "content": "Let me look.", "tool_calls": [call]}]
    assert client.post("/v1/chat/completions", json={"messages": messages}).status_code == 200
    sent = engine.templated[-1][0][1]
    assert sent["content"] == "Let me look."
    assert sent["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris"}'


def test_a_template_without_tool_calls_gets_them_as_tgi_writes_them() -> None:
    engine = FakeEngine(template_renders_tool_calls=False)
    for client in serve(engine):
        assert client.post("/v1/chat/completions", json={"messages": CALLED}).status_code == 200
    assert engine.templated[-1][0][1] == {
        "role": "assistant",
        "content": '[{"id":"0","type":"function","function":{"description":null,"name":"get_weather",'
        '"arguments":"{\\"city\\":\\"Paris\\"}"}}]',
    }


@pytest.mark.parametrize(
    ("ids", "expected"),
    [([], "0"), (["0"], "1"), (["3", "1"], "4"), (["+2"], "3")],
)
def test_a_streamed_call_id_follows_the_ids_sent_back(ids: list[str], expected: str) -> None:
    calls = [{"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in ids]
    messages = [*ASK, {"role": "assistant", "tool_calls": calls}] if calls else ASK
    assert tool_calls.next_tool_call_id(request(messages=messages).messages) == expected


def test_a_streamed_call_id_is_a_uuid_after_other_ids(engine: FakeEngine, client: TestClient) -> None:
    calls = [{"id": "call_abc", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    messages = [*ASK, {"role": "assistant", "tool_calls": calls}, {"role": "tool", "content": "ok"}]
    engine.replies = [PARIS]
    body = {"messages": messages, "tools": [WEATHER], "stream": True}
    chunks = streamed(client.post("/v1/chat/completions", json=body))
    ids = {c["choices"][0]["delta"]["tool_calls"][0]["id"] for c in chunks}
    assert len(ids) == 1
    assert len(ids.pop()) == 36


def test_a_message_needs_content_or_tool_calls(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"messages": [{"role": "assistant"}]})
    assert response.status_code == 422
    assert "has no `content` (and no `tool_calls`)" in response.json()["error"]


def test_parse_reply_refuses_what_is_not_a_call() -> None:
    with pytest.raises(RequestError, match="not a call of one of the tools"):
        tool_calls.parse_reply('{"function": {"name": "f"}}', "eos_token")
    assert tool_calls.parse_reply(
        '{"function": {"_name": "f", "b": 1, "a": 2}}', "eos_token"
    ) == tool_calls.Call("f", {"b": 1, "a": 2})
