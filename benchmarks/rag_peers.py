"""S2A's RAG filters next to the peers, on the same server, model and planted corpus.

    S2A_TGI_URL=http://127.0.0.1:8080 python benchmarks/rag_peers.py [--top-k 4] [--methods ...]
        [--json PATH]

For each query of examples/corpus.py, BM25 (bm25s) retrieves the top-k documents (which
include the planted opinionated and off-topic ones); each method filters them. Per method:
planted distractors dropped, relevant documents kept, the answer's correctness from the kept
documents, wall time of the filter per query, and LLM calls per query, counted by the model
server itself (its `/metrics` request counter), so every framework is counted the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import bm25s
import httpx
from langchain_classic.retrievers.document_compressors import LLMChainExtractor, LLMChainFilter
from langchain_core.documents import Document
from llama_index.core.postprocessor import LLMRerank
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.corpus import DISTRACTORS, DOCS, QUERIES, Query, correct
from langchain_s2a import S2ADocumentCompressor, tgi_chat_model
from llamaindex_s2a import S2ANodePostprocessor, tgi_llm

Filter = Callable[[list[Document], str], list[Document]]
ANSWER_PROMPT = "Answer in a few words, using the context.\n\nContext:\n{context}\n\nQuestion: {question}"


@dataclass
class Tally:
    """What one method did over all queries."""

    dropped: int = 0
    distractors: int = 0
    kept_relevant: int = 0
    relevant: int = 0
    correct: int = 0
    seconds: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)


def requests_served(base_url: str) -> float:
    """The server's count of requests received (TGI's `tgi_request_count`)."""
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        if family.name == "tgi_request_count":
            return sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
    msg = "the server's /metrics has no tgi_request_count"
    raise RuntimeError(msg)


def retrieve(question: str, k: int) -> list[Document]:
    """BM25 top-k over the corpus, as LangChain documents."""
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([d.text for d in DOCS], show_progress=False), show_progress=False)
    found, _ = retriever.retrieve(bm25s.tokenize([question], show_progress=False), k=k, show_progress=False)
    # The id is in the metadata too: LLMChainExtractor returns new documents without `id`.
    return [
        Document(DOCS[int(i)].text, id=DOCS[int(i)].id, metadata={"id": DOCS[int(i)].id}) for i in found[0]
    ]


def llama_filter(postprocessor: S2ANodePostprocessor | LLMRerank) -> Filter:
    """A LlamaIndex postprocessor as a filter over documents."""

    def run(docs: list[Document], question: str) -> list[Document]:
        nodes = [NodeWithScore(node=TextNode(text=d.page_content, id_=str(d.id)), score=1.0) for d in docs]
        kept = postprocessor.postprocess_nodes(nodes, QueryBundle(question))
        return [
            Document(n.node.get_content(), id=n.node.node_id, metadata={"id": n.node.node_id}) for n in kept
        ]

    return run


def methods(base_url: str) -> dict[str, Filter]:
    """Every method, built on the same server."""
    chat = tgi_chat_model(base_url, max_new_tokens=256)
    llm = tgi_llm(base_url, max_new_tokens=256)
    return {
        "none (all retrieved)": lambda docs, _q: docs,
        "S2ANodePostprocessor (scored, default)": llama_filter(S2ANodePostprocessor(llm=llm)),
        "S2ANodePostprocessor (keep_list)": llama_filter(S2ANodePostprocessor(llm=llm, mode="keep_list")),
        "LLMRerank (LlamaIndex)": llama_filter(LLMRerank(llm=llm, top_n=10, choice_batch_size=5)),
        "S2ADocumentCompressor (scored, default)": lambda docs, q: list(
            S2ADocumentCompressor(llm=chat).compress_documents(docs, q)
        ),
        "S2ADocumentCompressor (keep_list)": lambda docs, q: list(
            S2ADocumentCompressor(llm=chat, mode="keep_list").compress_documents(docs, q)
        ),
        "LLMChainExtractor (LangChain)": lambda docs, q: list(
            LLMChainExtractor.from_llm(chat).compress_documents(docs, q)
        ),
        "LLMChainFilter (LangChain)": lambda docs, q: list(
            LLMChainFilter.from_llm(chat).compress_documents(docs, q)
        ),
    }


def run_query(name: str, method: Filter, query: Query, *, k: int, base_url: str, tally: Tally) -> None:
    """Filter one query's documents with `method`, then answer from what was kept."""
    docs = retrieve(query.question, k)
    before, started = requests_served(base_url), time.perf_counter()
    kept = method(docs, query.question)
    tally.seconds.append(time.perf_counter() - started)
    tally.calls.append(round(requests_served(base_url) - before))
    retrieved = {str(d.metadata["id"]) for d in docs}
    kept_ids = {str(d.metadata["id"]) for d in kept}
    tally.distractors += len(retrieved & DISTRACTORS)
    tally.dropped += len((retrieved & DISTRACTORS) - kept_ids)
    tally.relevant += len(retrieved & set(query.relevant))
    tally.kept_relevant += len(kept_ids & set(query.relevant))
    context = "\n".join(d.page_content for d in kept) or "(nothing)"
    answer = tgi_chat_model(base_url, max_new_tokens=48).invoke(
        ANSWER_PROMPT.format(context=context, question=query.question)
    )
    tally.correct += correct(answer.text, query)
    print(
        f"  {name}: {query.question} kept {sorted(kept_ids)} -> {answer.text.strip()[:80]!r}", file=sys.stderr
    )


def table(results: dict[str, Tally], k: int) -> str:
    """The Markdown table of results."""
    n = len(QUERIES)
    rows = [
        f"Corpus: examples/corpus.py, {n} queries, BM25 top-{k}; model and server as in /info.\n",
        "| method | distractors dropped | relevant kept | answers correct | filter seconds/query (mean) "
        "| LLM calls/query (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in results.items():
        rows.append(
            f"| {name} | {t.dropped}/{t.distractors} | {t.kept_relevant}/{t.relevant} | {t.correct}/{n} "
            f"| {statistics.mean(t.seconds):.2f} | {statistics.mean(t.calls):.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--methods", nargs="*", default=None, help="names (prefixes) of methods to run")
    parser.add_argument("--json", type=Path, help="also write each method's tally here, per query")
    args = parser.parse_args()
    base_url = os.environ.get("S2A_TGI_URL", "http://127.0.0.1:8080")
    chosen = {
        name: method
        for name, method in methods(base_url).items()
        if not args.methods or any(name.startswith(prefix) for prefix in args.methods)
    }
    results: dict[str, Tally] = {}
    for name, method in chosen.items():
        tally = results.setdefault(name, Tally())
        for query in QUERIES:
            run_query(name, method, query, k=args.top_k, base_url=base_url, tally=tally)
    info = httpx.get(f"{base_url}/info", timeout=30).json()
    print(f"Server: {base_url}, model {info.get('model_id')}\n")
    print(table(results, args.top_k))
    if args.json is not None:
        tallies = {name: asdict(tally) for name, tally in results.items()}
        args.json.write_text(json.dumps(tallies, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
