"""A small LangChain retriever over bm25s, so the examples need no embedding model.

`BM25SRetriever.from_documents(corpus_documents(), k=4)` indexes the planted corpus; its
`invoke(question)` returns the 4 best documents by BM25.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bm25s
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict
from typing_extensions import override

from examples.corpus import DOCS


def corpus_documents() -> list[Document]:
    """The planted corpus as LangChain documents; the id is in `metadata["id"]` too."""
    return [Document(d.text, id=d.id, metadata={"id": d.id, "kind": d.kind}) for d in DOCS]


class BM25SRetriever(BaseRetriever):
    """The `k` best documents for a query by BM25, as scored by bm25s."""

    index: Any
    """The `bm25s.BM25` index over `documents`."""
    documents: list[Document]
    k: int = 4

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @classmethod
    def from_documents(cls, documents: Sequence[Document], *, k: int = 4) -> BM25SRetriever:
        """Index `documents` (their `page_content`) with bm25s."""
        index = bm25s.BM25()
        texts = [d.page_content for d in documents]
        index.index(bm25s.tokenize(texts, show_progress=False), show_progress=False)
        return cls(index=index, documents=list(documents), k=k)

    @override
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        k = min(self.k, len(self.documents))
        found, _scores = self.index.retrieve(
            bm25s.tokenize([query], show_progress=False), k=k, show_progress=False
        )
        return [self.documents[int(i)] for i in found[0]]
