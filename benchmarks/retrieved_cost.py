"""What the S2A step costs on a context of retrieved documents, per method, side by side.

    python benchmarks/retrieved_cost.py --tgi-url http://127.0.0.1:8090 [--top-k 8] [--repeats 1]
    python benchmarks/retrieved_cost.py --tgi-url http://127.0.0.1:8090 --gsm-ic ../shared/data --limit 6

For each query of examples/corpus.py, BM25 (bm25s) retrieves the top-k documents; their texts,
joined, are the context, and the query is the question (as a RAG chain gives it). Each method
filters that context, in turn on the same query and repeat, against the same server:
- `separated`, `extractive`, `scored`: the sentence-level S2A step; `scored/one` is `scored`
  with `scored_calls="one"`, `scored/together` with `scored_concurrency=8` (the per-sentence
  calls after the first sent 8 at a time instead of one after another);
- `rag_scored`: the RAG adapters' default, one scored keep-or-drop line per document
  (`s2a.selection`, `mode="scored"`), as `S2ANodePostprocessor` sends it;
- `scored/relevance`: `scored` with `focus="relevance"`, without the opinion tests;
- `floor`: no S2A at all, the context alone as the user message, one token written: what
  reading the context once costs, which every method that reads it pays. Its ratio to
  `separated` is the least any such method can reach on this server.

With `--against REV` (a git revision of this repository), `scored@REV` is `scored` as that
revision's code runs it: a worker process in a temporary git worktree of REV times the step,
in turn with the other methods, against the same server; its ratio to `scored` is the paired
ratio, so an earlier revision's cost is measured in the same run:

    python benchmarks/retrieved_cost.py --tgi-url http://127.0.0.1:8090 --gsm-ic ../shared/data \\
        --limit 10 --methods scored --against 7ad218c

With `--gsm-ic DIR`, the contexts are instead the first `--limit` prompts of DIR/gsm_ic.jsonl,
each a math problem with its distractor and the question inside it (the paper's setting),
and `rag_scored` is left out.

With `--hotpotqa DIR`, the contexts are the first `--limit` questions of
DIR/hotpotqa_distractor.jsonl, each with its 10 paragraphs as documents (titles as the
adapters read them from metadata), and the methods are the document-level ones: `floor`
(the reference), `rag_scored` (the adapters' default, P(keep) fused with BM25, titles and
bridges) and `rag_threshold` (`fusion=None`, the earlier rule: the same call). With
`--against REV`, `rag_scored@REV` is that revision's `rag_scored`, paired with today's:

    python benchmarks/retrieved_cost.py --tgi-url http://127.0.0.1:8091 --hotpotqa ../shared/data \
        --limit 10 --against f509d86

A repeat finds the prompts of the one before in the server's prompt cache, which flatters
the prefill-heavy methods: keep the default of one, and use a server without a prompt cache
(`s2a serve --no-prefix-cache --max-batch-size 1`). Per method: median wall time of the step,
the median of its ratio to the reference (`separated`; `floor` with `--hotpotqa`) on the same
query and repeat, decode tokens per step, and decode tokens per judged item (sentence or
document). The answer step is not run: it is the same for every method.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rag_peers import retrieve
from examples.corpus import QUERIES
from s2a import S2AConfig, S2AInput
from s2a._steps import Reply
from s2a.evaluation.bench import machine
from s2a.evaluation.hotpotqa import HOTPOTQA, as_hotpot
from s2a.evaluation.methods import S2A_TOKENS, TGIChat, s2a_step
from s2a.selection import (
    DEFAULT_FUSION,
    DEFAULT_RAG_RELATIVE,
    DEFAULT_RAG_THRESHOLD,
    finish_selection,
    plan_selection,
)

SENTENCE_LEVEL = {
    "separated": S2AConfig(variant="separated"),
    "extractive": S2AConfig(variant="extractive"),
    "scored": S2AConfig(variant="scored"),
    "scored/one": S2AConfig(variant="scored", scored_calls="one"),
    "scored/together": S2AConfig(variant="scored", scored_concurrency=8),
    "scored/relevance": S2AConfig(variant="scored", focus="relevance"),
}
DOCUMENT_LEVEL = ("rag_scored", "rag_threshold")
METHODS = (*SENTENCE_LEVEL, *DOCUMENT_LEVEL, "floor")
Context = tuple[list[str], str | None, list[str | None] | None]
"""A context's documents, its query (None: inside the documents) and the documents' titles."""


@dataclass
class Cost:
    """One method's runs."""

    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    per_item: list[float] = field(default_factory=list)
    to_extractive: list[float] = field(default_factory=list)
    """Paired ratios to `extractive`, for the methods run after it."""
    to_paired: list[float] = field(default_factory=list)
    """Paired ratios to the same method today, for another revision's (`scored@REV`)."""


_WORKER = """
import json, sys
from s2a import S2AConfig, S2AInput
from s2a.evaluation.methods import TGIChat, s2a_step
model = TGIChat(sys.argv[1])
import s2a
print("the other revision runs", s2a.__file__, file=sys.stderr)
for line in sys.stdin:
    job = json.loads(line)
    if job["method"] != "scored":  # that revision's own benchmark runs it
        from benchmarks.retrieved_cost import run
        print(json.dumps(run(job["method"], job["docs"], job["question"], model)), flush=True)
        continue
    inp = S2AInput(context="\\n\\n".join(job["docs"]), question=job["question"])
    result, step = s2a_step(inp, S2AConfig(variant="scored"), model)
    judged = result.scores or result.opinions
    items = len(judged) if judged is not None else len(result.kept or [])
    print(json.dumps([step.seconds, step.output_tokens or 0, max(items, 1)]), flush=True)
"""


class Revision:
    """`method` as another revision's code runs it, in a worker process over a git worktree."""

    def __init__(self, rev: str, url: str, tree: Path, method: str = "scored") -> None:
        self.method = method
        """Today's method it is paired with."""
        self.name = f"{method}@{rev}"
        """The method's name in the table."""
        root = Path(__file__).resolve().parents[1]
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), rev], check=True)  # noqa: S603, S607
        self.worker = subprocess.Popen(  # noqa: S603 - our own code at another revision
            [sys.executable, "-c", _WORKER, url],
            cwd=tree,
            env={"PYTHONPATH": str(tree), "PATH": ""},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __call__(self, docs: list[str], question: str | None) -> tuple[float, int, int]:
        if self.worker.stdin is None or self.worker.stdout is None:
            msg = "the worker was started without pipes"
            raise RuntimeError(msg)
        job = {"method": self.method, "docs": docs, "question": question}
        self.worker.stdin.write(json.dumps(job) + "\n")
        self.worker.stdin.flush()
        line = self.worker.stdout.readline()
        if not line:
            msg = f"the worker for the other revision stopped (exit {self.worker.wait()})"
            raise RuntimeError(msg)
        seconds, tokens, items = json.loads(line)
        return float(seconds), int(tokens), int(items)


@contextlib.contextmanager
def revision(rev: str | None, url: str, method: str = "scored") -> Iterator[Revision | None]:
    """A worker running `method` at `rev` while the block runs, its worktree removed after."""
    if rev is None:
        yield None
        return
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="s2a-rev-") as tmp:
        tree = Path(tmp) / "tree"
        other = Revision(rev, url, tree, method)
        try:
            yield other
        finally:
            if other.worker.stdin is not None:
                other.worker.stdin.close()
            other.worker.wait()
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=False)  # noqa: S603, S607


def run(
    method: str,
    docs: list[str],
    question: str | None,
    model: TGIChat,
    titles: list[str | None] | None = None,
) -> tuple[float, int, int]:
    """Seconds, decode tokens and judged items of one step of `method` (`titles`: the documents')."""
    if method in SENTENCE_LEVEL:
        inp = S2AInput(context="\n\n".join(docs), question=question)
        result, step = s2a_step(inp, SENTENCE_LEVEL[method], model)
        judged = result.scores or result.opinions
        items = len(judged) if judged is not None else len(result.kept or [])
        return step.seconds, step.output_tokens or 0, max(items, 1)
    if method == "floor":
        # No system message and no instruction: beyond the chat template's opening, the prompt
        # shares nothing with the S2A calls, so the prompt cache neither helps it nor them.
        reply = model([{"role": "user", "content": "\n\n".join(docs)}], max_new_tokens=1)
        return reply.seconds, reply.usage.output_tokens if reply.usage else 1, max(len(docs), 1)
    if question is None:
        msg = f"{method} needs a query"
        raise ValueError(msg)
    rag = S2AConfig(threshold=DEFAULT_RAG_THRESHOLD, relative=DEFAULT_RAG_RELATIVE)  # as the adapters
    fusion = DEFAULT_FUSION if method == "rag_scored" else None
    plan = plan_selection(docs, question, rag, mode="scored", fusion=fusion, titles=titles)
    started = time.perf_counter()
    tokens = 0
    replies = []
    for window in plan.windows:
        reply = model(
            window.messages,
            max_new_tokens=S2A_TOKENS,
            grammar=window.grammar,
            top_logprobs=window.top_logprobs,
        )
        tokens += reply.usage.output_tokens if reply.usage else 0
        replies.append(Reply(reply.text, logprobs=reply.logprobs))
    finish_selection(plan, replies)
    return time.perf_counter() - started, tokens, len(docs)


def contexts_of(args: argparse.Namespace) -> tuple[list[Context], str]:
    """The contexts to time, and what they are in words."""
    if args.gsm_ic is not None:
        lines = (args.gsm_ic / "gsm_ic.jsonl").read_text(encoding="utf-8").splitlines()
        prompts: list[Context] = [
            ([json.loads(line)["question"]], None, None) for line in lines[: args.limit]
        ]
        return prompts, f"the first {len(prompts)} gsm_ic prompts"
    if args.hotpotqa is not None:
        records = [as_hotpot(r) for r in HOTPOTQA.load(args.hotpotqa / HOTPOTQA.file, args.limit)]
        questions: list[Context] = [
            ([p.text for p in r.passages], r.question, [p.title for p in r.passages]) for r in records
        ]
        return questions, f"the first {len(questions)} hotpotqa questions, their paragraphs as documents"
    retrieved: list[Context] = [
        ([d.page_content for d in retrieve(q.question, args.top_k)], q.question, None) for q in QUERIES
    ]
    return retrieved, f"{len(QUERIES)} queries, top-{args.top_k} documents"


def main() -> None:
    """Time every method on every query, print one Markdown table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tgi-url", required=True)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--methods", help="comma-separated; default: every method the contexts allow")
    parser.add_argument("--gsm-ic", type=Path, help="time the first --limit gsm_ic prompts of this folder")
    parser.add_argument(
        "--hotpotqa", type=Path, help="time the first --limit hotpotqa questions of this folder"
    )
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument(
        "--against", metavar="REV", help="also time scored (rag_scored) as this revision runs it"
    )
    args = parser.parse_args()
    if args.gsm_ic is not None and args.hotpotqa is not None:
        parser.error("choose --gsm-ic or --hotpotqa, not both")
    allowed: tuple[str, ...]
    if args.hotpotqa is not None:
        reference, allowed = "floor", ("floor", *DOCUMENT_LEVEL)
    else:
        reference = "separated"
        allowed = tuple(m for m in METHODS if args.gsm_ic is None or m not in DOCUMENT_LEVEL)
    asked = args.methods.split(",") if args.methods else list(allowed)
    unknown = sorted(set(asked) - set(allowed))
    if unknown:
        parser.error(f"unknown methods {unknown} here; choose from {', '.join(allowed)}")
    methods = [reference, *(m for m in asked if m != reference)]  # the reference first
    paired = "rag_scored" if args.hotpotqa is not None else "scored"
    if args.against and paired not in methods:
        methods.append(paired)  # what the other revision's is measured against
    model = TGIChat(args.tgi_url)
    contexts, what = contexts_of(args)
    with revision(args.against, args.tgi_url, paired) as worker:
        costs, seconds = timed(methods, contexts, model, args.repeats, worker)
    if worker is not None:
        methods.append(worker.name)
    print(
        f"{what} x {args.repeats} repeats, served by {model.model_id()}; {machine()}; "
        f"{seconds:.0f} s in all\n"
    )
    print(
        f"| method | step seconds (median) | x {reference} (median of paired ratios) | x extractive "
        f"| x {paired} | decode tokens | decode tokens per sentence or document |"
    )
    print("|---|---|---|---|---|---|---|")
    for method in methods:
        c = costs[method]
        ratio = f"{statistics.median(c.ratios):.2f}x"
        to_extractive = f"{statistics.median(c.to_extractive):.2f}x" if c.to_extractive else "-"
        to_paired = f"{statistics.median(c.to_paired):.2f}x" if c.to_paired else "-"
        print(
            f"| {method} | {statistics.median(c.seconds):.2f} | {ratio} | {to_extractive} | {to_paired} "
            f"| {statistics.median(c.tokens):.0f} | {statistics.median(c.per_item):.1f} |"
        )


def timed(
    methods: list[str],
    contexts: list[Context],
    model: TGIChat,
    repeats: int,
    worker: Revision | None,
) -> tuple[dict[str, Cost], float]:
    """Every method on every context, in turn, `repeats` times; the other revision's last (`worker`).

    The first method is the reference every ratio is taken to.
    """
    order = [*methods, *([worker.name] if worker else [])]
    costs = {m: Cost() for m in order}
    started = time.perf_counter()
    for repeat in range(repeats):
        for docs, question, titles in contexts:
            seconds_by: dict[str, float] = {}
            for method in order:
                if worker is not None and method == worker.name:
                    seconds, tokens, items = worker(docs, question)
                    costs[method].to_paired.append(seconds / seconds_by[worker.method])
                else:
                    seconds, tokens, items = run(method, docs, question, model, titles)
                seconds_by[method] = seconds
                cost = costs[method]
                cost.seconds.append(seconds)
                cost.tokens.append(tokens)
                cost.per_item.append(tokens / items)
                cost.ratios.append(seconds / seconds_by[methods[0]])  # the reference runs first
                if "extractive" in seconds_by:
                    cost.to_extractive.append(seconds / seconds_by["extractive"])
        print(f"repeat {repeat + 1} of {repeats} done", file=sys.stderr)
    return costs, time.perf_counter() - started


if __name__ == "__main__":
    main()
