"""`s2a eval` and `s2a bench` against the real local server and model (smoke tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def s2a(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"}
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "s2a", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )


def test_eval_limit_2_runs_scores_and_resumes(server_url: str, tmp_path: Path) -> None:
    methods = "baseline,oracle,separated,extractive,llm_chain_filter,llm_rerank"
    args = ["eval", "--task", "trivia_opinion", "--data", str(SHARED), "--limit", "2", "--methods", methods]
    args += ["--tgi-url", server_url, "--out", str(tmp_path)]
    done = s2a(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "trivia_opinion"
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    assert all(r["error"] is None and r["answer"].strip() and "accuracy" in r["scores"] for r in rows)
    table = (folder / "table.md").read_text()
    for method in methods.split(","):
        assert f"| {method} | " in table
        assert table.split(f"| {method} | ")[1].split(" | ")[0].endswith("n=2")
    assert (folder / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((folder / "run.json").read_text())["model"].startswith(
        "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    )
    again = s2a(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "12 done, 0 to run" in again.stderr
    assert (folder / "results.jsonl").read_text().count("\n") == 12


def test_judged_task_gets_verdicts_from_the_local_model(server_url: str, tmp_path: Path) -> None:
    args = [
        "eval",
        "--task",
        "argument_opinion",
        "--data",
        str(SHARED),
        "--limit",
        "1",
        "--methods",
        "baseline",
    ]
    done = s2a(*args, "--tgi-url", server_url, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = [
        json.loads(line)
        for line in (tmp_path / "argument_opinion" / "results.jsonl").read_text().splitlines()
    ]
    assert -5 <= row["judge"]["sentiment"] <= 5
    assert row["scores"]["objectivity"] == 5 - abs(row["judge"]["sentiment"])
    assert 1 <= row["scores"]["quality"] <= 5


def test_bench_writes_its_report(server_url: str, tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    args = ["bench", "--task", "trivia_opinion", "--data", str(SHARED), "--limit", "1", "--repeats", "1"]
    args += ["--methods", "separated", "--concurrency-levels", "1,2", "--requests", "2"]
    done = s2a(*args, "--tgi-url", server_url, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    assert "| separated | 1 | " in report
    assert "Qwen/Qwen2.5-Coder-1.5B-Instruct" in report
    assert "| 2 | 2 |" in report


def test_eval_hotpotqa_limit_2_keeps_gold_and_writes_table_and_figure(
    server_url: str, tmp_path: Path
) -> None:
    methods = "none,oracle,bm25_k4,s2a_node"
    args = ["eval", "--task", "hotpotqa", "--data", str(SHARED), "--limit", "2", "--methods", methods]
    done = s2a(*args, "--tgi-url", server_url, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "hotpotqa"
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    assert all(r["error"] is None and r["answer"].strip() for r in rows)
    lines = (SHARED / "hotpotqa_distractor.jsonl").read_text().splitlines()[:2]
    gold = {
        record["id"]: [i for i, p in enumerate(record["passages"]) if p["supporting"]]
        for record in map(json.loads, lines)
    }
    for row in rows:
        kept, calls = row["kept"], sum(s["calls"] for s in row["steps"] if s["name"] == "filter")
        if row["method"] == "oracle":
            assert kept == gold[row["id"]]
            assert row["scores"]["both_gold"] == 1.0
        if row["method"] == "none":
            assert kept == list(range(10))
        if row["method"] == "bm25_k4":
            assert len(kept) == 4
        if row["method"] == "s2a_node":  # one call per question, P(keep) as the kept nodes' scores
            assert calls == 1
            assert all(0.0 <= p <= 1.0 for p in (row["kept_scores"] or {}).values())
    table = (folder / "table.md").read_text()
    assert "| oracle | 100.0 [34.2, 100.0] n=2 | 100.0 [100.0, 100.0] n=2 |" in table
    for method in methods.split(","):
        assert f"| {method} | " in table
    assert (folder / "figure.png").read_bytes()[:4] == b"\x89PNG"
