"""LangChain's side of `s2a eval`: its peers and the hotpotqa methods it runs.

Registered under the entry-point group `s2a.evaluation` (see `s2a.evaluation.frameworks`); the
core never imports this module. Needs the `langchain` and `examples` extras.

- prompt tasks (`peers`): `LLMChainExtractor` and `LLMChainFilter`, each over the prompt's
  sentences as documents, the prompt as the query; the answer step gets what was kept, in order.
- hotpotqa (`hotpotqa_filters`), each paragraph one `Document` (text `"<title>: <sentences>"`,
  metadata `title` and `index`, which maps what a filter returns back to the paragraph):
  - `s2a_compressor*`: `S2ADocumentCompressor(llm=tgi_chat_model(url), ...)` through `select()`,
    the call `compress_documents` makes, which also gives every paragraph's P(keep) and the
    fallback reason; what is kept, in which order, is what `compress_documents` returns;
  - `llm_chain_filter`, `llm_chain_extractor`: `from_llm(chat)` (one call per paragraph);
  - `llm_listwise_rerank`: `LLMListwiseRerank.from_llm(chat)` (top_n 3). It needs
    `with_structured_output`, and none of ChatHuggingFace's forms reaches TGI: `function_calling`
    refuses a pydantic schema, `json_schema` and `json_mode` send a `json_object` response
    format, which TGI rejects (422). It runs on `GrammarChat`, the same model whose structured
    output is TGI's own `json` grammar; LangChain's prompt, parsing and top_n are unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal

from langchain_classic.retrievers.document_compressors import (
    LLMChainExtractor,
    LLMChainFilter,
    LLMListwiseRerank,
)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.language_models import LanguageModelInput
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable
from langchain_huggingface import ChatHuggingFace
from pydantic import BaseModel

from langchain_s2a import S2ADocumentCompressor, tgi_chat_model
from s2a.evaluation.hotpotqa import S2A_SETTINGS, HotpotRecord, Selection
from s2a.evaluation.hotpotqa_run import TIMEOUT, Filter, guarded, no_failed_call, selection_of
from s2a.evaluation.methods import Kept, Peer, join_kept

LISTWISE_TOP_N = 3
"""LLMListwiseRerank's default `top_n`."""


class _Calls(BaseCallbackHandler):
    """Counts LangChain model calls and the tokens the server reported for them."""

    def __init__(self) -> None:
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self._lock = threading.Lock()

    def on_llm_end(self, response: LLMResult, **_: Any) -> None:
        with self._lock:
            self.calls += 1
            for generations in response.generations:
                for generation in generations:
                    usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
                    if usage:
                        self.input_tokens += usage.get("input_tokens", 0)
                        self.output_tokens += usage.get("output_tokens", 0)

    def kept(self, text: str) -> Kept:
        return Kept(
            text=text,
            calls=self.calls,
            input_tokens=self.input_tokens or None,
            output_tokens=self.output_tokens or None,
        )


def _sentences(sentences: list[str]) -> list[Document]:
    return [Document(s, metadata={"index": i}) for i, s in enumerate(sentences)]


def peers(base_url: str, *, max_new_tokens: int = 256) -> dict[str, Peer]:
    """`llm_chain_extractor` and `llm_chain_filter` on the TGI server at `base_url` (greedy)."""
    chat = tgi_chat_model(base_url, max_new_tokens=max_new_tokens)
    extractor = LLMChainExtractor.from_llm(chat)
    keep_or_drop = LLMChainFilter.from_llm(chat)

    def llm_chain_extractor(sentences: list[str], query: str) -> Kept:
        calls = _Calls()
        out = extractor.compress_documents(_sentences(sentences), query, callbacks=[calls])
        ordered = sorted(out, key=lambda d: int(d.metadata["index"]))
        return calls.kept(" ".join(d.page_content.strip() for d in ordered))

    def llm_chain_filter(sentences: list[str], query: str) -> Kept:
        calls = _Calls()
        out = keep_or_drop.compress_documents(_sentences(sentences), query, callbacks=[calls])
        return calls.kept(join_kept(query, [int(d.metadata["index"]) for d in out]))

    return {"llm_chain_extractor": llm_chain_extractor, "llm_chain_filter": llm_chain_filter}


def documents(record: HotpotRecord) -> list[Document]:
    """The question's paragraphs as LangChain documents."""
    return [
        Document(p.text, id=f"{record.id}/{i}", metadata={"title": p.title, "index": i})
        for i, p in enumerate(record.passages)
    ]


def compressor_filter(name: str, compressor: S2ADocumentCompressor) -> Filter:
    """`S2ADocumentCompressor.select` over a question's paragraphs, in `compress_documents`' order."""

    def run(record: HotpotRecord) -> Selection:
        selected = guarded(name, lambda: compressor.select(documents(record), record.question))
        no_failed_call(selected.fallback)
        order = selected.ranked if selected.scores else selected.keep
        texts = {i: text for i, text in selected.texts.items() if text != record.passages[i].text}
        return Selection(kept=order, texts=texts, scores=dict(selected.scores), fallback=selected.fallback)

    return run


def document_filter(name: str, compressor: BaseDocumentCompressor) -> Filter:
    """A LangChain document compressor over a question's paragraphs, as a `Filter`."""

    def run(record: HotpotRecord) -> Selection:
        kept = guarded(name, lambda: compressor.compress_documents(documents(record), record.question))
        return selection_of(record, [(int(d.metadata["index"]), d.page_content, None) for d in kept])

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


def hotpotqa_filters(base_url: str, methods: Sequence[str]) -> dict[str, Filter]:
    """The LangChain methods among `methods`, on the server at `base_url`."""
    if not any(m.startswith(("s2a_compressor", "llm_chain", "llm_listwise")) for m in methods):
        return {}
    chat = tgi_chat_model(base_url, timeout=TIMEOUT)
    built: dict[str, Filter] = {}
    for suffix, settings in S2A_SETTINGS.items():
        built[f"s2a_compressor{suffix}"] = compressor_filter(
            "S2ADocumentCompressor", S2ADocumentCompressor(llm=chat, **settings)
        )
    built["llm_chain_filter"] = document_filter("LLMChainFilter", LLMChainFilter.from_llm(chat))
    built["llm_chain_extractor"] = document_filter("LLMChainExtractor", LLMChainExtractor.from_llm(chat))
    listwise = LLMListwiseRerank.from_llm(grammar_chat(chat), top_n=LISTWISE_TOP_N)
    built["llm_listwise_rerank"] = document_filter("LLMListwiseRerank", listwise)
    return {m: f for m, f in built.items() if m in methods}
