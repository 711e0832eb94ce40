"""The methods compared: the prompt as given, the oracle prompt, each S2A variant, the peers.

Every method ends in the same answer step (the task's system message, then one user
message); they differ only in what that user message is. Each model call is timed and its
token counts kept, so `s2a bench` reads the cost from the same records.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from huggingface_hub import InferenceClient, get_session
from pydantic import BaseModel, ConfigDict

from s2a._client import chat
from s2a._faults import NO_RETRY
from s2a._sentences import join_sentences, sentence_spans
from s2a._steps import Reply as StepReply
from s2a._steps import run_plan
from s2a._types import ChatMessage, S2AInput, S2AResult, StepCost, TokenLogprob, TokenUsage
from s2a._windows import plan_step
from s2a.evaluation.records import Record
from s2a.evaluation.task import Task
from s2a.tgi import Decoding, check_base_url, inference_client
from s2a.variants import VARIANTS, S2AConfig, S2ARequest

S2A_TOKENS = 512
"""`max_new_tokens` of the S2A step (a rewrite is rarely longer than its input)."""

BASELINES = ("baseline", "oracle")
PEERS = ("llm_chain_extractor", "llm_chain_filter", "llm_rerank")
CONFIGURED: dict[str, dict[str, Any]] = {
    "scored_no_probe": {"variant": "scored", "stance_probe": False},
    "scored_probe": {"variant": "scored", "stance_probe": True},
}
"""Variants with options named, by method name. The stance probe is on by default, so
`scored_probe` is `scored`; the name stays for the commands that measured it as an option."""
METHODS: tuple[str, ...] = (*BASELINES, *VARIANTS, *CONFIGURED, *PEERS)
"""Every method `s2a eval` knows, in the order tables show them."""


class Step(BaseModel):
    """One stage of a method (`filter` or `answer`): its wall time, calls and tokens."""

    model_config = ConfigDict(frozen=True)

    name: str
    seconds: float
    calls: int
    input_tokens: int | None = None
    output_tokens: int | None = None
    rounds: int | None = None
    """Sequential rounds of calls (`StepCost.rounds`), where the step went through the S2A driver."""
    cached_tokens: int | None = None
    """Of `input_tokens`, those the server took from its prefix cache, where it says."""
    reused: bool = False
    """The answer of a prompt already answered in the run, byte for byte (`Answers`): no call."""


@dataclass(frozen=True)
class Reply:
    """A model's reply to one call, with its cost."""

    text: str
    seconds: float
    usage: TokenUsage | None
    logprobs: Sequence[TokenLogprob] | None = None


class ChatModel(Protocol):
    """One chat call: messages in, reply out.

    The reply is constrained by TGI's `grammar` when one is given, and carries each token's
    `top_logprobs` alternatives when asked.
    """

    def __call__(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int,
        grammar: dict[str, Any] | None = None,
        top_logprobs: int = 0,
    ) -> Reply:
        """Make the call."""
        ...


class TGIChat:
    """`ChatModel` over a TGI server's chat route, through huggingface_hub's client."""

    def __init__(self, base_url: str, decoding: Decoding | None = None, *, timeout: float = 600.0) -> None:
        """Bind to the server at `base_url`; `decoding` sets temperature, seed and stops."""
        self.base_url = base_url
        self.decoding = decoding or Decoding()
        self.client: InferenceClient = inference_client(base_url, timeout=timeout)

    def __call__(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int,
        grammar: dict[str, Any] | None = None,
        top_logprobs: int = 0,
    ) -> Reply:
        """One chat completion, constrained by TGI's `grammar` (`{"type": "json", "value": ...}`)."""
        decoding = self.decoding.model_copy(update={"max_new_tokens": max_new_tokens})
        started = time.perf_counter()
        reply = chat(self.client, list(messages), decoding, grammar, top_logprobs)
        return Reply(reply.text, time.perf_counter() - started, reply.usage, reply.logprobs)

    def info(self) -> dict[str, Any]:
        """The server's TGI `/info`."""
        # huggingface_hub's own HTTP session: the same transport as every model call.
        url = f"{check_base_url(self.base_url)}/info"
        info: dict[str, Any] = get_session().get(url, timeout=30).raise_for_status().json()
        return info

    def batch_size(self) -> int | None:
        """Requests the server decodes together, if it says (the local server's `max_batch_size`)."""
        size = self.info().get("max_batch_size")
        return size if isinstance(size, int) and size > 0 else None

    def model_id(self) -> str:
        """What the server says it serves: TGI's `/info` `model_id`, and `model_sha` if any."""
        info = self.info()
        sha = info.get("model_sha")
        return f"{info.get('model_id', 'unknown')}" + (f"@{sha}" if sha else "")


class Answers:
    """The run's answers by their exact messages: a prompt answered once is not answered again.

    Greedy decoding, one request at a time, is repeatable, so a method whose answer step sees
    the baseline's prompt byte for byte (S2A that removed nothing) would get the baseline's
    answer; the run reuses it instead of asking again. Only for greedy runs: a sampled answer
    is not a function of its prompt. Safe across threads: a prompt in flight is waited for.
    """

    def __init__(self) -> None:
        """An empty memo."""
        self._lock = threading.Lock()
        self._replies: dict[str, Future[Reply]] = {}

    @staticmethod
    def _key(messages: Sequence[ChatMessage], max_new_tokens: int) -> str:
        return json.dumps([list(messages), max_new_tokens], sort_keys=True)

    def add(self, messages: Sequence[ChatMessage], max_new_tokens: int, answer: str) -> None:
        """Remember `answer` for `messages` (from an earlier sitting's results)."""
        future: Future[Reply] = Future()
        future.set_result(Reply(answer, 0.0, None))
        with self._lock:
            self._replies.setdefault(self._key(messages, max_new_tokens), future)

    def ask(
        self, model: ChatModel, messages: Sequence[ChatMessage], max_new_tokens: int
    ) -> tuple[Reply, bool]:
        """The reply to `messages`, and whether it was reused rather than asked for now."""
        key = self._key(messages, max_new_tokens)
        with self._lock:
            known = self._replies.get(key)
            if known is None:
                mine: Future[Reply] = Future()
                self._replies[key] = mine
        if known is not None:
            return known.result(), True
        try:
            reply = model(messages, max_new_tokens=max_new_tokens)
        except BaseException as exc:
            with self._lock:
                del self._replies[key]  # a failed call is not remembered: the next asker tries again
            mine.set_exception(exc)
            raise
        mine.set_result(reply)
        return reply, False


@dataclass(frozen=True)
class Kept:
    """What a peer filter kept of the prompt's sentences."""

    text: str
    """The kept text, in the original order (empty if nothing was kept)."""
    calls: int
    input_tokens: int | None = None
    output_tokens: int | None = None


Peer = Callable[[list[str], str], Kept]
"""A peer filter: the prompt's sentences and the prompt (as the query) in, what it kept out."""


@dataclass(frozen=True)
class Outcome:
    """What one method did on one record."""

    prompt: str
    """The user message of the answer step."""
    answer: str
    steps: list[Step]
    fallback: str | None = None
    """Why the filter's output was not used (the original prompt was answered instead)."""


def reply_step(name: str, reply: Reply) -> Step:
    """One call's reply as a step: its seconds, one call in one round, the tokens it reported."""
    usage = reply.usage
    return Step(
        name=name,
        seconds=reply.seconds,
        calls=1,
        rounds=1,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cached_tokens=usage.cached_tokens if usage else None,
    )


def s2a_step(inp: S2AInput, config: S2AConfig, model: ChatModel) -> tuple[S2AResult, Step]:
    """The S2A step of `config` on `inp`, every call through `model`, and its cost as one step."""

    def call(request: S2ARequest) -> StepReply:
        reply = model(
            request.messages,
            max_new_tokens=request.new_tokens(S2A_TOKENS),
            grammar=request.grammar,
            top_logprobs=request.top_logprobs,
        )
        return StepReply(reply.text, reply.usage, logprobs=reply.logprobs)

    started = time.perf_counter()
    result = run_plan(plan_step(inp, config), call, NO_RETRY)
    seconds, cost = time.perf_counter() - started, result.cost or StepCost()
    return result, Step(
        name="filter",
        seconds=seconds,
        calls=cost.calls,
        input_tokens=cost.prompt_tokens,
        output_tokens=cost.generated_tokens,
        rounds=cost.rounds,
        cached_tokens=cost.cached_tokens,
    )


def answer_messages(task: Task, prompt: str) -> list[ChatMessage]:
    """The answer step's messages: the task's system message, if any, then `prompt`."""
    system: list[ChatMessage] = [{"role": "system", "content": task.system}] if task.system else []
    return [*system, {"role": "user", "content": prompt}]


def run_method(
    method: str,
    task: Task,
    record: Record,
    model: ChatModel,
    peers: dict[str, Peer] | None = None,
    *,
    answers: Answers | None = None,
) -> Outcome:
    """Run `method` on `record`: filter (if the method has a filter step), then answer.

    With `answers`, an answer prompt already answered in the run is not asked again.
    """
    prompt = task.prompt(record)
    steps: list[Step] = []
    fallback: str | None = None
    if method == "baseline":
        shown = prompt
    elif method == "oracle":
        shown = task.oracle(record)
    elif method in VARIANTS or method in CONFIGURED:
        config = S2AConfig(**CONFIGURED.get(method, {"variant": method}))
        result, step = s2a_step(S2AInput(context=prompt), config, model)
        steps.extend([step] if step.calls else [])
        shown, fallback = result.prompt, result.fallback
    elif method in PEERS:
        if peers is None or method not in peers:
            msg = f"method {method!r} needs the peer filters (langchain and llamaindex extras)"
            raise ValueError(msg)
        started = time.perf_counter()
        kept = peers[method]([str(s) for s in _sentences(prompt)], prompt)
        steps.append(
            Step(
                name="filter",
                seconds=time.perf_counter() - started,
                calls=kept.calls,
                input_tokens=kept.input_tokens,
                output_tokens=kept.output_tokens,
            )
        )
        shown = kept.text if kept.text.strip() else prompt
        fallback = None if kept.text.strip() else "the filter kept nothing; answered the original prompt"
    else:
        msg = f"unknown method {method!r}; choose from {', '.join(METHODS)}"
        raise ValueError(msg)
    reply, answered = answer_step(task, shown, model, answers)
    return Outcome(prompt=shown, answer=reply.text, steps=[*steps, answered], fallback=fallback)


def answer_step(
    task: Task, prompt: str, model: ChatModel, answers: Answers | None = None
) -> tuple[Reply, Step]:
    """The answer step and its cost; with `answers`, a prompt answered before is not asked again."""
    messages = answer_messages(task, prompt)
    if answers is None:
        reply = model(messages, max_new_tokens=task.answer_tokens)
        return reply, reply_step("answer", reply)
    reply, reused = answers.ask(model, messages, task.answer_tokens)
    if reused:
        return reply, Step(name="answer", seconds=0.0, calls=0, reused=True)
    return reply, reply_step("answer", reply)


def _sentences(prompt: str) -> list[str]:
    return [prompt[s.start : s.end] for s in sentence_spans(prompt)]


def join_kept(prompt: str, kept: Sequence[int]) -> str:
    """The prompt's sentences `kept` (0-based), in their original order and spacing."""
    return join_sentences(prompt, sentence_spans(prompt), [k + 1 for k in kept])
