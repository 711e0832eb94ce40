"""LlamaIndex's side of `s2a eval`: its peer and the hotpotqa methods it runs.

Registered under the entry-point group `s2a.evaluation` (see `s2a.evaluation.frameworks`); the
core never imports this module. Needs the `llamaindex` extra.

- prompt tasks (`peers`): `llm_rerank`, LlamaIndex's `LLMRerank` over the prompt's sentences as
  nodes (batches of `RERANK_BATCH`), the prompt as the query.
- hotpotqa (`hotpotqa_filters`), each paragraph one `TextNode` (text `"<title>: <sentences>"`,
  metadata `title` and `index`, hidden from the LLM's view: LLMRerank would otherwise print
  `index: 3` into its prompt; the title is in the text already):
  - `s2a_node*`: `S2ANodePostprocessor(llm=tgi_llm(url), ...)` through `postprocess_nodes`; its
    fallback reason comes from its `S2ASelectionEndEvent`;
  - `llm_rerank_top<n>`: `LLMRerank(llm=..., top_n=n)` (one batch of 10 per call). LLMRerank
    scores every node, sorts, then cuts at `top_n`, so its ranking does not depend on `top_n`:
    the three methods share one `LLMRerank(top_n=4)` call per question, each takes its first n,
    and each reports that call's seconds and count.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.postprocessor import LLMRerank
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llamaindex_s2a import S2ANodePostprocessor, S2ASelectionEndEvent, tgi_llm
from s2a.evaluation.hotpotqa import RERANK_TOP_NS, S2A_SETTINGS, HotpotRecord, Selection
from s2a.evaluation.hotpotqa_run import TIMEOUT, Filter, counted_calls, guarded, no_failed_call, selection_of
from s2a.evaluation.methods import Kept, Peer, join_kept

RERANK_BATCH = 10
"""LLMRerank's `choice_batch_size` on the prompt tasks: sentences per call."""
_METADATA = ["title", "index"]


def peers(base_url: str, *, max_new_tokens: int = 256) -> dict[str, Peer]:
    """`llm_rerank` on the TGI server at `base_url` (greedy)."""
    llm = tgi_llm(base_url, max_new_tokens=max_new_tokens)

    def llm_rerank(sentences: list[str], query: str) -> Kept:
        rerank = LLMRerank(llm=llm, top_n=len(sentences), choice_batch_size=RERANK_BATCH)
        nodes = [NodeWithScore(node=TextNode(text=s, id_=str(i)), score=1.0) for i, s in enumerate(sentences)]
        out = rerank.postprocess_nodes(nodes, QueryBundle(query))
        # LLMRerank makes one LLM call per batch of `choice_batch_size` nodes.
        return Kept(
            text=join_kept(query, [int(n.node.node_id) for n in out]),
            calls=math.ceil(len(sentences) / RERANK_BATCH),
        )

    return {"llm_rerank": llm_rerank}


def nodes(record: HotpotRecord) -> list[NodeWithScore]:
    """The question's paragraphs as LlamaIndex nodes (no retrieval score: nothing retrieved them)."""
    return [
        NodeWithScore(
            node=TextNode(
                text=p.text,
                id_=f"{record.id}/{i}",
                metadata={"title": p.title, "index": i},
                excluded_llm_metadata_keys=_METADATA,
                excluded_embed_metadata_keys=_METADATA,
            )
        )
        for i, p in enumerate(record.passages)
    ]


_ends: ContextVar[list[S2ASelectionEndEvent] | None] = ContextVar("s2a_eval_selection_ends", default=None)
_register = threading.Lock()


class _SelectionEnds(BaseEventHandler):
    """Hands each `S2ASelectionEndEvent` to the question being filtered in this context."""

    @classmethod
    def class_name(cls) -> str:
        """The handler's name."""
        return "S2AEvalSelectionEnds"

    def handle(self, event: BaseEvent, **_: Any) -> None:
        """Keep the event when it is an S2A selection's end and a question is being filtered."""
        seen = _ends.get()
        if seen is not None and isinstance(event, S2ASelectionEndEvent):
            seen.append(event)


@contextmanager
def _selection_ends() -> Iterator[list[S2ASelectionEndEvent]]:
    root = get_dispatcher()
    with _register:  # once per process: the handler does nothing outside this block
        if not any(isinstance(h, _SelectionEnds) for h in root.event_handlers):
            root.add_event_handler(_SelectionEnds())
    seen: list[S2ASelectionEndEvent] = []
    token = _ends.set(seen)
    try:
        yield seen
    finally:
        _ends.reset(token)


def node_filter(name: str, postprocessor: BaseNodePostprocessor) -> Filter:
    """A LlamaIndex postprocessor over a question's paragraphs, as a `Filter`."""

    def run(record: HotpotRecord) -> Selection:
        with _selection_ends() as ends:
            kept = guarded(
                name, lambda: postprocessor.postprocess_nodes(nodes(record), query_str=record.question)
            )
        fallback = "; ".join(e.fallback for e in ends if e.fallback) or None
        no_failed_call(fallback)
        out = [(int(n.node.metadata["index"]), n.node.get_content(), n.score) for n in kept]
        return selection_of(record, out, fallback)

    return run


def shared_ranking(
    name: str, postprocessor: BaseNodePostprocessor, top_ns: Sequence[int]
) -> dict[int, Filter]:
    """One `Filter` per n in `top_ns`: the first n of what `postprocessor` returns, run once per question.

    The first method to reach a question runs it (the others wait for it); every method reports
    that run's seconds and calls (`Selection.cost`). A run that raised is not kept: the next
    method to reach the question runs it again.
    """
    full = node_filter(name, postprocessor)
    done: dict[str, Selection] = {}
    running: dict[str, threading.Lock] = {}
    guard = threading.Lock()

    def ranking(record: HotpotRecord) -> Selection:
        with guard:
            lock = running.setdefault(record.id, threading.Lock())
        with lock:
            if record.id not in done:
                started = time.perf_counter()
                with counted_calls() as calls:
                    selection = full(record)
                    done[record.id] = replace(selection, cost=(time.perf_counter() - started, calls()))
            return done[record.id]

    def cut(n: int) -> Filter:
        def run(record: HotpotRecord) -> Selection:
            selection = ranking(record)
            kept = selection.kept[:n]
            return replace(
                selection,
                kept=kept,
                texts={i: t for i, t in selection.texts.items() if i in kept},
                scores={i: p for i, p in selection.scores.items() if i in kept},
            )

        return run

    return {n: cut(n) for n in top_ns}


def hotpotqa_filters(base_url: str, methods: Sequence[str]) -> dict[str, Filter]:
    """The LlamaIndex methods among `methods`, on the server at `base_url`."""
    if not any(m.startswith(("s2a_node", "llm_rerank")) for m in methods):
        return {}
    llm = tgi_llm(base_url, timeout=TIMEOUT)
    built: dict[str, Filter] = {}
    for suffix, settings in S2A_SETTINGS.items():
        built[f"s2a_node{suffix}"] = node_filter(
            "S2ANodePostprocessor", S2ANodePostprocessor(llm=llm, **settings)
        )
    rerank = LLMRerank(llm=llm, top_n=max(RERANK_TOP_NS))  # each top_n is a prefix of this
    for n, cut in shared_ranking("LLMRerank", rerank, RERANK_TOP_NS).items():
        built[f"llm_rerank_top{n}"] = cut
    return {m: f for m, f in built.items() if m in methods}
