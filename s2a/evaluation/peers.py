"""The peers: LangChain's LLMChainExtractor and LLMChainFilter, LlamaIndex's LLMRerank.

They run in the same harness, on the same server, as the S2A methods.

Each sees what the S2A step sees: the whole prompt. Its sentences are the documents (or
nodes) to filter and the prompt is the query; the answer step then gets what was kept, in
the original order. Needs the `langchain`, `llamaindex` and `examples` extras.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from langchain_classic.retrievers.document_compressors import LLMChainExtractor, LLMChainFilter
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.outputs import LLMResult
from llama_index.core.postprocessor import LLMRerank
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from langchain_s2a import tgi_chat_model
from llamaindex_s2a import tgi_llm
from s2a.evaluation.methods import Kept, Peer, join_kept

RERANK_BATCH = 10
"""LLMRerank's `choice_batch_size`: sentences per call."""


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


def _documents(sentences: list[str]) -> list[Document]:
    return [Document(s, metadata={"index": i}) for i, s in enumerate(sentences)]


def build_peers(base_url: str, *, max_new_tokens: int = 256) -> dict[str, Peer]:
    """The three peers, built on the TGI server at `base_url` (greedy decoding)."""
    chat = tgi_chat_model(base_url, max_new_tokens=max_new_tokens)
    extractor = LLMChainExtractor.from_llm(chat)
    keep_or_drop = LLMChainFilter.from_llm(chat)
    llm = tgi_llm(base_url, max_new_tokens=max_new_tokens)

    def llm_chain_extractor(sentences: list[str], query: str) -> Kept:
        calls = _Calls()
        out = extractor.compress_documents(_documents(sentences), query, callbacks=[calls])
        ordered = sorted(out, key=lambda d: int(d.metadata["index"]))
        return calls.kept(" ".join(d.page_content.strip() for d in ordered))

    def llm_chain_filter(sentences: list[str], query: str) -> Kept:
        calls = _Calls()
        out = keep_or_drop.compress_documents(_documents(sentences), query, callbacks=[calls])
        return calls.kept(join_kept(query, [int(d.metadata["index"]) for d in out]))

    def llm_rerank(sentences: list[str], query: str) -> Kept:
        rerank = LLMRerank(llm=llm, top_n=len(sentences), choice_batch_size=RERANK_BATCH)
        nodes = [NodeWithScore(node=TextNode(text=s, id_=str(i)), score=1.0) for i, s in enumerate(sentences)]
        out = rerank.postprocess_nodes(nodes, QueryBundle(query))
        # LLMRerank makes one LLM call per batch of `choice_batch_size` nodes.
        return Kept(
            text=join_kept(query, [int(n.node.node_id) for n in out]),
            calls=math.ceil(len(sentences) / RERANK_BATCH),
        )

    return {
        "llm_chain_extractor": llm_chain_extractor,
        "llm_chain_filter": llm_chain_filter,
        "llm_rerank": llm_rerank,
    }
