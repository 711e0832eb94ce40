"""Running S2A with huggingface_hub's TGI client: the framework-free path the CLI uses."""

from __future__ import annotations

from typing import Any

import httpx
from huggingface_hub import InferenceClient

from s2a._faults import DEFAULT_RETRY, RetryPolicy, call_with_retries
from s2a._steps import Reply, run_plan
from s2a._types import ChatMessage, S2AInput, S2AResult, token_logprobs, token_usage
from s2a._windows import plan_step
from s2a.tgi import Decoding, read_info
from s2a.variants import S2AConfig


def chat(
    client: InferenceClient,
    messages: list[ChatMessage],
    decoding: Decoding,
    grammar: dict[str, Any] | None = None,
    top_logprobs: int = 0,
) -> Reply:
    """One chat completion on TGI's chat route.

    `grammar` is TGI's `{"type": "json"|"regex", "value": ...}` constraint; with `top_logprobs`,
    each token's alternatives come back in `Reply.logprobs`.
    """
    # TGI's own grammar form (openapi GrammarType); huggingface_hub types only OpenAI's forms.
    response_format: Any = grammar
    response = client.chat_completion(
        messages=[dict(m) for m in messages],
        max_tokens=decoding.max_new_tokens,
        temperature=decoding.temperature,
        top_p=decoding.top_p,
        seed=decoding.seed,
        stop=list(decoding.stop) or None,
        response_format=response_format,
        logprobs=True if top_logprobs else None,
        top_logprobs=top_logprobs or None,
    )
    choice = response.choices[0]
    text, tokens = choice.message.content or "", token_usage(response.usage)
    logprobs = token_logprobs(choice.logprobs.content) if choice.logprobs is not None else None
    return Reply(text, tokens, truncated=choice.finish_reason == "length", logprobs=logprobs)


def run_s2a(
    client: InferenceClient,
    inp: S2AInput,
    config: S2AConfig,
    decoding: Decoding,
    retry: RetryPolicy = DEFAULT_RETRY,
    *,
    window_tokens: int | None = None,
) -> S2AResult:
    """The S2A step through a TGI server's chat route (its reply constrained as the variant asks).

    A failed call is retried per `retry`, then falls back to the original input, flagged
    (or raises `S2ACallError` with `fallback="raise"`). A context whose prompt exceeds
    `window_tokens` is split into parts that fit, filtered part by part and merged.
    """
    return run_plan(
        plan_step(inp, config, window_tokens=window_tokens),
        lambda request: chat(
            client,
            list(request.messages),
            decoding.model_copy(update={"max_new_tokens": request.new_tokens(decoding.max_new_tokens)}),
            request.grammar,
            request.top_logprobs,
        ),
        retry,
    )


TEMPLATE_MARGIN = 64
"""Tokens left for the chat template around the messages and the estimate's error."""


def server_window(client: InferenceClient, max_new_tokens: int) -> int | None:
    """The prompt budget a TGI server allows with `max_new_tokens` to generate, from its `/info`.

    `None` when the server does not say (the S2A step then makes one call, whatever the size).
    """
    info = read_info(str(client.model), str(client.token), httpx.Timeout(client.timeout))
    max_input, max_total = info.get("max_input_tokens"), info.get("max_total_tokens")
    if not isinstance(max_input, int) or not isinstance(max_total, int):
        return None
    return max(1, min(max_input, max_total - max_new_tokens) - TEMPLATE_MARGIN)


def answer(
    client: InferenceClient, prompt: str, decoding: Decoding, retry: RetryPolicy = DEFAULT_RETRY
) -> str:
    """The answer step: the model's reply to the regenerated prompt.

    Raises:
        S2ACallError: the call failed, retries included.

    """
    messages: list[ChatMessage] = [{"role": "user", "content": prompt}]
    return call_with_retries(lambda: chat(client, messages, decoding), retry)[0]
