"""System 2 Attention (Weston & Sukhbaatar, 2023), framework-free.

An LLM first regenerates the context, keeping only what is relevant and free of opinion;
the answer is then produced from that. Adapters: `langchain_s2a`, `llamaindex_s2a`.
"""

from __future__ import annotations

from s2a._errors import (
    S2ACallError,
    S2AConfigError,
    S2AError,
    S2AParseError,
    S2ATimeoutError,
    S2AUnavailableError,
)
from s2a._faults import DEFAULT_RETRY, NO_RETRY, RetryPolicy
from s2a._fusion import Fusion
from s2a._sentences import split_sentences
from s2a._types import (
    ChatMessage,
    FallbackPolicy,
    Focus,
    S2AInput,
    S2AResult,
    StepCost,
    TokenUsage,
    VariantName,
)
from s2a._windows import finish, prepare
from s2a.prompts import DEFAULT_PROMPTS, S2APrompts
from s2a.tgi import Decoding
from s2a.variants import VARIANTS, S2AConfig, S2ARequest, Variant, history_input

__all__ = [
    "DEFAULT_PROMPTS",
    "DEFAULT_RETRY",
    "NO_RETRY",
    "VARIANTS",
    "ChatMessage",
    "Decoding",
    "FallbackPolicy",
    "Focus",
    "Fusion",
    "RetryPolicy",
    "S2ACallError",
    "S2AConfig",
    "S2AConfigError",
    "S2AError",
    "S2AInput",
    "S2AParseError",
    "S2APrompts",
    "S2ARequest",
    "S2AResult",
    "S2ATimeoutError",
    "S2AUnavailableError",
    "StepCost",
    "TokenUsage",
    "Variant",
    "VariantName",
    "finish",
    "history_input",
    "prepare",
    "split_sentences",
]
