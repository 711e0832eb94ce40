"""Tool calling on the chat route, TGI's way: a grammar built from the tools' JSON schemas.

TGI (v3.3.6) does not parse a model's own tool-call syntax. It constrains the reply to one JSON
object that names the function in `_name` beside its arguments
(router/src/infer/tool_grammar.rs, `ToolGrammar::apply`):

    {"function": {"_name": "get_weather", "city": "Paris"}}

so every reply parses, whatever the model. Under `tool_choice: "auto"` a `no_tool` function is one
of the choices; a reply that picks it is thrown away and the request generated again without
tools, as a plain text reply (router/src/server.rs, `chat_completions`). The tools reach the model
through the chat template's `tools` variable when the template has one, else as JSON appended to
the last message, and TGI's tool prompt is appended to the last message either way
(router/src/infer/chat_template.rs, `ChatTemplate::apply`).

How the reply's call becomes `tool_calls`, plain and streamed, is in tool_calls.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from s2a.local.chat_request import ChatRequest, FunctionDefinition, Message, Tool, ToolCall
from s2a.local.protocol import RequestError

DEFAULT_TOOL_PROMPT = (
    "\nGiven the functions available, please respond with a JSON for a function call with its proper "
    "arguments that best answers the given prompt. Respond in the format {name: function name, "
    "parameters: dictionary of argument name and its value}.Do not use variables.\n"
)
"""TGI's `default_tool_prompt()` (router/src/lib.rs), used when `tool_prompt` is absent or empty."""

NO_TOOL = "no_tool"
"""The function that stands for "answer in text" under `tool_choice: "auto"` (tool_grammar.rs)."""

NO_TOOL_FUNCTION = FunctionDefinition(
    name=NO_TOOL,
    description="Open ended response with no specific tool selected",
    arguments={"type": "object"},
)

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Choice = Literal["auto", "none", "required"]


def tool_error(message: str) -> RequestError:
    """A 422 with TGI's `tool_error` type ("Tool error: ...")."""
    return RequestError(message, "tool_error")


def compact(value: Any) -> str:
    """JSON as serde_json writes it: no spaces, keys in their order, no escaping of non-ASCII."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ToolPlan:
    """What a request's tools make of its generation: the tools shown, the grammar, the prompt."""

    tools: tuple[Tool, ...]
    """The tools the model may call: the request's, one of them, or them and `no_tool`."""
    grammar: dict[str, Any]
    """The JSON schema the reply must follow."""
    prompt: str
    """The tool prompt appended to the last message."""


def _choice(request: ChatRequest) -> Choice | str:
    """TGI's `ToolChoice`: none means auto, and a string other than the three names a function."""
    choice = request.tool_choice
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    return choice.function.name


def plan(request: ChatRequest) -> ToolPlan | None:
    """The tools a chat request asks the model to choose from, or None for a plain reply.

    Mirrors TGI's `ChatRequest::try_into_generate` and `ToolGrammar::apply`: `auto` adds
    `no_tool`, `required` keeps every tool, a named function keeps that one, and `none` (or no
    tools) is a plain chat. Each problem is a 422 `tool_error` saying what to change.

    Raises:
        RequestError: `tools` beside `response_format`, an unusable tool, or a `tool_choice` that
            names no given tool.

    """
    if request.tools is not None and request.response_format is not None:
        msg = "Grammar and tools are mutually exclusive"  # TGI's message (lib.rs, `try_into_generate`)
        raise tool_error(msg)
    choice = _choice(request)
    tools = request.tools or []
    if not tools:
        if choice in ("auto", "none"):
            return None
        msg = (
            f"`tool_choice` {choice!r} asks for a tool call, and the request gives no `tools`; "
            'give the tools, or use "auto" or "none"'
        )
        raise tool_error(msg)
    _check_tools(tools)
    if choice == "none":
        return None
    if choice == "auto":
        chosen = [*tools, Tool(type="function", function=NO_TOOL_FUNCTION)]
    elif choice == "required":
        chosen = list(tools)
    else:
        chosen = [tool for tool in tools if tool.function.name == choice]
        if not chosen:  # TGI's message (tool_grammar.rs, `find_tool_by_name`), and what is there
            names = ", ".join(f"`{tool.function.name}`" for tool in tools)
            msg = f"Tool with name {choice} not found (the tools are {names})"
            raise tool_error(msg)
    return ToolPlan(tuple(chosen), tool_grammar(chosen), request.tool_prompt or DEFAULT_TOOL_PROMPT)


def _check_tools(tools: list[Tool]) -> None:
    """Refuse what TGI would take and then fail on, or silently get wrong."""
    seen: set[str] = set()
    for tool in tools:
        name = tool.function.name
        if tool.type != "function":
            msg = f"tool `{name}` has type `{tool.type}`; only `function` tools are supported"
            raise tool_error(msg)
        if not _NAME.fullmatch(name):
            msg = f"tool name {name!r} must be 1 to 64 letters, digits, `_`, `-` or `.` (it is a grammar key)"
            raise tool_error(msg)
        if name == NO_TOOL:
            msg = (
                f'`{NO_TOOL}` is the function that stands for a text reply under `tool_choice: "auto"`; '
                "rename the tool"
            )
            raise tool_error(msg)
        if name in seen:
            msg = f"two tools are named `{name}`; tool names must be unique"
            raise tool_error(msg)
        seen.add(name)
        _check_schema(tool.function)


def _check_schema(function: FunctionDefinition) -> None:
    schema, name = function.arguments, function.name
    if not isinstance(schema, dict):
        msg = (
            f"the `parameters` of tool `{name}` must be a JSON schema object such as "
            f'{{"type": "object", "properties": {{...}}}}, not {type(schema).__name__}'
        )
        raise tool_error(msg)
    if not isinstance(schema.get("properties", {}), dict):
        msg = f"the `properties` of tool `{name}` must be an object of parameter schemas"
        raise tool_error(msg)
    if "_name" in schema.get("properties", {}):
        msg = f"tool `{name}` has a parameter `_name`, the key the grammar names the function with; rename it"
        raise tool_error(msg)
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(item, str) for item in required):
        msg = f"the `required` of tool `{name}` must be a list of parameter names"
        raise tool_error(msg)


def _function_schema(function: FunctionDefinition) -> dict[str, Any]:
    """One function's entry in `$functions` (tool_grammar.rs, the `functions` map).

    TGI keeps only the schema's `properties`, `required` and `additionalProperties`, puts a
    `_name` constant first, and reads `additionalProperties` as true only when it is the string
    "true" (`.as_str() == Some("true")`), so a boolean `true` closes the object too; mirrored.
    `type: object` is added: outlines (TGI's grammar engine) and llama.cpp read `properties` as
    an object anyway, llguidance (which checks the grammar here) would allow any type.
    """
    schema: dict[str, Any] = function.arguments
    properties: dict[str, Any] = {"_name": {"type": "string", "const": function.name}}
    properties.update(schema.get("properties", {}))
    return {
        "description": function.description or "",
        "type": "object",
        "additionalProperties": schema.get("additionalProperties") == "true",
        "properties": properties,
        "required": ["_name", *schema.get("required", [])],
    }


def tool_grammar(tools: list[Tool]) -> dict[str, Any]:
    """TGI's `JsonSchemaTool` for `tools`: `{"function": one of $functions}`.

    Beyond TGI's shape: the root says `type: object`, requires `function` and allows nothing
    else, so the reply always parses (outlines, under TGI, never emits properties a schema does
    not declare; llama.cpp's and llguidance's compilers would). A tool's `$defs` (or
    `definitions`), which TGI drops with the rest of the schema, move to the root, where the
    tool's `#/$defs/...` references find them.

    Raises:
        RequestError: two tools define the same `$defs` name differently.

    """
    functions = {tool.function.name: _function_schema(tool.function) for tool in tools}
    grammar: dict[str, Any] = {
        "$functions": functions,
        "properties": {"function": {"anyOf": [{"$ref": f"#/$functions/{name}"} for name in functions]}},
        "type": "object",
        "required": ["function"],
        "additionalProperties": False,
    }
    for tool in tools:
        for key in ("$defs", "definitions"):
            for def_name, definition in (tool.function.arguments.get(key) or {}).items():
                shared = grammar.setdefault(key, {})
                if shared.get(def_name, definition) != definition:
                    msg = f"two tools define `{key}/{def_name}` differently; give them distinct names"
                    raise tool_error(msg)
                shared[def_name] = definition
    return grammar


def template_tools(tools: tuple[Tool, ...]) -> list[dict[str, Any]]:
    """The tools as the chat template receives them (OpenAI's shape, which llama.cpp's template call takes).

    TGI gives its template `{"description", "name", "arguments"}` with the schema as a JSON
    string (lib.rs, `serialize_as_string`); llama.cpp rewrites any tool into
    `{"name", "description", "parameters"}` with the schema as an object, so that is what the
    template shows here. The tools are the same; the prompt's text differs in those keys.
    """
    result = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description is not None:
            function["description"] = tool.function.description
        result.append({"type": "function", "function": {**function, "parameters": tool.function.arguments}})
    return result


def prompt_suffix(tool_plan: ToolPlan, template_renders_tools: bool) -> str:
    """What TGI appends to the last message (chat_template.rs, `ChatTemplate::apply`).

    The tool prompt after a `---` line; before it the tools as JSON, as serde writes TGI's
    `Tool`, when the template has no `tools` variable to show them.
    """
    if template_renders_tools:
        return f"\n---\n{tool_plan.prompt}"
    listed = [
        {
            "type": tool.type,
            "function": {
                "description": tool.function.description,
                "name": tool.function.name,
                "arguments": compact(tool.function.arguments),
            },
        }
        for tool in tool_plan.tools
    ]
    return f"\n---\n{compact(listed)}\n{tool_plan.prompt}"


def _arguments_text(arguments: Any) -> str:
    """A sent-back call's arguments as OpenAI's JSON string (clients send a string or an object)."""
    return arguments if isinstance(arguments, str) else compact(arguments)


def _sent_call(call: ToolCall, *, described: bool = False) -> dict[str, Any]:
    """A call sent back, as OpenAI writes it, or as TGI's `ToolCall` serializes (`described`)."""
    function: dict[str, Any] = {"description": call.function.description} if described else {}
    function |= {"name": call.function.name, "arguments": _arguments_text(call.function.arguments)}
    return {"id": call.id, "type": call.type, "function": function}


def template_messages(
    messages: list[Message], *, renders_tool_calls: bool, suffix: str = ""
) -> list[dict[str, Any]]:
    """The messages as the chat template receives them, with `suffix` appended to the last one.

    An assistant message's `tool_calls` go to the template when it renders them (Qwen2.5's
    does, as `<tool_call>` blocks); otherwise they become the message's text as TGI writes it,
    the calls as JSON (lib.rs, `From<Message> for TextMessage`). A `tool` message keeps its
    `tool_call_id`. As in TGI, `suffix` goes only to a last message that has content.
    """
    result: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role, "content": message.text()}
        calls = message.tool_calls or []
        if calls and renders_tool_calls:
            entry["tool_calls"] = [_sent_call(call) for call in calls]
            if message.content is None:
                entry["content"] = None
        elif calls:
            entry["content"] += compact([_sent_call(call, described=True) for call in calls])
        if message.tool_call_id is not None:
            entry["tool_call_id"] = message.tool_call_id
        result.append(entry)
    if suffix and messages and messages[-1].content is not None:
        result[-1]["content"] += suffix
    return result
