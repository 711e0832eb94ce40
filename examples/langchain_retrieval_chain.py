"""LangChain: a retrieval chain whose retrieved documents go through S2A before the answer.

A bm25s retriever over the planted corpus, wrapped in a `ContextualCompressionRetriever` whose
compressor is `S2ADocumentCompressor` (one call per query), in an LCEL chain.

    S2A_TGI_URL=http://127.0.0.1:8080 python examples/langchain_retrieval_chain.py
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from typing_extensions import override

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.corpus import QUERIES
from examples.retrievers import BM25SRetriever, corpus_documents
from langchain_s2a import S2ADocumentCompressor, tgi_chat_model

PROMPT = ChatPromptTemplate.from_template(
    "Answer in a few words, using the context.\n\nContext:\n{context}\n\nQuestion: {question}"
)


def format_docs(docs: Sequence[Document]) -> str:
    return "\n".join(d.page_content for d in docs) or "(nothing)"


class LastRetrieved(BaseCallbackHandler):
    """Remembers the documents of the last retriever run to end: the compression retriever's."""

    def __init__(self) -> None:
        self.documents: list[Document] = []

    @override
    def on_retriever_end(self, documents: Sequence[Document], **kwargs: Any) -> None:
        self.documents = list(documents)


def main() -> None:
    llm = tgi_chat_model(os.environ.get("S2A_TGI_URL", "http://127.0.0.1:8080"), max_new_tokens=48)
    bm25 = BM25SRetriever.from_documents(corpus_documents(), k=4)
    retriever = ContextualCompressionRetriever(
        base_compressor=S2ADocumentCompressor(llm=llm), base_retriever=bm25
    )
    chain = (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | llm
        | StrOutputParser()
    )
    for query in QUERIES:
        seen = LastRetrieved()  # so the kept documents show without a second S2A call
        answer = chain.invoke(query.question, {"callbacks": [seen]})
        print(f"=== {query.question}")
        print("retrieved:", [d.id for d in bm25.invoke(query.question)])  # BM25 alone: no LLM call
        print("kept by S2A:", [d.id for d in seen.documents])
        print("answer with S2A:", answer.strip())


if __name__ == "__main__":
    main()
