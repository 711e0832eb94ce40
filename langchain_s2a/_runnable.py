"""`S2ARunnable`: System 2 Attention as a LangChain Runnable."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import patch_config
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from langchain_s2a._convert import (
    S2ARunnableInput,
    check_complete,
    constrained,
    output_logprobs,
    output_text,
    output_truncated,
    output_usage,
    to_messages,
    to_s2a_input,
)
from s2a import (
    DEFAULT_PROMPTS,
    DEFAULT_RETRY,
    FallbackPolicy,
    Focus,
    RetryPolicy,
    S2AConfig,
    S2APrompts,
    S2ARequest,
    S2AResult,
    VariantName,
)
from s2a.adapter import Reply, ScoredCalls, StepPlan, arun_plan, plan_step, run_plan
from s2a.variants import DEFAULT_OPINION_THRESHOLD, DEFAULT_RELATIVE, DEFAULT_THRESHOLD

_TOOL_DESCRIPTION = (
    "Filter text with System 2 Attention before reasoning on it: give the text as `context` "
    "and the question it should help answer as `question`. Returns only the parts that are "
    "relevant to the question and free of opinion, followed by the question."
)


class S2AToolArgs(BaseModel):
    """Arguments of the tool made by `S2ARunnable.as_tool()`."""

    context: str = Field(description="The text to filter, e.g. a tool's or a search's output.")
    question: str = Field(description="The question the filtered text must help answer.")


class S2ARunnable(RunnableSerializable[S2ARunnableInput, S2AResult]):
    """System 2 Attention: regenerate the context before the answer step sees it.

    An LLM rewrites (or, with `variant="extractive"`, selects sentences from) the input,
    keeping what is relevant to the question and free of opinion. The output is an
    `S2AResult`; its `prompt` is the text to give the answer step.

    Setup:
        `pip install "s2a[langchain]"` (add `[tgi]` for `tgi_chat_model`).

    Key init args:
        llm: any LangChain chat model or LLM; it runs the S2A step.
        variant: `scored` (default: the user's text with the sentences that state a view of the
            answer or do not bear on the question deleted in place), `extractive`, or the
            paper's rewrites `separated`, `unseparated`, `keep_original`, `instructed`.
        focus: drop opinions (`objectivity`), unrelated sentences (`relevance`) or `both`.
        fallback: on unusable output or a failed call keep the original (`original`) or raise.
        retry: how a failed call is retried (`s2a.RetryPolicy`; timeouts, connection
            errors, 429 and 503, with backoff and `Retry-After`).
        window_tokens: the S2A call's prompt budget; a longer context is split into parts
            that fit, each filtered, then merged (never cut).

    Instantiate:
        ```python
        from langchain_core.language_models import FakeListChatModel
        from langchain_s2a import S2ARunnable

        # `scored` asks one word a call: keep or drop a sentence, then is it an opinion (yes or no).
        llm = FakeListChatModel(responses=["keep", "no"])
        s2a = S2ARunnable(llm=llm)
        ```

    Invoke:
        ```python
        result = s2a.invoke("I think Paris is in Spain. Paris is in France. Where is Paris?")
        assert result.question == "Where is Paris?"
        assert result.prompt == "Paris is in France. Where is Paris?"
        assert result.stance == {1: "first-person belief"}  # dropped by its words, with no call
        ```

    Async:
        ```python
        import asyncio

        result = asyncio.run(s2a.ainvoke({"context": "Paris is in France.", "question": "Where is Paris?"}))
        assert result.question == "Where is Paris?"
        ```

    Use within a chain:
        ```python
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import PromptTemplate

        answer_llm = FakeListChatModel(responses=["Paris is in France."])
        chain = s2a | PromptTemplate.from_template("{prompt}") | answer_llm | StrOutputParser()
        assert chain.invoke("Where is Paris? I bet it is in Spain.") == "Paris is in France."
        ```
    """

    llm: Runnable[LanguageModelInput, Any]
    """The model that runs the S2A step: a chat model or an LLM."""
    variant: VariantName = "scored"
    """Which S2A variant to run (see `s2a.variants`)."""
    focus: Focus = "both"
    """What to drop: opinions, irrelevant sentences, or both."""
    fallback: FallbackPolicy = "original"
    """On unusable output or a failed call: keep the original context, flagged, or raise
    (`S2AParseError`, `S2ACallError`)."""
    retry: RetryPolicy = DEFAULT_RETRY
    """How a failed model call is retried before the fallback applies."""
    prompts: S2APrompts = DEFAULT_PROMPTS
    """Prompt templates (see `s2a.prompts`)."""
    answer_frame: bool = False
    """`extractive`: frame the answer prompt as the paper does ("Answer the following question
    in an unbiased way ..."), instead of the user's text with the dropped sentences deleted."""
    constrain: bool = True
    """Constrain the extractive and scored replies to their grammar on TGI-backed models."""
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0)
    """`scored`: keep a sentence when its P(keep) is at least this."""
    relative: float | None = Field(default=DEFAULT_RELATIVE, ge=0.0, le=1.0)
    """`scored`: a sentence under `threshold` is kept unless it is also under this fraction of
    the best P(keep) of the others; `None`: the threshold alone decides (see
    `s2a.S2AConfig.relative`)."""
    opinion_threshold: float = Field(default=DEFAULT_OPINION_THRESHOLD, ge=0.0, le=1.0)
    """`scored` with `focus` `objectivity` or `both`: drop a sentence when its P(opinion) is at
    least this (see `s2a.S2AConfig.opinion_threshold`)."""
    stance_rules: bool = True
    """`scored` with `focus` `objectivity` or `both`: drop, with no model call, the sentences whose
    words tell what someone believes the answer is (see `s2a.S2AConfig.stance_rules`)."""
    scored_calls: ScoredCalls = "per_sentence"
    """`scored`: one call with a decision per sentence, or one one-token call per sentence."""
    scored_concurrency: int = Field(default=1, ge=1, le=64)
    """`scored_calls="per_sentence"`: calls of one text in flight at once, after the first
    (see `s2a.S2AConfig.scored_concurrency`)."""
    window_tokens: int | None = Field(default=None, gt=0)
    """Prompt budget of one S2A call, in tokens (estimated); a longer context is split into
    parts that fit, one call each, and merged. `None`: always one call."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    @property
    def InputType(self) -> type[S2ARunnableInput]:  # noqa: N802 - LangChain's name
        """The accepted input type."""
        return S2ARunnableInput  # type: ignore[return-value]

    @property
    def OutputType(self) -> type[S2AResult]:  # noqa: N802 - LangChain's name
        """The output type."""
        return S2AResult

    def _plan(self, value: Any) -> StepPlan:
        config = S2AConfig(
            variant=self.variant,
            focus=self.focus,
            fallback=self.fallback,
            prompts=self.prompts,
            answer_frame=self.answer_frame,
            threshold=self.threshold,
            relative=self.relative,
            opinion_threshold=self.opinion_threshold,
            stance_rules=self.stance_rules,
            scored_calls=self.scored_calls,
            scored_concurrency=self.scored_concurrency,
        )
        return plan_step(to_s2a_input(value), config, window_tokens=self.window_tokens)

    def _model(self, request: S2ARequest) -> Runnable[Any, Any]:
        grammar = request.grammar if self.constrain else None
        return constrained(self.llm, grammar, request.top_logprobs, request.max_new_tokens)

    @staticmethod
    def _reply(output: Any) -> Reply:
        return Reply(
            output_text(output), output_usage(output), output_truncated(output), output_logprobs(output)
        )

    def _invoke(
        self, value: Any, run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> S2AResult:
        child = patch_config(config, callbacks=run_manager.get_child())

        def call(request: S2ARequest) -> Reply:
            output = self._model(request).invoke(to_messages(request.messages), child)
            check_complete(self.llm, output)
            return self._reply(output)

        return run_plan(self._plan(value), call, self.retry)

    async def _ainvoke(
        self, value: Any, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> S2AResult:
        child = patch_config(config, callbacks=run_manager.get_child())

        async def call(request: S2ARequest) -> Reply:
            output = await self._model(request).ainvoke(to_messages(request.messages), child)
            check_complete(self.llm, output)
            return self._reply(output)

        return await arun_plan(self._plan(value), call, self.retry)

    def invoke(
        self,
        input: S2ARunnableInput,  # noqa: A002 - LangChain's signature
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> S2AResult:
        """Run the S2A step on `input`."""
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(
        self,
        input: S2ARunnableInput,  # noqa: A002 - LangChain's signature
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> S2AResult:
        """Run the S2A step on `input`, natively async."""
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def as_tool(
        self,
        args_schema: type[BaseModel] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        arg_types: dict[str, type] | None = None,
    ) -> BaseTool:
        """A tool that filters `context` for `question`; its output is the filtered prompt.

        With no arguments the tool takes `S2AToolArgs` (`context`, `question`).
        """
        if args_schema is None and arg_types is None:
            args_schema = S2AToolArgs
        return super().as_tool(
            args_schema,
            name=name or "s2a_filter",
            description=description or _TOOL_DESCRIPTION,
            arg_types=arg_types,
        )
