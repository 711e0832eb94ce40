"""What the S2A step removes and keeps on the dev split, with no answer step: cheap to rerun.

    python benchmarks/filter_quality.py --tgi-url http://127.0.0.1:8090 [--variants extractive]
        [--limit 60] [--data ../shared/data] [--concurrency 4] [--save run.jsonl]
        [--tasks gsm_ic,trivia_opinion,argument_opinion]
    python benchmarks/filter_quality.py --grid run.jsonl   # `scored` re-read at other thresholds
    python benchmarks/filter_quality.py --grid both.jsonl --opinions objectivity.jsonl
    python benchmarks/filter_quality.py --grid both.jsonl \
        --answers docs/eval/scored/gsm_ic_clean/results.jsonl   # and what it may break

For each variant, over the records of `gsm_ic` and `trivia_opinion` (the first `--limit`
of each task; the trivia records cycle through the four opinion types):
- trivia, prompts with an opinion: the opinion removed, the question kept (% of prompts);
- trivia `none` prompts: the answer step sees the prompt unchanged (%);
- gsm_ic: the distractor removed, every original sentence kept (% of prompts);
- gsm_ic `original_question` (clean): every sentence kept (%);
- argument_opinion (with `--tasks ...,argument_opinion`; `--limit` records, spread over its
  five opinion types): the planted opinion removed, the argument kept (%); `none` prompts:
  the prompt unchanged (%);
- fallbacks, and the S2A step's wall time per prompt.

Each prompt is filtered once, with the question inside the prompt (the paper's setting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from s2a import S2AConfig
from s2a.evaluation.filter_grid import grid
from s2a.evaluation.filter_scoring import Report, cases, reread, run_variant
from s2a.evaluation.methods import TGIChat


def _print(report: Report) -> None:
    for name, tally in sorted(report.tallies.items()):
        print(f"- {name}: {tally}")


def main() -> None:
    """Parse the arguments, filter, print one table per variant."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tgi-url")
    parser.add_argument("--save", type=Path, help="write every prompt's result here (JSON lines)")
    parser.add_argument("--grid", type=Path, help="re-read a --save file over a grid of thresholds")
    parser.add_argument(
        "--opinions", type=Path, help="with --grid: join the opinion tests of a --focus objectivity run"
    )
    parser.add_argument(
        "--answers",
        type=Path,
        help="with --grid: an `s2a eval --task gsm_ic_clean` results.jsonl; count the clean "
        "problems the baseline got right that come out changed",
    )
    parser.add_argument("--variants", default="extractive")
    parser.add_argument("--focus", default="both", choices=["objectivity", "relevance", "both"])
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument(
        "--tasks", default="gsm_ic,trivia_opinion", help="add argument_opinion to check it too"
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--scored-calls", default="per_sentence", choices=["one", "per_sentence"])
    parser.add_argument(
        "--thresholds", default="", help="scored: also report at these thresholds, e.g. 0.3,0.5"
    )
    args = parser.parse_args()
    if args.grid:
        grid(args.grid, opinions=args.opinions, answers=args.answers)
        return
    if not args.tgi_url:
        parser.error("--tgi-url is needed (or --grid to re-read a saved run)")
    model = TGIChat(args.tgi_url)
    saved = args.save.open("w", encoding="utf-8") if args.save else None
    found = cases(args.data, args.limit, tuple(args.tasks.split(",")))
    print(f"{len(found)} prompts from {args.data}, served by {model.model_id()}")
    for variant in args.variants.split(","):
        config = S2AConfig(variant=variant, focus=args.focus, scored_calls=args.scored_calls)
        started = time.perf_counter()
        report, results = asyncio.run(run_variant(model, config, found, args.concurrency))
        wall = time.perf_counter() - started
        shape = f", scored_calls={args.scored_calls}" if variant == "scored" else ""
        print(f"\n## {variant} (focus={args.focus}{shape}): {wall:.0f} s wall, {report.fallbacks} fallbacks")
        _print(report)
        for threshold in [float(t) for t in args.thresholds.split(",") if t] if variant == "scored" else []:
            print(f"\n### threshold {threshold}")
            _print(reread(config, found, results, threshold=threshold, relative=config.relative))
        if saved is not None:
            keys = {"variant": variant, "focus": args.focus, "scored_calls": args.scored_calls}
            for (kind, prompt, record), result in zip(found, results, strict=True):
                row = {"config": keys, "kind": kind, "prompt": prompt, "record": record}
                saved.write(json.dumps({**row, "result": result.model_dump(mode="json")}) + "\n")
            saved.flush()


if __name__ == "__main__":
    main()
