"""Tokens per second of the local model: prompt processing (prefill) and generation (decode).

    python benchmarks/tokens_per_second.py [--model-path GGUF] [--repeats 3] [--new-tokens 128]

Runs the same engine `s2a serve` uses, in process, greedy, and prints a Markdown table of
medians over the repeats, with the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
from pathlib import Path

from s2a.local.engine import Engine, Outcome, Sampling
from s2a.local.model import resolve_model_path

LONG_PROMPT = " ".join(
    f"Shop {i} sells {i + 2} kinds of apples; its owner, who likes blue, opens at {i % 12 + 1}."
    for i in range(24)
)
COUNT_PROMPT = "Count from 1 to 300, writing each number in words, separated by commas:"


def measure(engine: Engine, prompt: str, new_tokens: int) -> tuple[int, float, int, float]:
    """(prompt tokens, seconds to the first token, generated tokens, seconds for the rest)."""
    tokens = engine.tokenize(prompt)
    outcome = Outcome()
    started = time.perf_counter()
    first = None
    for _ in engine.generate(tokens, Sampling(max_new_tokens=new_tokens), outcome, threading.Event()):
        if first is None:
            first = time.perf_counter()
    ended = time.perf_counter()
    if first is None:
        msg = "the model generated nothing"
        raise RuntimeError(msg)
    return len(tokens), first - started, len(outcome.tokens), ended - first


def row(phase: str, tokens: int, rates: list[float]) -> str:
    """A Markdown table row: median, min and max tokens per second."""
    return f"| {phase} | {tokens} | {statistics.median(rates):.1f} | {min(rates):.1f} | {max(rates):.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-path", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args()

    path = resolve_model_path(args.model_path)
    loading = time.perf_counter()
    engine = Engine(path, n_ctx=4096)
    load_seconds = time.perf_counter() - loading
    measure(engine, "Warm up.", 4)

    prefill, decode = [], []
    for _ in range(args.repeats):
        n_prompt, ttft, _, _ = measure(engine, LONG_PROMPT, 1)
        prefill.append(n_prompt / ttft)
        _, _, n_new, rest = measure(engine, COUNT_PROMPT, args.new_tokens)
        decode.append((n_new - 1) / rest)

    machine = f"{os.cpu_count()} CPU cores, {platform.machine()}, {platform.platform()}"
    print(f"model: {path.name}; machine: {machine}")
    print(f"load: {load_seconds:.1f} s; repeats: {args.repeats} (medians below)\n")
    print("| phase | tokens | tokens/s (median) | min | max |")
    print("|---|---|---|---|---|")
    print(row("prefill (prompt processing)", n_prompt, prefill))
    print(row("decode (generation, greedy)", n_new, decode))


if __name__ == "__main__":
    main()
