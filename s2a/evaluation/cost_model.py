"""A step's cost model: seconds = a x uncached prompt tokens + b x generated tokens + c x calls.

`s2a bench` fits it by least squares on the steps of one run (`fit_cost_model`) and applies a
published GPU server's rates to the same counts (`GPU_PROJECTION`), marked as a projection.
"""

from __future__ import annotations

import itertools
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
    """The rates that best predict the steps' seconds, none negative, each step's error relative.

    Least squares over the steps that made calls and reported tokens (at least 3 of them), with
    each step's error taken relative to its own time (so a 2 s step weighs as much as a 10 s
    one: the report judges predictions by relative error) and every rate at least 0 (a call or
    a token never saves time; unconstrained, a noisy run can trade a negative per-call cost
    against a larger per-token one). Exact for three unknowns: the best of the least-squares
    fits over each subset of the rates that leaves none negative.
    """
    rows = [(x, s.seconds) for s in steps if s.calls and s.seconds > 0 and (x := _features(s)) is not None]
    if len(rows) < 3:  # three unknowns
        return None
    y = np.array([seconds for _, seconds in rows])
    a = np.array([x for x, _ in rows]) / y[:, None]
    ones = np.ones(len(rows))
    best: tuple[float, np.ndarray] | None = None
    for size in range(1, 4):
        for columns in itertools.combinations(range(3), size):
            solved, *_ = np.linalg.lstsq(a[:, columns], ones, rcond=None)
            if (solved < 0).any():
                continue
            rates = np.zeros(3)
            rates[list(columns)] = solved
            residual = float(np.sum((a @ rates - ones) ** 2))
            if best is None or residual < best[0]:
                best = (residual, rates)
    if best is None:
        return None
    prompt, generated, call = best[1]
    return CostModel(float(prompt), float(generated), float(call), len(rows))
