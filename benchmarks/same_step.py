"""Whether this revision's S2A step gives what another revision's gives, input for input.

    python benchmarks/same_step.py --tgi-url http://127.0.0.1:8091 --against 285329a \\
        [--data ../shared/data] [--limit 10] [--tasks gsm_ic,trivia_opinion,...]

A change that only reshapes the code (issue 30) must leave every documented figure as it was.
Rerunning each figure takes hours on a CPU; this asks the question directly: the same inputs go
through today's default step and through REV's (a worker process in a temporary git worktree
of REV), one after the other, against the same server, and the results are compared field by
field. Run it against a server that repeats itself byte for byte, one request at a time and no
reused cache (`s2a serve --port 8091 --max-batch-size 1 --no-prefix-cache`): then any
difference is the code's.

The inputs, the first `--limit` records of each task's dev file:
- `gsm_ic` (the problem with its distractor, and the clean problem), `trivia_opinion`,
  `opinion_phrasings` (the checking half), `sycophancy_bio`: the prompt alone, through the
  default `S2AConfig()` (`scored`), as `S2ARunnable` sends a plain string;
- `hotpotqa`: the 10 paragraphs as nodes through the default `S2ANodePostprocessor` (the RAG
  path), with the question as the query.

Prints, per task, how many results are identical in what the answer step sees (the prompt, or
the nodes kept in order), in every decision (kept sentences, stance marks, fallback) and in
every probability, and the largest probability difference; exits 1 if any result differs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TASKS = ("gsm_ic", "trivia_opinion", "opinion_phrasings", "sycophancy_bio", "hotpotqa")
SCORES = ("scores", "opinions")
"""The probabilities in a result; every other field is compared exactly."""


def text(url: str, prompt: str) -> dict[str, Any]:
    """The default step on a plain-string prompt, as `S2ARunnable` sends one."""
    from s2a import S2AConfig, S2AInput  # noqa: PLC0415 - imported where the revision is chosen
    from s2a.evaluation.methods import TGIChat, s2a_step  # noqa: PLC0415

    result, _ = s2a_step(S2AInput(context=prompt), S2AConfig(), TGIChat(url))
    fields = {"prompt", "context", "question", "kept", "scores", "opinions", "stance", "fallback"}
    return result.model_dump(mode="json", include=fields)


def nodes(url: str, query: str, paragraphs: list[str]) -> dict[str, Any]:
    """The default `S2ANodePostprocessor` on the paragraphs as nodes: the ids kept, in order, and scores."""
    from llama_index.core.schema import NodeWithScore, TextNode  # noqa: PLC0415

    from llamaindex_s2a import S2ANodePostprocessor, tgi_llm  # noqa: PLC0415

    post = S2ANodePostprocessor(llm=tgi_llm(url))  # its own calls are greedy
    given = [NodeWithScore(node=TextNode(text=p, id_=str(i))) for i, p in enumerate(paragraphs)]
    kept = post.postprocess_nodes(given, query_str=query)
    return {"kept": [n.node.node_id for n in kept], "scores": [n.score for n in kept]}


def one(url: str, job: dict[str, Any]) -> dict[str, Any]:
    """One job's result, on whichever revision of `s2a` this process imports."""
    if job["kind"] == "nodes":
        return nodes(url, job["query"], job["paragraphs"])
    return text(url, job["prompt"])


def serve_jobs(url: str) -> None:
    """The worker's loop: a job per line in, its result per line out."""
    import s2a  # noqa: PLC0415

    print(f"the other revision runs {s2a.__file__}", file=sys.stderr)
    for line in sys.stdin:
        print(json.dumps(one(url, json.loads(line))), flush=True)


def jobs(data: Path, tasks: tuple[str, ...], limit: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(task, job) for the first `limit` records of each task."""
    from s2a.evaluation.hotpotqa import HotpotRecord  # noqa: PLC0415
    from s2a.evaluation.tasks import TASKS as EVAL  # noqa: PLC0415

    for name in tasks:
        task = EVAL[name]
        for record in task.load(data / task.file, limit):
            if isinstance(record, HotpotRecord):
                paragraphs = [f"{p.title}: {p.text}" for p in record.passages]
                yield name, {"kind": "nodes", "query": record.question, "paragraphs": paragraphs}
                continue
            yield name, {"kind": "text", "prompt": task.prompt(record)}
            if name == "gsm_ic":
                yield "gsm_ic_clean", {"kind": "text", "prompt": task.oracle(record)}


class Worker:
    """The step as REV's code runs it: this script, in a process that imports REV's packages."""

    def __init__(self, tree: Path, url: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own code at another revision
            [sys.executable, __file__, "--worker", "--tgi-url", url],
            cwd=tree,
            env={"PYTHONPATH": str(tree), "PATH": ""},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __call__(self, job: dict[str, Any]) -> dict[str, Any]:
        if self.process.stdin is None or self.process.stdout is None:
            msg = "the worker was started without pipes"
            raise RuntimeError(msg)
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            msg = f"the worker for the other revision stopped (exit {self.process.wait()})"
            raise RuntimeError(msg)
        result: dict[str, Any] = json.loads(line)
        return result


@contextmanager
def worker(rev: str, url: str) -> Iterator[Worker]:
    """A worker running REV's step while the block runs; its worktree removed after."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="s2a-same-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), rev], check=True)  # noqa: S603, S607
        other = Worker(tree, url)
        try:
            yield other
        finally:
            if other.process.stdin is not None:
                other.process.stdin.close()
            other.process.wait()
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=False)  # noqa: S603, S607


def gap(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
    """The largest difference between the two results' probabilities, where both give one."""
    worst = 0.0
    for name in SCORES:
        a, b = ours.get(name), theirs.get(name)
        if isinstance(a, list) and isinstance(b, list):  # the nodes' scores, in the order kept
            a, b = dict(enumerate(a)), dict(enumerate(b))
        if isinstance(a, dict) and isinstance(b, dict):  # by sentence number
            pairs = [(a[k], b[k]) for k in a.keys() & b.keys() if a[k] is not None and b[k] is not None]
            worst = max([worst, *(abs(x - y) for x, y in pairs)])
    return worst


def same(ours: dict[str, Any], theirs: dict[str, Any], *, scores: bool) -> bool:
    """Whether the results agree on every field, the probabilities included or not."""
    names = set(ours) | set(theirs)
    return all(ours.get(n) == theirs.get(n) for n in names if scores or n not in SCORES)


def main() -> None:
    """Run both revisions on each input, in turn, and print the comparison per task."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tgi-url", required=True)
    parser.add_argument("--against", help="a git revision of this repository")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args()
    if args.worker:
        serve_jobs(args.tgi_url)
        return
    if args.against is None:
        parser.error("--against REV is required")
    tally: dict[str, list[tuple[bool, bool, bool, float]]] = {}
    with worker(args.against, args.tgi_url) as theirs_of:
        for name, job in jobs(args.data, tuple(args.tasks.split(",")), args.limit):
            ours, theirs = one(args.tgi_url, job), theirs_of(job)
            seen = ours.get("prompt", ours.get("kept")) == theirs.get("prompt", theirs.get("kept"))
            row = (seen, same(ours, theirs, scores=False), same(ours, theirs, scores=True), gap(ours, theirs))
            tally.setdefault(name, []).append(row)
            if not row[2]:
                print(f"{name}: differs: {json.dumps(job)[:120]}...\n  ours   {ours}\n  theirs {theirs}")
    print(f"\nthis revision against {args.against}, server {args.tgi_url}\n")
    print("| task | inputs | same answer-step input | same decisions | same probabilities | largest gap |")
    print("|---|---|---|---|---|---|")
    differs = False
    for name, rows in tally.items():
        n = len(rows)
        counts = [sum(r[k] for r in rows) for k in range(3)]
        differs |= counts[2] < n
        same_counts = " | ".join(f"{c}/{n}" for c in counts)
        print(f"| {name} | {n} | {same_counts} | {max(r[3] for r in rows):.2g} |")
    sys.exit(1 if differs else 0)


if __name__ == "__main__":
    main()
