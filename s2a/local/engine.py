"""The generation engine behind the local server: llama.cpp through llama-cpp-python.

One model context generates one sequence at a time; the server queues requests in front of
it. Everything here is synchronous and runs in a worker thread.
"""

from __future__ import annotations

import codecs
import ctypes
import json
import logging
import os
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from llama_cpp import Llama, llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from s2a.local.model import ModelError

logger = logging.getLogger(__name__)

FinishReason = Literal["length", "eos_token", "stop_sequence"]
_GRAMMAR_CACHE = 64


class GrammarError(ValueError):
    """A grammar the engine cannot compile."""


@dataclass(frozen=True)
class Sampling:
    """Decoding settings, already validated by the server."""

    max_new_tokens: int
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    typical_p: float = 1.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None
    top_n_tokens: int = 0


@dataclass(frozen=True)
class TokenInfo:
    """One generated token, as TGI reports it."""

    id: int
    text: str
    logprob: float
    special: bool
    top: tuple[tuple[int, str, float, bool], ...] = ()


@dataclass
class Outcome:
    """Filled in as generation runs; complete once the token iterator is exhausted."""

    finish_reason: FinishReason = "length"
    generated_text: str = ""
    tokens: list[TokenInfo] = field(default_factory=list)
    seed: int | None = None


class Engine:
    """A loaded GGUF model and the one context that generates with it."""

    def __init__(self, model_path: Path, *, n_ctx: int, n_threads: int | None = None) -> None:
        try:
            self._llama = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=n_threads or os.cpu_count() or 1,
                verbose=False,
            )
        except ValueError as exc:
            msg = f"llama.cpp could not load {model_path}: {exc}"
            raise ModelError(msg) from exc
        self.model_path = model_path
        self.n_ctx = n_ctx
        self._vocab = self._llama._model.vocab
        self._n_vocab = self._llama.n_vocab()
        self._lock = threading.Lock()
        self._grammars: dict[str, LlamaGrammar] = {}
        template = self._llama.metadata.get("tokenizer.chat_template")
        self._formatter = (
            Jinja2ChatFormatter(
                template=template,
                eos_token=self._token_text(self._llama.token_eos()),
                bos_token=self._token_text(self._llama.token_bos()),
            )
            if template
            else None
        )

    @property
    def has_chat_template(self) -> bool:
        """Whether the GGUF carries a chat template (needed by the chat route)."""
        return self._formatter is not None

    def _bytes(self, token: int, *, special: bool) -> bytes:
        # llama-cpp-python's own wrapper returns its whole buffer, padding included.
        size = 64
        while True:
            buffer = ctypes.create_string_buffer(size)
            length = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, size, 0, special)
            if length >= 0:
                return buffer.raw[:length]
            size = -length

    def _token_text(self, token: int) -> str:
        return "" if token < 0 else self._bytes(token, special=True).decode("utf-8", "replace")

    def is_special(self, token: int) -> bool:
        """Whether `token` is a control token (end of turn, BOS, ...)."""
        attr = llama_cpp.llama_vocab_get_attr(self._vocab, token)
        return bool(attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL) or llama_cpp.llama_vocab_is_eog(
            self._vocab, token
        )

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a raw prompt, with the model's BOS if it uses one; special tokens parsed."""
        return self._llama.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
        """The prompt text and tokens for chat messages, using the GGUF's own chat template."""
        if self._formatter is None:
            msg = "this model has no chat template in its GGUF metadata; use /generate"
            raise GrammarError(msg)
        result = self._formatter(messages=cast(Any, messages))
        tokens = self._llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        return result.prompt, tokens

    def offsets(self, text: str) -> list[tuple[int, str, int, int]]:
        """(id, text, start, stop) for each token of `text`; offsets are character positions."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        position, result = 0, []
        for token in self.tokenize(text):
            piece = "" if self.is_special(token) else decoder.decode(self._piece(token))
            result.append((token, piece, position, position + len(piece)))
            position += len(piece)
        return result

    def _piece(self, token: int) -> bytes:
        return self._bytes(token, special=False)

    def check(self, sampling: Sampling) -> None:
        """Reject settings the engine cannot run (an uncompilable grammar) before any generation."""
        self._grammar(sampling.json_schema)

    def _grammar(self, schema: dict[str, Any] | None) -> LlamaGrammar | None:
        if schema is None:
            return None
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            try:
                grammar = LlamaGrammar.from_json_schema(key, verbose=False)
            except (ValueError, KeyError, TypeError, RuntimeError, RecursionError) as exc:
                msg = f"the JSON schema cannot be turned into a grammar: {exc}"
                raise GrammarError(msg) from exc
            if len(self._grammars) >= _GRAMMAR_CACHE:
                self._grammars.pop(next(iter(self._grammars)))
            self._grammars[key] = grammar
        return self._grammars[key]

    def _logprobs(self, top_n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        pointer = self._llama._ctx.get_logits_ith(-1)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).astype(np.float64)
        shifted = logits - logits.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        top = np.argpartition(-logprobs, top_n)[:top_n] if top_n else np.empty(0, dtype=np.int64)
        return logprobs, top[np.argsort(-logprobs[top])]

    def generate(
        self, prompt: list[int], sampling: Sampling, outcome: Outcome, cancel: threading.Event
    ) -> Iterator[TokenInfo]:
        """Yield generated tokens; `outcome` holds the text and finish reason when done.

        Only one generation runs at a time (the context is not shared); a second caller waits.
        """
        grammar = self._grammar(sampling.json_schema)
        with self._lock:
            yield from self._generate(prompt, sampling, grammar, outcome, cancel)

    def _generate(
        self,
        prompt: list[int],
        sampling: Sampling,
        grammar: LlamaGrammar | None,
        outcome: Outcome,
        cancel: threading.Event,
    ) -> Iterator[TokenInfo]:
        if sampling.do_sample:
            outcome.seed = sampling.seed if sampling.seed is not None else random.randint(1, 2**31 - 1)  # noqa: S311
            self._llama.set_seed(outcome.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # Evaluate every prompt from scratch: reusing the previous request's KV-cache prefix
        # changes how the prompt is batched, hence float rounding, and greedy answers with it.
        self._llama.reset()  # type: ignore[no-untyped-call]
        tokens = self._llama.generate(
            prompt,
            top_k=sampling.top_k if sampling.do_sample else 0,
            top_p=sampling.top_p,
            min_p=0.0,
            typical_p=sampling.typical_p,
            temp=sampling.temperature if sampling.do_sample else 0.0,
            repeat_penalty=sampling.repetition_penalty,
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            grammar=grammar,
            reset=True,
        )
        text = []
        for count, token in enumerate(tokens, start=1):
            logprobs, top = self._logprobs(sampling.top_n_tokens)
            special = self.is_special(token)
            piece = self._token_text(token) if special else decoder.decode(self._piece(token))
            info = TokenInfo(
                id=int(token),
                text=piece,
                logprob=float(logprobs[token]),
                special=special,
                top=tuple(
                    (int(t), self._token_text(int(t)), float(logprobs[t]), self.is_special(int(t)))
                    for t in top
                ),
            )
            outcome.tokens.append(info)
            if not special:
                text.append(piece)
            yield info
            done = self._finish(token, "".join(text), sampling, count)
            if done is not None or cancel.is_set():
                outcome.finish_reason = done or "length"
                break
        outcome.generated_text = "".join(text)

    def _finish(self, token: int, text: str, sampling: Sampling, count: int) -> FinishReason | None:
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            return "eos_token"
        if any(stop and text.endswith(stop) for stop in sampling.stop):
            return "stop_sequence"
        if count >= sampling.max_new_tokens or self._llama.n_tokens >= self.n_ctx:
            return "length"
        return None
