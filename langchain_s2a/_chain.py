"""`create_s2a_chain`: input to final answer text, with the S2A step in front."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableLambda

from langchain_s2a._convert import S2ARunnableInput
from langchain_s2a._runnable import S2ARunnable
from s2a import DEFAULT_PROMPTS, FallbackPolicy, Focus, S2APrompts, S2AResult, VariantName


def _answer_prompt(result: S2AResult) -> str:
    return result.prompt


def create_s2a_chain(
    llm: Runnable[LanguageModelInput, Any],
    answer_llm: Runnable[LanguageModelInput, Any] | None = None,
    *,
    variant: VariantName = "scored",
    focus: Focus = "both",
    fallback: FallbackPolicy = "original",
    prompts: S2APrompts = DEFAULT_PROMPTS,
) -> Runnable[S2ARunnableInput, str]:
    """A chain from S2A input to the final answer text: `S2ARunnable | prompt | answer_llm`.

    Args:
        llm: the model that runs the S2A step (and answers, unless `answer_llm` is given).
        answer_llm: the model that answers from the regenerated context.
        variant: the S2A variant.
        focus: what the S2A step drops.
        fallback: what to do on unusable S2A output.
        prompts: prompt templates (see `s2a.prompts`).

    """
    s2a = S2ARunnable(llm=llm, variant=variant, focus=focus, fallback=fallback, prompts=prompts)
    answer = answer_llm if answer_llm is not None else llm
    chain = s2a | RunnableLambda(_answer_prompt, name="s2a_answer_prompt") | answer | StrOutputParser()
    return chain.with_config(run_name="s2a_chain")
