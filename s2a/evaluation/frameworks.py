"""How the harness reaches LangChain and LlamaIndex without the core importing either adapter.

Each adapter package registers a module under the entry-point group `s2a.evaluation`
(`pyproject.toml`, `[project.entry-points."s2a.evaluation"]`) with two functions:

- `peers(base_url) -> dict[str, Peer]`: the framework's filters for the prompt tasks
  (gsm_ic, trivia, ...), each over the prompt's sentences;
- `hotpotqa_filters(base_url, methods) -> dict[str, Filter]`: the hotpotqa methods it can run
  among `methods`, each over a question's paragraphs.

The harness asks every registered module and takes the union, so a method is served by the
adapter whose framework it needs, and an adapter whose framework is not installed is named in
the error for the methods it would have served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from types import ModuleType
from typing import TypeVar

from s2a.evaluation.hotpotqa import MODEL_FREE
from s2a.evaluation.hotpotqa_run import Filter
from s2a.evaluation.methods import Peer

T = TypeVar("T")

GROUP = "s2a.evaluation"
"""The entry-point group the adapters register their evaluation modules under."""


class FrameworkMissingError(RuntimeError):
    """A method needs a framework whose adapter could not be loaded (its extra is not installed)."""


def _modules() -> tuple[list[ModuleType], list[str]]:
    """The adapters' evaluation modules that load, and why each of the others did not."""
    loaded: list[ModuleType] = []
    failed: list[str] = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        try:
            loaded.append(point.load())
        except ImportError as exc:
            failed.append(f"{point.name} ({exc})")
    return loaded, failed


def _union(wanted: Sequence[str], build: Callable[[ModuleType], Mapping[str, T]], what: str) -> dict[str, T]:
    modules, failed = _modules()
    built: dict[str, T] = {}
    for module in modules:
        built.update(build(module))
    missing = [m for m in wanted if m not in built]
    if missing or not modules:
        why = f"; not loaded: {', '.join(failed)}" if failed else ""
        named = f" ({', '.join(missing)})" if missing else ""
        msg = (
            f"{what}{named} need the langchain, llamaindex and examples extras: "
            f'pip install "s2a[langchain,llamaindex,examples]"{why}'
        )
        raise FrameworkMissingError(msg)
    return built


def peers(base_url: str) -> dict[str, Peer]:
    """Every registered adapter's peers for the prompt tasks, on the TGI server at `base_url`."""
    return _union((), lambda module: module.peers(base_url), "the peers")


def hotpotqa_filters(base_url: str, methods: Sequence[str]) -> dict[str, Filter]:
    """The hotpotqa filters of `methods` that need a model, each built by the adapter that serves it."""
    needed = [m for m in methods if m not in MODEL_FREE]
    return _union(needed, lambda module: module.hotpotqa_filters(base_url, needed), "the hotpotqa filters")
