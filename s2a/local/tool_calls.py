"""A tool-constrained reply as TGI returns it: `tool_calls`, plain or streamed (TGI 3.3.6).

The grammar (tools.py) makes the reply `{"function": {"_name": ..., ...arguments}}`. A plain
reply's call becomes one `tool_calls` entry with `id` "0", `description: null` and the arguments
as a JSON string (router/src/chat.rs, `parse_output`; lib.rs, `FunctionDefinition`'s
`serialize_as_string`); a `no_tool` call means "answer in text", which the route does by
generating again without the tools. A stream sends the function's name once, then the
arguments' text as the model writes it (chat.rs, `ChatState`).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from s2a.local.chat_request import Message
from s2a.local.tools import NO_TOOL, compact, tool_error

__all__ = [
    "NO_TOOL",
    "Call",
    "ToolDelta",
    "ToolStream",
    "next_tool_call_id",
    "parse_reply",
    "read_call",
    "tool_calls",
]

_USIZE = re.compile(r"\+?[0-9]+")
_NAME_MEMBER = re.compile(r'\s*\{\s*"function"\s*:\s*\{\s*"_name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*(?:,|(?=\}))')
"""A call's opening up to its complete name: the name's closing quote and the `,` or `}` after it."""


@dataclass(frozen=True)
class Call:
    """A call the model generated: the function's name and its arguments, in their order."""

    name: str
    arguments: dict[str, Any]


def read_call(text: str) -> Call | None:
    """The call in `text` if it is a whole `{"function": {"_name": ...}}`, else None (chat.rs, `Call`)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    function = value.get("function") if isinstance(value, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("_name"), str):
        return None
    return Call(function["_name"], {key: item for key, item in function.items() if key != "_name"})


def parse_reply(text: str, finish_reason: str) -> Call:
    """The call in a whole reply (chat.rs, `parse_output`); a 422 `tool_error` if it is not one.

    Raises:
        RequestError: the reply is not a call, because it was cut at `max_tokens` (or, with a
            grammar in force, cannot otherwise be).

    """
    call = read_call(text)
    if call is None:
        why = (
            "the reply reached `max_tokens` before the call was complete; raise `max_tokens`"
            if finish_reason == "length"
            else "the reply is not a call of one of the tools"
        )
        msg = f"Failed to parse generated text: {why}: {text!r}"
        raise tool_error(msg)
    return call


def tool_calls(call: Call, call_id: str = "0") -> list[dict[str, Any]]:
    """TGI's `tool_calls` for one call: id "0", `description: null`, the arguments as a JSON string."""
    function = {"description": None, "name": call.name, "arguments": compact(call.arguments)}
    return [{"id": call_id, "type": "function", "function": function}]


def next_tool_call_id(messages: list[Message]) -> str:
    """The id a streamed call gets (lib.rs, `ChatRequest::next_tool_call_id`).

    One more than the largest id of the calls sent back, if every id is a number ("0" if there
    are none); otherwise a random UUID.
    """
    ids = [call.id for message in messages for call in message.tool_calls or []]
    if all(_USIZE.fullmatch(call_id) and int(call_id) < 2**64 for call_id in ids):
        return str(max((int(call_id) + 1 for call_id in ids), default=0))
    return str(uuid.uuid4())


@dataclass(frozen=True)
class ToolDelta:
    """One streamed piece of a call: the function's name (first piece only) and arguments text."""

    name: str | None
    arguments: str


class ToolStream:
    """TGI's `ChatState` (chat.rs): a streamed reply under a tool grammar, token by token.

    It buffers until the function's name is complete; then sends the name with the arguments'
    `{`, and each later token as arguments text, dropping the call's own closing brace from the
    token that completes the call. The concatenated arguments are the call's arguments object
    as the model wrote it (`{ "city": "Paris"}`).

    Where TGI's output would be wrong, this departs from it. TGI takes the name to be complete
    when the text so far, stripped of trailing `}`, `,` and spaces and closed with `}}`, parses
    as a call; that never happens for some tokenisations (the whole call in one token whose last
    argument is an object), and text that came in the name's token after the name (`", "city`,
    or `"}}` for a function without arguments) is lost. Here the name is complete once its
    closing quote and the `,` or `}` after it have come (the grammar puts `_name` first), and
    that text goes into the first piece. Tokens after the call are ignored (TGI starts over).
    """

    def __init__(self) -> None:
        self.text = ""
        self.state: Literal["buffering", "tool", "done"] = "buffering"
        self.chose_no_tool = False
        """Whether the model picked `no_tool`: the caller generates again without the tools."""

    @property
    def started(self) -> bool:
        """Whether the call's name has been sent."""
        return self.state != "buffering"

    def push(self, piece: str) -> ToolDelta | Literal["no_tool"] | None:
        """Take one token's text: a piece to send, "no_tool" (answer in text instead), or None."""
        self.text += piece
        if self.state == "buffering":
            head = _NAME_MEMBER.match(self.text)
            if head is None:
                return None
            return self._named(json.loads(f'"{head.group(1)}"'), self.text[head.end() :])
        if self.state == "tool":
            return ToolDelta(None, self._arguments(piece))
        return None

    def finish(self) -> ToolDelta | Literal["no_tool"] | None:
        """At the end of the reply: the whole call, if it is one and was not sent (not under the grammar)."""
        call = read_call(self.text) if self.state == "buffering" else None
        if call is None or call.name == NO_TOOL:
            self.chose_no_tool = call is not None
            return "no_tool" if call is not None else None
        self.state = "done"
        return ToolDelta(call.name, compact(call.arguments))

    def _named(self, name: str, rest: str) -> ToolDelta | Literal["no_tool"]:
        if name == NO_TOOL:
            self.chose_no_tool = True
            return "no_tool"
        self.state = "tool"
        return ToolDelta(name, "{" + self._arguments(rest))

    def _arguments(self, piece: str) -> str:
        if read_call(self.text) is None:
            return piece
        self.state = "done"
        piece = piece.rstrip()
        return piece[:-1] if piece.endswith("}") else piece
