"""What the local server asks of a generation engine, and the values they exchange.

The real engine is llama.cpp's own server, in process (`s2a.local.llama.LlamaEngine`); the
unit tests use a fake one (tests/fake_engine.py). An engine decodes up to `slots` requests
together; `generate` blocks its calling thread, and many threads may call it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["length", "eos_token", "stop_sequence"]


class InputError(ValueError):
    """A request the engine cannot run: a grammar it cannot compile, messages its template refuses."""


class EngineError(RuntimeError):
    """The engine failed while generating (the server answers 424, as TGI does)."""


@dataclass(frozen=True)
class Sampling:
    """Decoding settings, already validated by the server."""

    max_new_tokens: int
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    typical_p: float = 1.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None
    regex: str | None = None
    """A regular expression the whole reply must match (TGI's `regex` grammar)."""
    top_n_tokens: int = 0


@dataclass(frozen=True)
class TokenInfo:
    """One generated token, as TGI reports it."""

    id: int
    text: str
    logprob: float
    special: bool
    top: tuple[tuple[int, str, float, bool], ...] = ()


@dataclass
class Outcome:
    """What a generation produced; complete once `generate` returns."""

    finish_reason: FinishReason = "length"
    generated_text: str = ""
    tokens: list[TokenInfo] = field(default_factory=list)
    seed: int | None = None
    cached_tokens: int = 0
    """Prompt tokens the engine took from its cache instead of prefilling them."""


OnToken = Callable[[TokenInfo], bool]
"""Called with each token as it is generated; returning True stops the generation."""


class EngineLike(Protocol):
    """What the server needs from an engine."""

    n_ctx: int
    """Prompt plus generated tokens one request may use."""
    slots: int
    """Requests decoded together; more wait in the engine's queue, in arrival order."""

    @property
    def has_chat_template(self) -> bool: ...

    @property
    def template_renders_tools(self) -> bool:
        """Whether the chat template shows the model a `tools` list (TGI checks the same)."""
        ...

    @property
    def template_renders_tool_calls(self) -> bool:
        """Whether the chat template renders an assistant message's `tool_calls`."""
        ...

    def tokenize(self, text: str) -> list[int]: ...

    def chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> tuple[str, list[int]]:
        """The prompt text and tokens for `messages` (and `tools`, OpenAI's shape) through the template."""
        ...

    def offsets(self, text: str) -> list[tuple[int, str, int, int]]: ...

    def check(self, sampling: Sampling) -> None: ...

    def generate(self, prompt: list[int], sampling: Sampling, on_token: OnToken) -> Outcome: ...

    def close(self) -> None: ...
