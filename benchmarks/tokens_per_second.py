"""Tokens per second of the local model: prefill, decode, and decode with requests batched together.

    python benchmarks/tokens_per_second.py [--model-path GGUF] [--repeats 3] [--new-tokens 128]
                                           [--levels 1,2,4,8]

Runs the engine `s2a serve` uses (llama.cpp's server through xllamacpp), in process, greedy,
with the prefix cache off so every prompt is prefilled. It prints, from one run:

- single-stream prefill and decode rates (medians over the repeats);
- total decode rate with 1, 2, 4 and 8 requests sent at once to an engine with `--slots`
  slots (the `s2a serve` default, 4), and its ratio to the single-stream rate of the same run.

Rates come from the engine's own token timestamps: prefill is prompt tokens over the time to
the first token; decode counts the tokens after the first over the time they took.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
from pathlib import Path

from s2a.local.engine import Sampling, TokenInfo
from s2a.local.llama import DEFAULT_SLOTS, LlamaEngine
from s2a.local.model import resolve_model_path

LONG_PROMPT = " ".join(
    f"Shop {i} sells {i + 2} kinds of apples; its owner, who likes blue, opens at {i % 12 + 1}."
    for i in range(24)
)
COUNT_PROMPT = "Count from {start} to 900, writing each number in words, separated by commas:"


def run(engine: LlamaEngine, prompt: str, new_tokens: int) -> tuple[int, float, list[float]]:
    """(prompt tokens, start time, the time each token arrived)."""
    tokens = engine.tokenize(prompt)
    stamps: list[float] = []

    def on_token(_info: TokenInfo) -> bool:
        stamps.append(time.perf_counter())
        return False

    started = time.perf_counter()
    engine.generate(tokens, Sampling(max_new_tokens=new_tokens), on_token)
    if len(stamps) < 2:
        msg = "the model stopped before its second token; use a prompt that makes it talk"
        raise RuntimeError(msg)
    return len(tokens), started, stamps


def decode_rate(streams: list[list[float]]) -> float:
    """Tokens after each stream's first, over the time from the first first token to the last token.

    With more requests than slots, the time the later ones spend waiting counts too.
    """
    begin = min(stamps[0] for stamps in streams)
    end = max(stamps[-1] for stamps in streams)
    return sum(len(stamps) - 1 for stamps in streams) / (end - begin)


def concurrent_decode(engine: LlamaEngine, level: int, new_tokens: int) -> float:
    """Total decode rate with `level` requests generating at once."""
    streams: list[list[float]] = [[] for _ in range(level)]

    def one(i: int) -> None:
        streams[i] = run(engine, COUNT_PROMPT.format(start=i + 1), new_tokens)[2]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(level)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return decode_rate(streams)


def row(phase: str, tokens: int | str, rates: list[float], base: float | None = None) -> str:
    """A Markdown table row: median, min and max tokens per second, and the ratio to `base`."""
    median = statistics.median(rates)
    ratio = f"{median / base:.2f}x" if base else "-"
    return f"| {phase} | {tokens} | {median:.1f} | {min(rates):.1f} | {max(rates):.1f} | {ratio} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-path", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--levels", default="1,2,4,8", help="concurrency levels for batched decode")
    parser.add_argument("--slots", type=int, default=DEFAULT_SLOTS, help="requests decoded together")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]

    path = resolve_model_path(args.model_path)
    loading = time.perf_counter()
    engine = LlamaEngine(path, n_ctx=2048, slots=args.slots, prefix_cache=False)
    load_seconds = time.perf_counter() - loading
    try:
        run(engine, "Warm up: say hello.", 4)
        prefill, decode = [], []
        batched: dict[int, list[float]] = {level: [] for level in levels}
        for _ in range(args.repeats):
            n_prompt, started, stamps = run(engine, LONG_PROMPT, 2)
            prefill.append(n_prompt / (stamps[0] - started))
            decode.append(decode_rate([run(engine, COUNT_PROMPT.format(start=1), args.new_tokens)[2]]))
            for level in levels:
                batched[level].append(concurrent_decode(engine, level, args.new_tokens))
    finally:
        engine.close()

    single = statistics.median(decode)
    machine = f"{os.cpu_count()} CPU cores, {platform.machine()}, {platform.platform()}"
    print(f"model: {path.name}; machine: {machine}; cpu: {cpu_name()}")
    print(f"load: {load_seconds:.1f} s; repeats: {args.repeats} (medians below); slots: {args.slots}\n")
    print("| phase | tokens | tokens/s (median) | min | max | vs single stream |")
    print("|---|---|---|---|---|---|")
    print(row("prefill (prompt processing), one stream", n_prompt, prefill))
    print(row("decode (generation, greedy), one stream", args.new_tokens, decode))
    for level in levels:
        print(row(f"decode, {level} at once (total)", f"{level} x {args.new_tokens}", batched[level], single))


def cpu_name() -> str:
    """The CPU model, as /proc/cpuinfo names it (or what the platform module knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
