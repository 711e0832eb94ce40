"""Every example script runs to the end against the real local server and prints its sections.

The model is small, so answers are not judged here; the structure is: each query or turn
printed its lines, and S2A kept only documents that were retrieved. Not run here:
examples/opinionated_question.py (tests/unit/test_public_api.py runs it under the fake TGI),
and corpus.py and retrievers.py, which are modules the scripts import.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from examples.corpus import QUERIES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOT_SCRIPTS = {"__init__.py", "corpus.py", "retrievers.py", "opinionated_question.py"}
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in NOT_SCRIPTS)
TIMEOUT_SECONDS = 1200  # a few dozen calls to a 1.5B model on a shared CPU


def run_example(name: str, server_url: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"}
    env["S2A_TGI_URL"] = server_url
    done = subprocess.run(  # noqa: S603 - our own script, our own interpreter
        [sys.executable, str(EXAMPLES / name)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"{name} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def values(stdout: str, label: str) -> list[str]:
    """What follows `label` on each line that starts with it."""
    return re.findall(rf"^{re.escape(label)}(.*)$", stdout, re.MULTILINE)


def ids(stdout: str, label: str) -> list[list[str]]:
    lists = [ast.literal_eval(v.strip()) for v in values(stdout, label)]
    assert all(isinstance(found, list) for found in lists)
    return lists


def check_retrieval(stdout: str, *, answers: tuple[str, ...]) -> None:
    assert values(stdout, "=== ") == [q.question for q in QUERIES]
    retrieved, kept = ids(stdout, "retrieved: "), ids(stdout, "kept by S2A: ")
    assert len(retrieved) == len(kept) == len(QUERIES)
    for found, selected in zip(retrieved, kept, strict=True):
        assert len(found) == 4
        assert set(selected) <= set(found)  # S2A selects among the retrieved; it invents nothing
    for label in answers:
        assert len(values(stdout, label)) == len(QUERIES), label


def check_llamaindex_query_engine(stdout: str) -> None:
    check_retrieval(stdout, answers=("answer without S2A: ", "answer with S2A: "))


def check_langchain_retrieval_chain(stdout: str) -> None:
    check_retrieval(stdout, answers=("answer with S2A: ",))


def check_conversational_chain(stdout: str) -> None:
    turns = values(stdout, "=== turn ")
    assert len(turns) == 2
    assert len(values(stdout, "--- S2A prompt")) == len(turns)
    assert len(values(stdout, "--- answer:")) == len(turns)
    for turn in turns:
        question = turn.split(": ", 1)[1]
        assert f"Question: {question}" in stdout  # the question reaches the answer step verbatim
    assert values(stdout, "=== history: ") == ["8 messages"]


def check_agent_with_tools(stdout: str) -> None:
    sections = values(stdout, "=== ")
    assert [s.split(":")[0] for s in sections] == [
        "LangChain create_agent with S2AMiddleware",
        "LlamaIndex FunctionAgent with a query engine tool and S2ANodePostprocessor",
    ]
    # LangChain: the tool's raw result, what the middleware let through, what it dropped.
    assert len(values(stdout, "--- raw search output:")) == 1
    assert len(values(stdout, "--- after the S2A middleware")) == 1
    dropped_sentences, dropped_pages = ids(stdout, "--- dropped by S2A: ")
    assert any("James Gosling" in sentence for sentence in dropped_sentences)  # the opinion, by its words
    assert "SPONSORED" in stdout  # the raw output is shown with its noise
    # LlamaIndex: the query engine tool's S2A step, by page, from its instrumentation events.
    assert values(stdout, "(the agent called search_docs(")
    (kept_pages,) = ids(stdout, "--- S2A kept: ")
    assert "answer" in kept_pages
    assert "opinion" in dropped_pages
    assert len(values(stdout, "--- llamaindex agent answer:")) == 1
    assert len(values(stdout, "--- langchain agent answer:")) == 1


CHECKS: dict[str, Callable[[str], None]] = {
    "llamaindex_query_engine.py": check_llamaindex_query_engine,
    "langchain_retrieval_chain.py": check_langchain_retrieval_chain,
    "conversational_chain.py": check_conversational_chain,
    "agent_with_tools.py": check_agent_with_tools,
}


def test_the_known_examples_are_scripts() -> None:
    assert set(CHECKS) <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_and_prints_its_sections(name: str, server_url: str) -> None:
    stdout = run_example(name, server_url)
    print(stdout)
    assert stdout.strip(), f"{name} printed nothing"
    check = CHECKS.get(name)
    if check is not None:
        check(stdout)
