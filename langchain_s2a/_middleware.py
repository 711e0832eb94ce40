"""`S2AMiddleware`: System 2 Attention over what a `create_agent` agent gathered, before each model call."""

from __future__ import annotations

import asyncio
import logging
import operator
import re
from collections.abc import Callable, Collection, Sequence
from typing import Annotated, Any, Literal, NamedTuple, NotRequired

from langchain.agents.middleware import AgentMiddleware, AgentState
from langchain.agents.middleware.types import OmitFromInput
from langchain_core.documents import Document
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import merge_configs
from langgraph.config import get_config
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from langchain_s2a._compressor import S2ADocumentCompressor
from langchain_s2a._runnable import S2ARunnable
from s2a import S2AResult, split_sentences
from s2a.selection import Selected

try:  # langchain 1.x releases before this helper tag nothing; TAG_NOSTREAM still applies
    from langchain.agents.middleware.internal_call_transformer import internal_call_metadata
except ImportError:  # pragma: no cover - depends on the installed langchain

    def internal_call_metadata() -> dict[str, Any]:
        """No marker: this langchain has no internal-call filter to read it."""
        return {}


logger = logging.getLogger(__name__)

METADATA_KEY = "s2a"
"""Key of the record in a filtered message's `response_metadata`; its presence means: done."""
DEFAULT_PLACEHOLDER = "[S2A: nothing in this message bears on the request]"
"""What a message says when S2A dropped all of it (chat APIs reject some empty messages)."""
_BLANK_LINE = re.compile(r"\n[ \t]*\n")

Role = Literal["tool", "human", "ai"]


class S2AFilterRecord(TypedDict):
    """What `S2AMiddleware` did to one message (state `s2a_filtered`, `response_metadata["s2a"]`)."""

    message_id: str
    """The filtered message's id."""
    role: Role
    """`tool` for a tool result; `human` or `ai` for an earlier turn (`filter_history`)."""
    tool: str | None
    """The tool's name, for a tool result."""
    question: str
    """The user request the message was filtered against (the latest human message)."""
    original: str
    """The message's text before S2A."""
    text: str
    """The text the model reads now (the original, on fallback)."""
    dropped: list[str] | None
    """The sentences or paragraphs removed, verbatim; `None` when the variant rewrote the text."""
    variant: str
    """The S2A variant (`scored`, ...), or `rag:<mode>` for an `S2ADocumentCompressor`."""
    fallback: str | None
    """`None`, or why (part of) the original was kept as it was."""


class S2AState(AgentState[Any]):
    """The agent state with the middleware's records, added to on each model call, never input."""

    s2a_filtered: NotRequired[Annotated[list[S2AFilterRecord], OmitFromInput, operator.add]]


def paragraphs(text: str) -> list[str]:
    """A tool result's documents for an `S2ADocumentCompressor`: its blank-line separated paragraphs."""
    return [part.strip() for part in _BLANK_LINE.split(text) if part.strip()]


class _Job(NamedTuple):
    message: AnyMessage
    role: Role
    text: str


class _Outcome(NamedTuple):
    text: str
    dropped: list[str] | None
    variant: str
    fallback: str | None


class _Plan(NamedTuple):
    question: str
    jobs: list[_Job]


def _text(message: AnyMessage) -> str | None:
    """The message's text, when it is all text (images and other blocks are left alone)."""
    if isinstance(message.content, str):
        return message.content
    blocks = message.content
    if all(isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text") for b in blocks):
        return message.text
    return None


def _from_result(original: str, result: S2AResult) -> _Outcome:
    if result.kept is not None:
        kept = set(result.kept)
        dropped: list[str] | None = [
            s for n, s in enumerate(split_sentences(original), start=1) if n not in kept
        ]
    else:  # a rewrite: what it left out cannot be listed sentence by sentence
        dropped = [] if result.context == original else None
    return _Outcome(result.context, dropped, result.variant, result.fallback)


def _from_selected(original: str, parts: Sequence[str], selected: Selected, mode: str) -> _Outcome:
    kept = set(selected.keep)
    dropped: list[str] = []
    for i, part in enumerate(parts):
        if i not in kept:
            dropped.append(part)
        elif selected.texts[i] != part:  # granularity="sentence": rebuilt from its own sentences
            dropped.extend(s for s in split_sentences(part) if s not in selected.texts[i])
    # Kept in the message's own order: a tool result is read top to bottom, not as a ranking.
    text = "\n\n".join(selected.texts[i] for i in sorted(kept)) if dropped else original
    return _Outcome(text, dropped, f"rag:{mode}", selected.fallback)


def _selector(compressor: S2ADocumentCompressor) -> Runnable[tuple[list[str], str], Selected]:
    """The compressor's selection as a run of its own, so a trace shows it as it shows `S2ARunnable`."""

    def documents(parts: list[str]) -> list[Document]:
        return [Document(page_content=part, id=str(i)) for i, part in enumerate(parts)]

    def select(job: tuple[list[str], str], config: RunnableConfig) -> Selected:
        return compressor.select(documents(job[0]), job[1], config.get("callbacks"))

    async def aselect(job: tuple[list[str], str], config: RunnableConfig) -> Selected:
        return await compressor.aselect(documents(job[0]), job[1], config.get("callbacks"))

    return RunnableLambda(select, afunc=aselect, name="S2ADocumentCompressor")


def _hook_config(job: _Job) -> RunnableConfig:
    """The S2A run's config: under the hook's run in traces, out of the agent's message stream."""
    own: RunnableConfig = {
        "tags": [TAG_NOSTREAM],
        "metadata": {"lc_source": "s2a", "s2a_message_id": job.message.id, **internal_call_metadata()},
    }
    try:
        parent = get_config()
    except RuntimeError:  # the hook called outside a graph run, e.g. directly
        return own
    return merge_configs(parent, own)


class S2AMiddleware(AgentMiddleware[S2AState, Any, Any]):
    """System 2 Attention over an agent's tool results (and, optionally, earlier turns).

    Before each model call, every tool result not filtered yet is filtered with S2A against the
    current user request, the latest human message's text: what does not bear on it, and
    opinions about the answer, are removed before the model reads them. With
    `filter_history=True` the text of earlier human and AI turns is filtered too. The system
    prompt and the latest human message are never touched, nor an AI message's `tool_calls`,
    so every tool call keeps its result. Tool errors, and results shorter than `min_chars` or
    not all text, pass through with no call.

    The S2A step is an `S2ARunnable` (`llm=` and its settings, default `variant="scored"`, or
    `s2a=S2ARunnable(...)`), or an `S2ADocumentCompressor` (`s2a=`), which judges a result's
    paragraphs (`split`) as documents and keeps the relevant ones, whole, in their order.

    Why `before_model`: like `SummarizationMiddleware` and `PIIMiddleware`, the hook returns
    the filtered messages with their ids, which `add_messages` puts in place of the originals in
    the state. So each message is filtered once, the checkpointer keeps the filtered text, and
    the record lands in the state. `wrap_model_call` (as `ContextEditingMiddleware` uses it) edits
    one request only: every model call would filter every tool result again.

    Records: each filtered message carries an `S2AFilterRecord` in
    `response_metadata["s2a"]` (its original text, what was dropped, the variant, the fallback),
    and the same record is appended to the state's `s2a_filtered`. A message with a record is
    never filtered again. The S2A calls run with the hook's config: they nest under
    `S2AMiddleware.before_model` in a trace, tagged `nostream` so their replies stay out of the
    agent's streamed messages.

    Failures follow the S2A step's `fallback`: with `"original"` (the default) a message whose
    S2A call failed or whose reply was unusable is kept as it was, its record's `fallback`
    saying why; with `"raise"` the error (`S2ACallError`, `S2AParseError`) ends the agent's run.

    Setup:
        `pip install "s2a[langchain-agents]"`.

    Key init args:
        s2a: an `S2ARunnable` or `S2ADocumentCompressor`; or `llm` and `**settings` for an
            `S2ARunnable` (`variant`, `focus`, `fallback`, ...).
        filter_history: also filter earlier human and AI turns' text, once each.
        tool_names: filter only these tools' results (default: every tool's).

    Instantiate and run:
        ```python
        from langchain.agents import create_agent
        from langchain_core.language_models import FakeListChatModel, GenericFakeChatModel
        from langchain_core.messages import AIMessage
        from langchain_core.tools import tool

        from langchain_s2a import S2AMiddleware


        @tool
        def search(query: str) -> str:
            \"\"\"Search the web.\"\"\"
            return "Python was made by Guido van Rossum. I'm sure it was James Gosling. Buy a snake!"


        class ScriptedAgentModel(GenericFakeChatModel):  # a fake tool-calling model
            def bind_tools(self, tools, **kwargs):
                return self


        call = {"name": "search", "args": {"query": "Python"}, "id": "call-1"}
        model = ScriptedAgentModel(messages=iter([AIMessage("", tool_calls=[call]), AIMessage("Guido.")]))
        # `scored`, one word a call: keep or drop sentences 1 and 3 (2 is dropped by its words,
        # with no call), then is each an opinion.
        s2a_llm = FakeListChatModel(responses=["keep", "drop", "no", "no"])
        agent = create_agent(model, [search], middleware=[S2AMiddleware(llm=s2a_llm)])

        state = agent.invoke({"messages": [("user", "Who created Python?")]})
        assert state["messages"][2].content == "Python was made by Guido van Rossum."
        (record,) = state["s2a_filtered"]
        assert record["dropped"] == ["I'm sure it was James Gosling.", "Buy a snake!"]
        assert state["messages"][2].response_metadata["s2a"]["original"].endswith("Buy a snake!")
        ```

    Async: `await agent.ainvoke(...)` runs `abefore_model`, the S2A calls natively async and
    the messages' filters concurrently.
    """

    state_schema = S2AState

    def __init__(
        self,
        s2a: S2ARunnable | S2ADocumentCompressor | None = None,
        *,
        llm: Runnable[LanguageModelInput, Any] | None = None,
        filter_history: bool = False,
        tool_names: Collection[str] | None = None,
        min_chars: int = 40,
        split: Callable[[str], list[str]] = paragraphs,
        placeholder: str = DEFAULT_PLACEHOLDER,
        **settings: Any,
    ) -> None:
        """Filter with `s2a`, or with `S2ARunnable(llm=llm, **settings)`.

        Args:
            s2a: the S2A step: an `S2ARunnable`, or an `S2ADocumentCompressor`.
            llm: instead of `s2a`, the model of an `S2ARunnable` made with `settings`.
            filter_history: also filter the text of human and AI messages before the latest
                human message (each once, against the request current when it is first seen).
            tool_names: the tools whose results are filtered; `None`: every tool's.
            min_chars: a text shorter than this, stripped, is left as it is, with no call.
            split: how an `S2ADocumentCompressor` cuts a text into documents (paragraphs).
            placeholder: what a message says when S2A dropped all of it.
            **settings: `S2ARunnable` fields (`variant`, `focus`, `fallback`, `retry`, ...).

        Raises:
            ValueError: both or neither of `s2a` and `llm`, `settings` beside `s2a`, or a
                negative `min_chars`.
            TypeError: `s2a` is neither an `S2ARunnable` nor an `S2ADocumentCompressor`, or
                `tool_names` is a single string.
            pydantic.ValidationError: an unknown or invalid S2A setting.

        """
        super().__init__()
        if (s2a is None) == (llm is None):
            msg = (
                "S2AMiddleware needs one S2A step: pass `llm=` (and S2ARunnable settings), "
                "or `s2a=` an S2ARunnable or S2ADocumentCompressor, not both"
            )
            raise ValueError(msg)
        if s2a is not None and settings:
            msg = f"settings {sorted(settings)} build an S2ARunnable from `llm`; with `s2a=`, set them on it"
            raise ValueError(msg)
        if s2a is not None and not isinstance(s2a, S2ARunnable | S2ADocumentCompressor):
            msg = f"`s2a` must be an S2ARunnable or an S2ADocumentCompressor, got {type(s2a).__name__}"
            raise TypeError(msg)
        if isinstance(tool_names, str):
            msg = f"`tool_names` takes a collection of names: tool_names=[{tool_names!r}]"
            raise TypeError(msg)
        if min_chars < 0:
            msg = f"`min_chars` must be 0 or more, got {min_chars}"
            raise ValueError(msg)
        self.s2a = s2a if s2a is not None else S2ARunnable(llm=llm, **settings)
        self.filter_history = filter_history
        self.tool_names = frozenset(tool_names) if tool_names is not None else None
        self.min_chars = min_chars
        self.split = split
        self.placeholder = placeholder

    def _role(self, message: AnyMessage, earlier: bool) -> Role | None:
        if isinstance(message, ToolMessage):
            # A failed call's error tells the model what to fix: never S2A's to drop.
            wanted = self.tool_names is None or message.name in self.tool_names
            return "tool" if wanted and message.status != "error" else None
        if self.filter_history and earlier and isinstance(message, HumanMessage):
            return "human"
        if self.filter_history and earlier and isinstance(message, AIMessage):
            return "ai"
        return None

    def _plan(self, state: S2AState) -> _Plan | None:
        """The messages to filter now and the request to filter them for; `None`: nothing to do."""
        messages = state["messages"]
        latest = next(
            (i for i in reversed(range(len(messages))) if isinstance(messages[i], HumanMessage)), None
        )
        if latest is None or not messages[latest].text.strip():
            return None
        done = {record["message_id"] for record in state.get("s2a_filtered", [])}
        jobs = []
        for i, message in enumerate(messages):
            # Without an id the filtered copy could not replace it (add_messages gives every
            # message in an agent's state one).
            if i == latest or message.id is None or message.id in done:
                continue
            if METADATA_KEY in message.response_metadata:
                continue
            role, text = self._role(message, earlier=i < latest), _text(message)
            if role is not None and text is not None and len(text.strip()) >= self.min_chars:
                jobs.append(_Job(message, role, text))
        return _Plan(messages[latest].text.strip(), jobs) if jobs else None

    def _filter(self, job: _Job, question: str) -> _Outcome:
        config = _hook_config(job)
        if isinstance(self.s2a, S2ARunnable):
            return _from_result(
                job.text, self.s2a.invoke({"context": job.text, "question": question}, config)
            )
        parts = self.split(job.text)
        selected = _selector(self.s2a).invoke((parts, question), config)
        return _from_selected(job.text, parts, selected, self.s2a.mode)

    async def _afilter(self, job: _Job, question: str) -> _Outcome:
        config = _hook_config(job)
        if isinstance(self.s2a, S2ARunnable):
            result = await self.s2a.ainvoke({"context": job.text, "question": question}, config)
            return _from_result(job.text, result)
        parts = self.split(job.text)
        selected = await _selector(self.s2a).ainvoke((parts, question), config)
        return _from_selected(job.text, parts, selected, self.s2a.mode)

    def _update(self, plan: _Plan, outcomes: Sequence[_Outcome]) -> dict[str, Any]:
        """The state update: each message replaced, by its id, with its filtered copy; the records."""
        messages: list[AnyMessage] = []
        records: list[S2AFilterRecord] = []
        for job, outcome in zip(plan.jobs, outcomes, strict=True):
            text = outcome.text if outcome.text.strip() else self.placeholder
            record = S2AFilterRecord(
                message_id=str(job.message.id),
                role=job.role,
                tool=job.message.name if job.role == "tool" else None,
                question=plan.question,
                original=job.text,
                text=text,
                dropped=outcome.dropped,
                variant=outcome.variant,
                fallback=outcome.fallback,
            )
            if outcome.fallback is not None:
                logger.warning(
                    "S2A kept (part of) message %s as it was: %s", job.message.id, outcome.fallback
                )
            update: dict[str, Any] = {
                "response_metadata": {**job.message.response_metadata, METADATA_KEY: dict(record)}
            }
            if text != job.text:  # unchanged content stays byte for byte, blocks and all
                update["content"] = text
            messages.append(job.message.model_copy(update=update))
            records.append(record)
        return {"messages": messages, "s2a_filtered": records}

    def before_model(self, state: S2AState, runtime: Runtime[Any]) -> dict[str, Any] | None:  # noqa: ARG002 - LangChain's hook signature
        """Filter the messages not filtered yet; `None` when there are none."""
        plan = self._plan(state)
        if plan is None:
            return None
        return self._update(plan, [self._filter(job, plan.question) for job in plan.jobs])

    async def abefore_model(self, state: S2AState, runtime: Runtime[Any]) -> dict[str, Any] | None:  # noqa: ARG002 - LangChain's hook signature
        """Filter the messages not filtered yet, concurrently; `None` when there are none."""
        plan = self._plan(state)
        if plan is None:
            return None
        outcomes = await asyncio.gather(*(self._afilter(job, plan.question) for job in plan.jobs))
        return self._update(plan, outcomes)
