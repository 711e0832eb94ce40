"""Every Python block in the README, the docs and the public docstrings runs as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import langchain_s2a
import llamaindex_s2a
from tests.fake_tgi import FakeTGI, plausible_reply, serve

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def test_docs_have_examples() -> None:
    assert blocks(ROOT / "README.md")


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_markdown_python_blocks_run(path: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    # Examples that reach a TGI server get the in-memory one; blocks of a page share a namespace.
    with serve(FakeTGI(reply=plausible_reply)):
        for code in blocks(path):
            exec(compile(code, str(path), "exec"), namespace)  # noqa: S102 - our own docs


@pytest.mark.parametrize(
    "component",
    [
        langchain_s2a.S2ARunnable,
        langchain_s2a.S2ADocumentCompressor,
        langchain_s2a.S2AMiddleware,
        llamaindex_s2a.S2ANodePostprocessor,
    ],
    ids=lambda c: c.__name__,
)
def test_docstring_examples_run(component: type) -> None:
    name = component.__name__
    examples = re.findall(r"```python\n(.*?)```", component.__doc__ or "", re.DOTALL)
    assert examples, f"{name} has no example"
    namespace: dict[str, object] = {}
    for block in examples:
        exec(compile(textwrap.dedent(block), name, "exec"), namespace)  # noqa: S102 - our own docstrings
