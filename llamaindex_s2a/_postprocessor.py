"""`S2ANodePostprocessor`: System 2 Attention over retrieved nodes, one LLM call per query."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.llms import LLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.prompts import PromptTemplate
from llama_index.core.prompts.mixin import PromptDictType, PromptMixin, PromptMixinType
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.settings import Settings
from llama_index.core.tools import FunctionTool
from llama_index.llms.huggingface_api import HuggingFaceInferenceAPI

from llamaindex_s2a._events import S2ASelectionEndEvent, S2ASelectionStartEvent
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
from s2a.adapter import Reply, arun_plan, run_plan, token_logprobs, token_usage
from s2a.openai_servers import grammar_fields
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

dispatcher = get_dispatcher(__name__)

_TOOL_DESCRIPTION = (
    "Filter a text with System 2 Attention: keep what helps answer the question, without opinion."
)
_REPLY_RESERVE = 256  # tokens of the context window left for the JSON reply


class S2ANodePostprocessor(PromptMixin, BaseNodePostprocessor):
    """Keep the retrieved nodes (or sentences) that help answer the query and carry no opinion.

    One LLM call per query (per window, for node sets larger than the model's context): the
    numbered nodes and the query go in. By default (`mode="scored"`) a `<number> keep|drop`
    line per node comes out, regex-constrained on a TGI-backed `HuggingFaceInferenceAPI`; each
    node's P(keep), read from its decision token, becomes its score. The nodes at or over
    `threshold` are kept, and with `fusion` (the default, see `s2a.Fusion`) those whose
    `title` metadata the query names, the best by P(keep) fused with BM25's ranking up to
    `fusion.share` of them, and the two-hop bridges a kept node names; they are returned best
    first (at most `top_k`). With `mode="keep_list"` the numbers
    to keep come out as JSON, and kept nodes keep their scores and order. Kept nodes keep their
    ids and metadata; text is never invented (with `granularity="sentence"` a node's text is rebuilt from
    its own kept sentences).

    Example:
        ```python
        from llama_index.core.llms import MockLLM
        from llama_index.core.schema import NodeWithScore, TextNode
        from llamaindex_s2a import S2ANodePostprocessor

        class Scripted(MockLLM):  # a MockLLM that answers like the S2A step would
            def complete(self, prompt, formatted=False, **kwargs):
                return super().complete("1 keep\\n2 drop", formatted=formatted)

        nodes = [NodeWithScore(node=TextNode(text="Paris is in France."), score=0.9),
                 NodeWithScore(node=TextNode(text="I bet Paris is in Spain."), score=0.8)]
        kept = S2ANodePostprocessor(llm=Scripted()).postprocess_nodes(nodes, query_str="Where is Paris?")
        assert [n.node.get_content() for n in kept] == ["Paris is in France."]
        ```

    """

    llm: LLM | None = Field(default=None, description="The LLM for the S2A step; `Settings.llm` when unset.")
    focus: Focus = Field(default="both", description="Drop opinions, irrelevant material, or both.")
    granularity: Granularity = Field(
        default="document", description="Keep whole nodes, or sentences in them."
    )
    fallback: FallbackPolicy = Field(
        default="original",
        description="On unusable output or a failed call: keep the window's nodes, or raise.",
    )
    retry: RetryPolicy = Field(
        default=DEFAULT_RETRY, description="How a failed call is retried before the fallback applies."
    )
    window_tokens: int | None = Field(
        default=None,
        description="Prompt budget per call; the LLM's context window (less a reply reserve) when unset.",
    )
    prompts: S2APrompts = Field(default=DEFAULT_PROMPTS, description="Prompt templates (see `s2a.prompts`).")
    mode: SelectionMode = Field(
        default=DEFAULT_MODE,
        description="`scored`: a keep-or-drop decision per node with its P(keep), which becomes the "
        "node's score (filter and rerank in one step); `keep_list`: one JSON list of the nodes to keep.",
    )
    threshold: float = Field(
        default=DEFAULT_RAG_THRESHOLD,
        ge=0.0,
        le=1.0,
        description="`scored`: keep nodes with P(keep) at least this.",
    )
    top_k: int | None = Field(
        default=None, ge=1, description="`scored`: keep at most this many nodes, the most likely first."
    )
    fusion: Fusion | None = Field(
        default=DEFAULT_FUSION,
        description="`scored` whole nodes: also keep by P(keep) fused with BM25's ranking, the titles "
        "(metadata `fusion.title_key`) the query names and the two-hop bridges (see `s2a.Fusion`); "
        "None: the threshold alone. Ignored for sentences and keep lists.",
    )

    @classmethod
    def class_name(cls) -> str:
        """The component's name."""
        return "S2ANodePostprocessor"

    def _get_prompts(self) -> PromptDictType:
        return {"selection_prompt": PromptTemplate(self.prompts.select)}

    def _get_prompt_modules(self) -> PromptMixinType:
        return {}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        if "selection_prompt" in prompts:
            template = prompts["selection_prompt"].get_template()
            self.prompts = S2APrompts.model_validate({**self.prompts.model_dump(), "select": template})

    def _llm(self) -> LLM:
        if self.llm is not None:
            return self.llm
        if Settings._llm is None:
            msg = "S2ANodePostprocessor has no LLM: pass llm=... or set llama_index.core.Settings.llm"
            raise ValueError(msg)
        return Settings.llm

    def _plan(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None) -> SelectionPlan:
        if query_bundle is None:
            msg = "S2ANodePostprocessor needs the query: pass query_bundle or query_str"
            raise ValueError(msg)
        llm = self._llm()
        window = self.window_tokens or max(llm.metadata.context_window - _REPLY_RESERVE, 512)
        config = S2AConfig(
            focus=self.focus,
            fallback=self.fallback,
            prompts=self.prompts,
            threshold=self.threshold,
            relative=DEFAULT_RAG_RELATIVE,
        )
        texts = [n.node.get_content() for n in nodes]
        fusion = applied_fusion(self.fusion, self.mode, self.granularity)
        plan = plan_selection(
            texts,
            query_bundle.query_str,
            config,
            granularity=self.granularity,
            window_tokens=window,
            mode=self.mode,
            top_k=self.top_k,
            fusion=fusion,
            titles=fusion.titles([n.node.metadata for n in nodes]) if fusion is not None else None,
        )
        dispatcher.event(
            S2ASelectionStartEvent(query=plan.query, nodes=len(nodes), windows=len(plan.windows))
        )
        return plan

    def _request(self, llm: LLM, window: Window) -> tuple[list[ChatMessage], dict[str, Any]]:
        messages = [ChatMessage(role=MessageRole(m["role"]), content=m["content"]) for m in window.messages]
        if not isinstance(llm, HuggingFaceInferenceAPI):
            # Other LLMs get the reply's shape in the prompt only. OpenAI's and OpenAI-like ones
            # (vLLM, SGLang, llama.cpp, TGI's /v1) take the OpenAI settings for probabilities.
            fields = getattr(type(llm), "model_fields", {})
            settings: dict[str, Any] = {}
            if window.top_logprobs and "logprobs" in fields and "top_logprobs" in fields:
                settings = {"logprobs": True, "top_logprobs": window.top_logprobs, "temperature": 0.0}
            server = getattr(llm, "s2a_server", None)  # `openai_like_llm`: the server's own fields
            if server is not None and window.grammar is not None:
                settings.update(extra_body=grammar_fields(server, window.grammar), temperature=0.0)
            return messages, settings
        # TGI constrains the reply to the grammar; temperature 0 is greedy on its chat route
        # (the LLM's own setting must be above 0, and call arguments take precedence).
        kwargs: dict[str, Any] = {"response_format": window.grammar, "temperature": 0.0}
        if window.top_logprobs:
            kwargs.update(logprobs=True, top_logprobs=window.top_logprobs)
        return messages, kwargs

    def _call(self, llm: LLM, window: Window) -> Reply:
        messages, kwargs = self._request(llm, window)
        if llm.metadata.is_chat_model:
            return _reply(llm.chat(messages, **kwargs))
        return Reply(llm.complete(messages[-1].content or "", **kwargs).text)

    async def _acall(self, llm: LLM, window: Window) -> Reply:
        messages, kwargs = self._request(llm, window)
        if llm.metadata.is_chat_model:
            return _reply(await llm.achat(messages, **kwargs))
        return Reply((await llm.acomplete(messages[-1].content or "", **kwargs)).text)

    def _finish(
        self,
        nodes: list[NodeWithScore],
        selected: Selected,
    ) -> list[NodeWithScore]:
        kept = set(selected.keep)
        dispatcher.event(
            S2ASelectionEndEvent(
                kept=len(selected.keep),
                nodes=len(nodes),
                calls=selected.calls,
                fallback=selected.fallback,
                kept_ids=[n.node.node_id for i, n in enumerate(nodes) if i in kept],
                dropped_ids=[n.node.node_id for i, n in enumerate(nodes) if i not in kept],
                cost=selected.cost,
            )
        )
        return _kept_nodes(nodes, selected, rebuild=self.granularity == "sentence")

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        plan = self._plan(nodes, query_bundle)
        llm = self._llm()
        return self._finish(nodes, run_plan(plan, partial(self._call, llm), self.retry))

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        plan = self._plan(nodes, query_bundle)
        llm = self._llm()
        return self._finish(nodes, await arun_plan(plan, partial(self._acall, llm), self.retry))

    def as_tool(self, name: str = "s2a_filter", description: str | None = None) -> FunctionTool:
        """A tool that filters a text (e.g. another tool's output) for a question, sentence by sentence."""
        sentences = self.model_copy(update={"granularity": "sentence"})

        def s2a_filter(text: str, question: str) -> str:
            """Keep only the sentences of `text` that help answer `question`, free of opinion."""
            kept = sentences.postprocess_nodes([NodeWithScore(node=TextNode(text=text))], query_str=question)
            return kept[0].node.get_content() if kept else ""

        async def as2a_filter(text: str, question: str) -> str:
            """Keep only the sentences of `text` that help answer `question`, free of opinion."""
            nodes = [NodeWithScore(node=TextNode(text=text))]
            kept = await sentences.apostprocess_nodes(nodes, query_str=question)
            return kept[0].node.get_content() if kept else ""

        return FunctionTool.from_defaults(
            fn=s2a_filter,
            async_fn=as2a_filter,
            name=name,
            description=description or _TOOL_DESCRIPTION,
        )


def _reply(response: ChatResponse) -> Reply:
    """The reply's text and, from the raw chat output (TGI's, OpenAI's), its usage and alternatives."""
    choices = getattr(response.raw, "choices", None) or [None]
    logprobs = getattr(choices[0], "logprobs", None)
    text = response.message.content or ""
    usage = token_usage(getattr(response.raw, "usage", None))
    return Reply(text, usage, logprobs=token_logprobs(getattr(logprobs, "content", None)))


def _kept_nodes(nodes: list[NodeWithScore], selected: Selected, *, rebuild: bool) -> list[NodeWithScore]:
    """The kept nodes: in their order, or (scored) best first with P(keep) as their score."""
    kept = []
    for index in selected.ranked if selected.scores else selected.keep:
        original = nodes[index]
        score = selected.scores.get(index, original.score) if selected.scores else original.score
        node = original.node
        rebuilt = rebuild and selected.texts[index] != node.get_content()
        if rebuilt and isinstance(node, TextNode):  # only text nodes can be rebuilt; others stay whole
            node = node.model_copy(deep=True)
            node.set_content(selected.texts[index])
        unchanged = node is original.node and score == original.score
        kept.append(original if unchanged else NodeWithScore(node=node, score=score))
    return kept


Granularities = Literal["document", "sentence"]
