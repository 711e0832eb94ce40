"""Running S2A with huggingface_hub's TGI client: the framework-free path the CLI uses."""

from __future__ import annotations

from typing import Any

from huggingface_hub import InferenceClient

from s2a._faults import DEFAULT_RETRY, RetryPolicy, call_with_retries
from s2a._steps import run_step
from s2a._types import ChatMessage, S2AInput, S2AResult, TokenUsage
from s2a.tgi import Decoding
from s2a.variants import S2AConfig, prepare


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


def run_s2a(
    client: InferenceClient,
    inp: S2AInput,
    config: S2AConfig,
    decoding: Decoding,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> S2AResult:
    """The S2A step through a TGI server's chat route (JSON-constrained when extractive).

    A failed call is retried per `retry`, then falls back to the original input, flagged
    (or raises `S2ACallError` with `fallback="raise"`).
    """
    return run_step(
        prepare(inp, config),
        lambda request: chat(client, list(request.messages), decoding, request.json_schema),
        retry,
    )


def answer(
    client: InferenceClient, prompt: str, decoding: Decoding, retry: RetryPolicy = DEFAULT_RETRY
) -> str:
    """The answer step: the model's reply to the regenerated prompt.

    Raises:
        S2ACallError: the call failed, retries included.

    """
    messages: list[ChatMessage] = [{"role": "user", "content": prompt}]
    return call_with_retries(lambda: chat(client, messages, decoding), retry)[0]
