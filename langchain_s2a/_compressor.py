"""`S2ADocumentCompressor`: System 2 Attention over retrieved documents, one LLM call per query."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.language_models import LanguageModelInput
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field

from langchain_s2a._convert import (
    check_complete,
    constrained,
    output_logprobs,
    output_text,
    output_usage,
    to_messages,
)
from s2a import (
    DEFAULT_PROMPTS,
    DEFAULT_RETRY,
    FallbackPolicy,
    Focus,
    Fusion,
    RetryPolicy,
    S2AConfig,
    S2APrompts,
)
from s2a.adapter import Reply, arun_plan, run_plan
from s2a.selection import (
    DEFAULT_FUSION,
    DEFAULT_MODE,
    DEFAULT_RAG_RELATIVE,
    DEFAULT_RAG_THRESHOLD,
    Granularity,
    Selected,
    SelectionMode,
    SelectionPlan,
    Window,
    applied_fusion,
    plan_selection,
)

logger = logging.getLogger(__name__)


class S2ADocumentCompressor(BaseDocumentCompressor):
    """Keep the retrieved documents (or sentences) that help answer the query and carry no opinion.

    One LLM call per query (per window, for large document sets), unlike LLMChainExtractor's
    call per document: the numbered documents and the query go in. By default (`mode="scored"`)
    a `<number> keep|drop` line per document comes out (regex-constrained on TGI-backed models),
    each document's P(keep) is read from its decision token. The documents at or over
    `threshold` are kept, and with `fusion` (the default, see `s2a.Fusion`) those whose
    `title` metadata the query names, the best by P(keep) fused with BM25's ranking up to
    `fusion.share` of them, and the two-hop bridges a kept document names; best first, with
    `metadata["relevance_score"]`. `mode="keep_list"`:
    the numbers to keep come out as JSON, and kept documents stay in their order. Kept documents
    are the originals, with their ids and metadata; with `granularity="sentence"` a document's
    text is rebuilt from its own kept sentences. Nothing is ever invented.

    Use it in a `ContextualCompressionRetriever` (langchain-classic), or call it directly:

        ```python
        from langchain_core.documents import Document
        from langchain_core.language_models import FakeListChatModel
        from langchain_s2a import S2ADocumentCompressor

        compressor = S2ADocumentCompressor(llm=FakeListChatModel(responses=["1 keep\\n2 drop"]))
        docs = [Document("Paris is in France.", id="a"), Document("I bet Paris is in Spain.", id="b")]
        kept = compressor.compress_documents(docs, "Where is Paris?")
        assert [d.id for d in kept] == ["a"]
        ```
    """

    llm: Runnable[LanguageModelInput, Any]
    """The model for the S2A step: a chat model or an LLM."""
    focus: Focus = "both"
    """Drop opinions, irrelevant material, or both."""
    granularity: Granularity = "document"
    """Keep whole documents, or sentences inside them."""
    fallback: FallbackPolicy = "original"
    """On unusable output or a failed call: keep the window's documents (logged), or raise
    (`S2AParseError`, `S2ACallError`)."""
    retry: RetryPolicy = DEFAULT_RETRY
    """How a failed call is retried before the fallback applies."""
    window_tokens: int | None = None
    """Prompt budget per call, in tokens; larger document sets are split into windows."""
    prompts: S2APrompts = DEFAULT_PROMPTS
    """Prompt templates (see `s2a.prompts`)."""
    constrain: bool = True
    """Constrain the reply to its grammar on TGI-backed models."""
    mode: SelectionMode = DEFAULT_MODE
    """`scored`: a keep-or-drop decision per document with its P(keep), kept documents best first
    with it in `metadata["relevance_score"]` (filter and rerank in one step); `keep_list`: one
    JSON list of the documents to keep, in their order."""
    threshold: float = Field(default=DEFAULT_RAG_THRESHOLD, ge=0.0, le=1.0)
    """`scored`: keep documents whose P(keep) is at least this."""
    top_k: int | None = Field(default=None, ge=1)
    """`scored`: keep at most this many documents, the most likely to be needed."""
    fusion: Fusion | None = DEFAULT_FUSION
    """`scored` whole documents: also keep by P(keep) fused with BM25's ranking, the titles
    (`metadata[fusion.title_key]`) the query names and the two-hop bridges (see `s2a.Fusion`);
    None: the threshold alone. Ignored for sentences and keep lists."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    def _plan(self, documents: Sequence[Document], query: str) -> SelectionPlan:
        config = S2AConfig(
            focus=self.focus,
            fallback=self.fallback,
            prompts=self.prompts,
            threshold=self.threshold,
            relative=DEFAULT_RAG_RELATIVE,
        )
        texts = [d.page_content for d in documents]
        fusion = applied_fusion(self.fusion, self.mode, self.granularity)
        return plan_selection(
            texts,
            query,
            config,
            granularity=self.granularity,
            window_tokens=self.window_tokens,
            mode=self.mode,
            top_k=self.top_k,
            fusion=fusion,
            titles=fusion.titles([d.metadata for d in documents]) if fusion is not None else None,
        )

    def _model(self, window: Window) -> Runnable[Any, Any]:
        return constrained(self.llm, window.grammar if self.constrain else None, window.top_logprobs)

    def select(self, documents: Sequence[Document], query: str, callbacks: Callbacks = None) -> Selected:
        """What to keep, with the raw replies and the fallback reason, if any."""
        plan = self._plan(documents, query)
        config: RunnableConfig = {"callbacks": callbacks}

        def call(window: Window) -> Reply:
            output = self._model(window).invoke(to_messages(window.messages), config)
            check_complete(self.llm, output)
            return Reply(output_text(output), output_usage(output), logprobs=output_logprobs(output))

        return run_plan(plan, call, self.retry)

    async def aselect(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks = None
    ) -> Selected:
        """`select`, with the windows' calls made concurrently."""
        plan = self._plan(documents, query)
        config: RunnableConfig = {"callbacks": callbacks}

        async def call(window: Window) -> Reply:
            output = await self._model(window).ainvoke(to_messages(window.messages), config)
            check_complete(self.llm, output)
            return Reply(output_text(output), output_usage(output), logprobs=output_logprobs(output))

        return await arun_plan(plan, call, self.retry)

    def _documents(self, documents: Sequence[Document], selected: Selected) -> list[Document]:
        if selected.fallback:
            logger.warning("S2A kept documents it could not judge: %s", selected.fallback)
        kept = []
        for i in selected.ranked if selected.scores else selected.keep:
            update: dict[str, Any] = {}
            if selected.texts[i] != documents[i].page_content:
                update["page_content"] = selected.texts[i]
            if i in selected.scores:
                update["metadata"] = {**documents[i].metadata, "relevance_score": selected.scores[i]}
            kept.append(documents[i].model_copy(update=update) if update else documents[i])
        return kept

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks = None
    ) -> Sequence[Document]:
        """Keep the documents (or sentences) that help answer `query`."""
        return self._documents(documents, self.select(documents, query, callbacks))

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks = None
    ) -> Sequence[Document]:
        """Keep the documents (or sentences) that help answer `query`, natively async."""
        return self._documents(documents, await self.aselect(documents, query, callbacks))
