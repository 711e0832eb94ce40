"""Scripted fakes on the frameworks' own test models, recording what the S2A step was sent.

`PromptRecorder` is a LangChain callback: attach it to any fake chat model (FakeListChatModel
does not record its prompts) to read the S2A call's user message. `ScriptedLLM` is LlamaIndex's
MockLLM answering each prompt with a function of it, and keeping the prompts.
`selection_ends` collects the S2A postprocessor's end events (they carry the fallback reason).
`sentence_block` and `stated_question` read an extractive S2A call back as the model saw it;
`keep_shown` is a scripted extractive reply to such a call. `decision_tokens` is a scored
reply's `logprobs.content`, tokenised as Qwen's tokenizer does (`1`, ` keep`, `\n`);
`opinion_sentence` is the sentence an opinion test asks about.
For agents: `ToolCallingFake` is GenericFakeChatModel accepting tools (LangChain's own agent
tests fake a tool-calling model so), `ChatInputs` records the messages each chat model call
received, and `RuleChatModel` with `scored_judge` answers S2A's scored calls by rules, in
whatever order they come (concurrent calls included).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models import GenericFakeChatModel, LanguageModelInput, SimpleChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from llama_index.core.base.llms.types import CompletionResponse
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import MockLLM
from pydantic import Field

from llamaindex_s2a import S2ASelectionEndEvent
from s2a import S2AResult


class PromptRecorder(BaseCallbackHandler):
    """Records the last (user) message of every chat model call it sees."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(
        self, serialized: Any, messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.prompts.extend(batch[-1].text for batch in messages)


class ScriptedLLM(MockLLM):
    """LlamaIndex's MockLLM, answering each prompt with `reply(prompt)` and recording it."""

    _reply: Callable[[str], str] = PrivateAttr()
    _prompts: list[str] = PrivateAttr(default_factory=list)

    def __init__(self, reply: Callable[[str], str]) -> None:
        super().__init__()
        self._reply = reply

    @property
    def prompts(self) -> list[str]:
        """Every prompt received, in order."""
        return self._prompts

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self._prompts.append(prompt)
        return CompletionResponse(text=self._reply(prompt))


class _Collect(BaseEventHandler):
    seen: list[BaseEvent]

    @classmethod
    def class_name(cls) -> str:
        return "Collect"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.seen.append(event)


@contextmanager
def recorded_events() -> Iterator[list[BaseEvent]]:
    """Every instrumentation event emitted inside the block, in order."""
    handler = _Collect(seen=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        yield handler.seen
    finally:
        root.event_handlers.remove(handler)


@contextmanager
def selection_ends() -> Iterator[list[S2ASelectionEndEvent]]:
    """The `S2ASelectionEndEvent`s emitted inside the block (they carry the fallback reason)."""
    ends: list[S2ASelectionEndEvent] = []
    with recorded_events() as seen:
        try:
            yield ends
        finally:
            ends.extend(e for e in seen if isinstance(e, S2ASelectionEndEvent))


def sentence_block(prompt: str) -> list[str]:
    """The numbered lines of an extractive or scored S2A prompt, as the model received them."""
    return prompt.split("\nSentences:\n", 1)[1].split("\n\n", 1)[0].split("\n")


def opinion_sentence(prompt: str) -> str:
    """The sentence a scored opinion test asks about (last, in quotes after `Sentence: `)."""
    return prompt.rsplit('Sentence: "', 1)[1].removesuffix('"')


def stated_question(prompt: str) -> str:
    """The question an extractive S2A prompt states above its numbered sentences."""
    return prompt.split("A user wrote a message that asks: ", 1)[1].split("\n\nBelow are the other", 1)[0]


def keep_shown(prompt: str, keep: Callable[[str], bool] = lambda _sentence: True) -> str:
    """An extractive reply to `prompt` keeping each numbered sentence for which `keep` is true."""
    sentences = [line.split("] ", 1)[1] for line in sentence_block(prompt)]
    return json.dumps({"keep": [n for n, sentence in enumerate(sentences, start=1) if keep(sentence)]})


def decision_tokens(
    text: str, p_keep: Callable[[int, str], float], words: tuple[str, str] = ("keep", "drop")
) -> list[dict[str, Any]]:
    """OpenAI-style `logprobs.content` for a `1 keep\n2 drop ...` (or one-word) reply.

    Each decision word is one token (` keep`, with its leading space) whose alternatives are
    the two `words`, with P(first word) = `p_keep(number, sentence-less reply line)`; every
    other token is certain. `words=("yes", "no")` gives an opinion test's reply.
    """
    content: list[dict[str, Any]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if content:
            content.append({"token": "\n", "logprob": 0.0, "top_logprobs": [{"token": "\n", "logprob": 0.0}]})
        head, _, word = line.rpartition(" ")
        if head:
            content.append({"token": head, "logprob": 0.0, "top_logprobs": [{"token": head, "logprob": 0.0}]})
        p = p_keep(number, line)
        space = " " if head else ""
        top = [
            {"token": f"{space}{words[0]}", "logprob": math.log(p) if p > 0 else -99.0},
            {"token": f"{space}{words[1]}", "logprob": math.log(1 - p) if p < 1 else -99.0},
        ]
        chosen = next(t for t in top if str(t["token"]).strip() == word)
        content.append({**chosen, "top_logprobs": top})
    return content


class ToolCallingFake(GenericFakeChatModel):
    """GenericFakeChatModel that takes tools: it replies with its scripted messages, tool calls and all."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self


class ChatInputs(BaseCallbackHandler):
    """Records the whole message list of every chat model call it sees, system message included."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self, serialized: Any, messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.calls.extend(list(batch) for batch in messages)


class RuleChatModel(SimpleChatModel):
    """A chat model answering each call with `reply(its last message's text)`, counting the calls."""

    reply: Callable[[str], str]
    prompts: list[str] = Field(default_factory=list)

    def _call(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        self.prompts.append(messages[-1].text)
        return self.reply(messages[-1].text)

    @property
    def _llm_type(self) -> str:
        return "rule-fake"


def scored_judge(
    keep: Callable[[str], bool], opinion: Callable[[str], bool] = lambda _sentence: False
) -> Callable[[str], str]:
    """Replies to `scored` S2A calls: keep-or-drop by `keep(sentence)`, opinion tests by `opinion`.

    Handles the three prompts: one call for every sentence (`1 keep\n2 drop`), one call per
    sentence (`keep`), and the opinion test (`yes` or `no`).
    """

    def word(sentence: str) -> str:
        return "keep" if keep(sentence) else "drop"

    def reply(prompt: str) -> str:
        if 'Sentence: "' in prompt:
            return "yes" if opinion(opinion_sentence(prompt)) else "no"
        shown = [line.split("] ", 1)[1] for line in sentence_block(prompt)]
        asked = re.search(r"\nSentence (\d+): reply with one word", prompt)
        if asked is not None:
            return word(shown[int(asked.group(1)) - 1])
        return "\n".join(f"{n} {word(sentence)}" for n, sentence in enumerate(shown, start=1))

    return reply


def without_cost(result: Any) -> Any:
    """`result` (an `S2AResult` or a `Selected`) without the step's cost, for comparing what two runs kept.

    The cost differs where the runs differ in how they sent the calls (sync one at a time, async
    together: the rounds), or where one did not go through the driver (`finish`).
    """
    if isinstance(result, S2AResult):
        return result.model_copy(update={"cost": None})
    return dataclasses.replace(result, cost=None)
