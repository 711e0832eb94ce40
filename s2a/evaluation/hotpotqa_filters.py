"""The hotpotqa methods that need a model: S2A's two adapters and the peers, as users run them.

Each paragraph of a question is one LlamaIndex `TextNode` or LangChain `Document`: its text is
`Passage.text` (`"<title>: <sentences>"`), its metadata the `title` and the paragraph's `index`,
which maps what a filter returns back to the paragraph exactly. The metadata is hidden from
LlamaIndex's LLM view (LLMRerank would otherwise print `index: 3` into its prompt; the title is in
the text already). Every filter runs on the same server as the answer step, through `tgi_llm`
and `tgi_chat_model` with their defaults, except for a 600 s read timeout (a shared CPU server
can queue a request for minutes; `TGIChat` waits as long).

- `s2a_node*`: `S2ANodePostprocessor(llm=tgi_llm(url), ...)` through `postprocess_nodes`; its
  fallback reason comes from its `S2ASelectionEndEvent`.
- `s2a_compressor*`: `S2ADocumentCompressor(llm=tgi_chat_model(url), ...)` through `select()`,
  the call `compress_documents` makes, which also gives every paragraph's P(keep) and the
  fallback reason; what is kept, in which order, is what `compress_documents` returns.
- `llm_rerank_top<n>`: LlamaIndex's `LLMRerank(llm=..., top_n=n)` (one batch of 10 per call).
  LLMRerank scores every node, sorts, then cuts at `top_n`, so its ranking does not depend on
  `top_n`: the three methods share one `LLMRerank(top_n=4)` call per question, each takes its
  first n, and each reports that call's seconds and count.
- `llm_chain_filter`, `llm_chain_extractor`: LangChain's, `from_llm(chat)` (one call per paragraph).
- `llm_listwise_rerank`: LangChain's `LLMListwiseRerank.from_llm(chat)` (top_n 3). It needs
  `with_structured_output`, and none of ChatHuggingFace's forms reaches TGI: `function_calling`
  refuses a pydantic schema, `json_schema` and `json_mode` send a `json_object` response format,
  which TGI rejects (422). It runs on `GrammarChat`, the same model whose structured output is
  TGI's own `json` grammar; LangChain's prompt, parsing and top_n are unchanged.

An exception a filter raises on its own account (an unparsable reply) is that question's outcome
(`FilterRaisedError`); a server failure is an error, retried on the next run, and so is an S2A
fallback caused by a failed call (the adapters keep everything then, which is not the method's
choice).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any, Literal, TypeVar

import httpx
from langchain_classic.retrievers.document_compressors import (
    LLMChainExtractor,
    LLMChainFilter,
    LLMListwiseRerank,
)
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.language_models import LanguageModelInput
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.runnables import Runnable
from langchain_huggingface import ChatHuggingFace
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.postprocessor import LLMRerank
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, TextNode
from pydantic import BaseModel

from langchain_s2a import S2ADocumentCompressor, tgi_chat_model
from llamaindex_s2a import S2ANodePostprocessor, S2ASelectionEndEvent, tgi_llm
from s2a._errors import S2ACallError
from s2a.evaluation.hotpotqa import RERANK_TOP_NS, S2A_SETTINGS, FilterRaisedError, HotpotRecord, Selection
from s2a.evaluation.hotpotqa_run import Filter, counted_calls

TIMEOUT = 600.0
"""Seconds to wait for a filter's reply (as `TGIChat` waits for the answer's)."""
LISTWISE_TOP_N = 3
"""LLMListwiseRerank's default `top_n`."""
_METADATA = ["title", "index"]
_SERVER_FAILURES = (httpx.HTTPError, OSError, S2ACallError)
_CALL_FAILED = "the S2A call failed"  # s2a.selection's fallback reason for a failed call

T = TypeVar("T")


def _guarded(name: str, call: Callable[[], T]) -> T:
    """`call()`; what it raises that is not the server's becomes the question's `FilterRaisedError`."""
    try:
        return call()
    except _SERVER_FAILURES:
        raise
    except Exception as exc:
        msg = f"{name} raised {type(exc).__name__}: {exc}"
        raise FilterRaisedError(msg) from exc


def _no_failed_call(fallback: str | None) -> None:
    if fallback is not None and _CALL_FAILED in fallback:
        msg = f"the server failed during the S2A step ({fallback})"
        raise RuntimeError(msg)


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


def documents(record: HotpotRecord) -> list[Document]:
    """The question's paragraphs as LangChain documents."""
    return [
        Document(p.text, id=f"{record.id}/{i}", metadata={"title": p.title, "index": i})
        for i, p in enumerate(record.passages)
    ]


def _selection(
    record: HotpotRecord, kept: Sequence[tuple[int, str, float | None]], fallback: str | None = None
) -> Selection:
    """From (index, text, score) in the method's order; a paragraph returned twice counts once."""
    first = {index: (text, score) for index, text, score in reversed(kept)}
    order = list(dict.fromkeys(index for index, _, _ in kept))
    return Selection(
        kept=order,
        texts={i: first[i][0] for i in order if first[i][0] != record.passages[i].text},
        scores={i: score for i in order if (score := first[i][1]) is not None},
        fallback=fallback,
    )


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
            kept = _guarded(
                name, lambda: postprocessor.postprocess_nodes(nodes(record), query_str=record.question)
            )
        fallback = "; ".join(e.fallback for e in ends if e.fallback) or None
        _no_failed_call(fallback)
        out = [(int(n.node.metadata["index"]), n.node.get_content(), n.score) for n in kept]
        return _selection(record, out, fallback)

    return run


def compressor_filter(name: str, compressor: S2ADocumentCompressor) -> Filter:
    """`S2ADocumentCompressor.select` over a question's paragraphs, in `compress_documents`' order."""

    def run(record: HotpotRecord) -> Selection:
        selected = _guarded(name, lambda: compressor.select(documents(record), record.question))
        _no_failed_call(selected.fallback)
        order = selected.ranked if selected.scores else selected.keep
        texts = {i: text for i, text in selected.texts.items() if text != record.passages[i].text}
        return Selection(kept=order, texts=texts, scores=dict(selected.scores), fallback=selected.fallback)

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


def document_filter(name: str, compressor: BaseDocumentCompressor) -> Filter:
    """A LangChain document compressor over a question's paragraphs, as a `Filter`."""

    def run(record: HotpotRecord) -> Selection:
        kept = _guarded(name, lambda: compressor.compress_documents(documents(record), record.question))
        return _selection(record, [(int(d.metadata["index"]), d.page_content, None) for d in kept])

    return run


class GrammarChat(ChatHuggingFace):
    """`ChatHuggingFace` whose structured output is TGI's `json` grammar (see the module's docstring)."""

    def with_structured_output(
        self,
        schema: dict[str, Any] | type[BaseModel] | None = None,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",  # noqa: ARG002
        include_raw: bool = False,
        **_: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Bind the schema as TGI's grammar; parse the reply into the pydantic `schema`."""
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)) or include_raw:
            msg = "GrammarChat gives structured output for a pydantic schema only, without include_raw"
            raise NotImplementedError(msg)
        grammar = {"type": "json", "value": schema.model_json_schema()}
        return self.bind(response_format=grammar) | PydanticOutputParser(pydantic_object=schema)


def grammar_chat(chat: ChatHuggingFace) -> GrammarChat:
    """`chat`, the same settings and endpoint, as a `GrammarChat`."""
    return GrammarChat(**{field: getattr(chat, field) for field in chat.model_fields_set})


def build_filters(base_url: str, methods: Sequence[str]) -> dict[str, Filter]:
    """The filters of `methods` that need a model (others are left out), on the server at `base_url`."""
    wanted = set(methods)
    built: dict[str, Filter] = {}
    if any(m.startswith(("s2a_node", "llm_rerank")) for m in wanted):
        llm = tgi_llm(base_url, timeout=TIMEOUT)
        for suffix, settings in S2A_SETTINGS.items():
            built[f"s2a_node{suffix}"] = node_filter(
                "S2ANodePostprocessor", S2ANodePostprocessor(llm=llm, **settings)
            )
        rerank = LLMRerank(llm=llm, top_n=max(RERANK_TOP_NS))  # each top_n is a prefix of this
        for n, cut in shared_ranking("LLMRerank", rerank, RERANK_TOP_NS).items():
            built[f"llm_rerank_top{n}"] = cut
    if any(m.startswith(("s2a_compressor", "llm_chain", "llm_listwise")) for m in wanted):
        chat = tgi_chat_model(base_url, timeout=TIMEOUT)
        for suffix, settings in S2A_SETTINGS.items():
            built[f"s2a_compressor{suffix}"] = compressor_filter(
                "S2ADocumentCompressor", S2ADocumentCompressor(llm=chat, **settings)
            )
        built["llm_chain_filter"] = document_filter("LLMChainFilter", LLMChainFilter.from_llm(chat))
        built["llm_chain_extractor"] = document_filter("LLMChainExtractor", LLMChainExtractor.from_llm(chat))
        listwise = LLMListwiseRerank.from_llm(grammar_chat(chat), top_n=LISTWISE_TOP_N)
        built["llm_listwise_rerank"] = document_filter("LLMListwiseRerank", listwise)
    return {m: f for m, f in built.items() if m in wanted}
