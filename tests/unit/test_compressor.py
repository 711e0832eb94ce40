"""S2ADocumentCompressor with LangChain's fake models and over the in-memory TGI."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel
from langchain_core.retrievers import BaseRetriever

from langchain_s2a import S2ADocumentCompressor, tgi_chat_model
from s2a import S2AParseError
from tests.fake_tgi import FakeTGI

QUERY = "Where is Paris?"


def docs() -> list[Document]:
    texts = [
        "Paris is in France.",
        "I am sure Paris is in Spain.",
        "Bananas are yellow.",
        "Paris is on the Seine.",
    ]
    return [Document(t, id=f"d{i}", metadata={"source": i}) for i, t in enumerate(texts)]


def keep(*numbers: int) -> FakeListChatModel:
    return FakeListChatModel(responses=[json.dumps({"keep": list(numbers)})])


def test_keeps_ids_metadata_and_order_in_one_call() -> None:
    given = docs()
    kept = S2ADocumentCompressor(mode="keep_list", llm=keep(4, 1)).compress_documents(given, QUERY)
    assert [d.id for d in kept] == ["d0", "d3"]
    assert [d.metadata for d in kept] == [{"source": 0}, {"source": 3}]
    assert kept[0] is given[0]


def test_select_reports_calls_and_raw() -> None:
    selected = S2ADocumentCompressor(mode="keep_list", llm=keep(2, 2, 9)).select(docs(), QUERY)
    assert (selected.keep, selected.calls, selected.raw, selected.fallback) == (
        [1],
        1,
        ['{"keep": [2, 2, 9]}'],
        None,
    )


def test_sentence_granularity() -> None:
    doc = Document("Paris is in France. I love cheese. It is big.", id="x", metadata={"a": 1})
    (kept,) = S2ADocumentCompressor(
        mode="keep_list", llm=keep(1, 3), granularity="sentence"
    ).compress_documents([doc], QUERY)
    assert (kept.page_content, kept.id, kept.metadata) == ("Paris is in France. It is big.", "x", {"a": 1})
    assert doc.page_content == "Paris is in France. I love cheese. It is big."


def test_empty_list_makes_no_call() -> None:
    assert (
        S2ADocumentCompressor(mode="keep_list", llm=FakeListChatModel(responses=[])).compress_documents(
            [], QUERY
        )
        == []
    )


async def test_windows_sync_and_async_agree() -> None:
    many = [Document(f"Fact {i} about Paris and its long history.", id=str(i)) for i in range(50)]
    compressor = S2ADocumentCompressor(mode="keep_list", llm=keep(1), window_tokens=400)
    selected = compressor.select(many, QUERY)
    assert selected.calls > 1
    sync = compressor.compress_documents(many, QUERY)
    asynchronous = await compressor.acompress_documents(many, QUERY)
    assert [d.id for d in sync] == [d.id for d in asynchronous]
    assert len(sync) == selected.calls


def test_fallback_keeps_all_and_raise_raises() -> None:
    given = docs()
    assert (
        list(
            S2ADocumentCompressor(
                mode="keep_list", llm=FakeListChatModel(responses=["no idea"])
            ).compress_documents(given, QUERY)
        )
        == given
    )
    with pytest.raises(S2AParseError):
        S2ADocumentCompressor(
            mode="keep_list", llm=FakeListChatModel(responses=["no"]), fallback="raise"
        ).compress_documents(given, QUERY)


class Fixed(BaseRetriever):
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return docs()


class ModelRuns(BaseCallbackHandler):
    def __init__(self) -> None:
        self.parents: list[UUID | None] = []
        self.retrievers: list[UUID] = []

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, **kwargs: Any) -> None:
        self.retrievers.append(run_id)

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self.parents.append(parent_run_id)


def test_in_a_contextual_compression_retriever_with_nested_runs() -> None:
    retriever = ContextualCompressionRetriever(
        base_compressor=S2ADocumentCompressor(mode="keep_list", llm=keep(1, 4)), base_retriever=Fixed()
    )
    runs = ModelRuns()
    found = retriever.invoke(QUERY, config={"callbacks": [runs]})
    assert [d.id for d in found] == ["d0", "d3"]
    assert runs.parents == [runs.retrievers[0]]  # the S2A call is a child of the retriever run


def test_grammar_through_tgi(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda body: '{"keep": [3]}'
    kept = S2ADocumentCompressor(
        mode="keep_list", llm=tgi_chat_model("http://tgi.test:8080")
    ).compress_documents(docs(), QUERY)
    assert [d.id for d in kept] == ["d2"]
    (body,) = fake_tgi.bodies("/v1/chat/completions")
    assert body["response_format"]["value"]["required"] == ["keep"]
    assert body["temperature"] == 0.0
