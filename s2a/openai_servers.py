"""What constrains a reply on each OpenAI-compatible server's chat route.

s2a's grammars are TGI's: `{"type": "json", "value": schema}` or `{"type": "regex", "value":
pattern}`. TGI reads them as `response_format`; vLLM, SGLang and llama.cpp's server each read a
constraint under fields of their own (docs/deploy.md, section 6, with sources). An OpenAI client
sends these as extra body fields when the user names the server kind
(`langchain_s2a.openai_chat_model`, `llamaindex_s2a.openai_like_llm`); without a kind, nothing is
sent and the reply is parsed as any model's.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from s2a._errors import S2AConfigError

ServerKind = Literal["tgi", "vllm", "sglang", "llama.cpp"]
SERVER_KINDS: tuple[str, ...] = get_args(ServerKind)


def check_server(server: str) -> ServerKind:
    """`server` as a `ServerKind`, or a clear error naming the kinds there are."""
    if server not in SERVER_KINDS:
        msg = f"unknown server kind {server!r}; choose from {', '.join(SERVER_KINDS)}"
        raise S2AConfigError(msg)
    return server  # type: ignore[return-value]  # checked against the Literal's values


def grammar_fields(server: ServerKind, grammar: dict[str, Any]) -> dict[str, Any]:
    """The chat request's extra fields that constrain its reply to `grammar` on `server`.

    Empty where the server has no such constraint (llama.cpp's server takes no regular
    expression, only GBNF grammars): the reply is then unconstrained and parsed as today.

    Raises:
        S2AConfigError: `grammar` is not `{"type": "json" | "regex", "value": ...}`.

    """
    kind, value = grammar.get("type"), grammar.get("value")
    if kind not in ("json", "regex") or value is None:
        msg = f'a grammar is {{"type": "json" | "regex", "value": ...}}; given {grammar!r}'
        raise S2AConfigError(msg)
    if server == "tgi":
        return {"response_format": {"type": kind, "value": value}}
    if server == "vllm":  # `structured_outputs` since 0.10.2; the `guided_*` fields are ignored since 0.12
        return {"structured_outputs": {kind: value}}
    if server == "sglang":
        if kind == "regex":
            return {"regex": value}
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "s2a", "schema": value}}}
    return {"json_schema": value} if kind == "json" else {}  # llama.cpp: no regular expressions
