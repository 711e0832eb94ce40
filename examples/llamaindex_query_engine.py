"""LlamaIndex: a BM25 query engine over the planted corpus, with and without S2A.

BM25 brings back each question's answering nodes together with a planted opinionated node
and an off-topic one; `S2ANodePostprocessor` keeps the nodes that help answer, in one call.

    S2A_TGI_URL=http://127.0.0.1:8080 python examples/llamaindex_query_engine.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import TextNode
from llama_index.retrievers.bm25 import BM25Retriever

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.corpus import DOCS, QUERIES
from llamaindex_s2a import S2ANodePostprocessor, tgi_llm

TOP_K = 4


def main() -> None:
    llm = tgi_llm(os.environ.get("S2A_TGI_URL", "http://127.0.0.1:8080"), max_new_tokens=48)
    nodes = [TextNode(text=d.text, id_=d.id) for d in DOCS]
    retriever = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=TOP_K)
    plain = RetrieverQueryEngine.from_args(retriever, llm=llm)
    s2a = RetrieverQueryEngine.from_args(
        retriever, llm=llm, node_postprocessors=[S2ANodePostprocessor(llm=llm)]
    )
    for query in QUERIES:
        without = plain.query(query.question)
        with_s2a = s2a.query(query.question)
        print(f"=== {query.question}")
        print("retrieved:", [n.node.node_id for n in without.source_nodes])
        print("kept by S2A:", [n.node.node_id for n in with_s2a.source_nodes])
        print("answer without S2A:", str(without).strip())
        print("answer with S2A:", str(with_s2a).strip())


if __name__ == "__main__":
    main()
