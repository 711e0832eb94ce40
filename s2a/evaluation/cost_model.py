"""A step's cost model: seconds = a x uncached prompt tokens + b x generated tokens + c x calls.

`s2a bench` fits it by least squares on the steps of one run (`fit_cost_model`) and applies a
published GPU server's rates to the same counts (`GPU_PROJECTION`), marked as a projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from s2a.evaluation.methods import Step


@dataclass(frozen=True)
class CostModel:
    """seconds = a x uncached prompt tokens + b x generated tokens + c x calls, fitted on one run."""

    per_prompt_token: float
    per_generated_token: float
    per_call: float
    steps: int
    """Steps it was fitted on."""

    def seconds(self, step: Step) -> float | None:
        """The predicted seconds of `step`; `None` when the backend reported no tokens."""
        x = _features(step)
        return None if x is None else self.predict(*x)

    def predict(self, prompt_tokens: float, generated_tokens: float, calls: float) -> float:
        """Predicted seconds of `calls` reading `prompt_tokens` (uncached), writing `generated_tokens`."""
        return float(np.dot(self.coefficients, (prompt_tokens, generated_tokens, calls)))

    @property
    def coefficients(self) -> tuple[float, float, float]:
        """(a, b, c)."""
        return self.per_prompt_token, self.per_generated_token, self.per_call


GPU_PROJECTION = CostModel(
    per_prompt_token=(0.40677 - 0.04777) / 4500,
    per_generated_token=0.01858,
    per_call=0.04777 - 500 * (0.40677 - 0.04777) / 4500,
    steps=0,
)
"""A published GPU server's rates, as a cost model: NVIDIA NIM 1.8.0 serving Llama-3.3-70B-Instruct
(fp8, tensor parallel 2 on 2 x H100 80GB), at concurrency 1 (NVIDIA's NIM LLM benchmarking
guide, "Performance", https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance).
Time to first token 406.77 ms for 5,000 input tokens and 47.77 ms for 500 give the prefill
rate (0.080 ms a token) and a call's fixed cost (7.9 ms); the inter-token latency, 18.58 ms,
the decode rate. Applied to a step's counts it is a projection, not a
measurement: another model, server and batch change all three."""


def _features(step: Step) -> tuple[float, float, float] | None:
    if step.input_tokens is None or step.output_tokens is None:
        return None
    return float(step.input_tokens - (step.cached_tokens or 0)), float(step.output_tokens), float(step.calls)


def fit_cost_model(steps: Sequence[Step]) -> CostModel | None:
    """Least squares over the steps that made calls and reported tokens (at least 3 of them)."""
    rows = [(x, s.seconds) for s in steps if s.calls and (x := _features(s)) is not None]
    if len(rows) < 3:  # three unknowns
        return None
    a = np.array([x for x, _ in rows])
    y = np.array([seconds for _, seconds in rows])
    (prompt, generated, call), *_ = np.linalg.lstsq(a, y, rcond=None)
    return CostModel(float(prompt), float(generated), float(call), len(rows))
