"""Running S2A with huggingface_hub's TGI client: the framework-free path the CLI uses."""

from __future__ import annotations

from typing import Any

from huggingface_hub import InferenceClient

from s2a._types import ChatMessage, S2AInput, S2AResult, TokenUsage
from s2a.tgi import Decoding
from s2a.variants import S2AConfig, finish, prepare


def chat(
    client: InferenceClient,
    messages: list[ChatMessage],
    decoding: Decoding,
    schema: dict[str, Any] | None = None,
) -> tuple[str, TokenUsage | None]:
    """One chat completion on TGI's chat route; `schema` constrains the reply to JSON."""
    # TGI's own grammar form (openapi GrammarType); huggingface_hub types only OpenAI's forms.
    grammar: Any = {"type": "json", "value": schema} if schema is not None else None
    response = client.chat_completion(
        messages=[dict(m) for m in messages],
        max_tokens=decoding.max_new_tokens,
        temperature=decoding.temperature,
        top_p=decoding.top_p,
        seed=decoding.seed,
        stop=list(decoding.stop) or None,
        response_format=grammar,
    )
    text = response.choices[0].message.content or ""
    usage = response.usage
    if usage is None:
        return text, None
    return text, TokenUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def run_s2a(client: InferenceClient, inp: S2AInput, config: S2AConfig, decoding: Decoding) -> S2AResult:
    """The S2A step through a TGI server's chat route (JSON-constrained when extractive)."""
    request = prepare(inp, config)
    if not request.needs_llm:
        return finish(request)
    text, usage = chat(client, list(request.messages), decoding, request.json_schema)
    return finish(request, text, usage)


def answer(client: InferenceClient, prompt: str, decoding: Decoding) -> str:
    """The answer step: the model's reply to the regenerated prompt."""
    return chat(client, [{"role": "user", "content": prompt}], decoding)[0]
