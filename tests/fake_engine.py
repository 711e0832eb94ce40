"""A stand-in for the llama.cpp engine: words are tokens, the reply echoes the prompt.

Under a tool grammar (a JSON schema with `$functions`, tools.py) it calls the grammar's first
function instead, without arguments, as a grammar would make any model reply with a call; tests
that need another reply script it (`replies`). It lets the server's protocol, validation,
admission and framing be tested in milliseconds;
the integration suite runs the same server over the real model. Like llama.cpp, it runs at
most `slots` generations at once; the rest wait for a slot.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from s2a.local.engine import InputError, OnToken, Outcome, Sampling, TokenInfo

EOS = 0


class FakeEngine:
    n_ctx = 64
    has_chat_template = True

    def __init__(
        self,
        *,
        delay: float = 0.0,
        words: int | None = None,
        fail_after: int | None = None,
        slots: int = 4,
        replies: list[list[str]] | None = None,
        template_renders_tools: bool = True,
        template_renders_tool_calls: bool = True,
    ) -> None:
        self.slots = slots
        self.replies = list(replies or [])
        """Scripted replies, one per generation in turn (token texts, without the EOS)."""
        self.template_renders_tools = template_renders_tools
        self.template_renders_tool_calls = template_renders_tool_calls
        self.templated: list[tuple[list[dict[str, Any]], list[dict[str, Any]] | None]] = []
        self._slots = threading.BoundedSemaphore(slots)
        self.closed = False
        self.delay = delay
        self.fail_after = fail_after
        self.words = words
        self._vocab: dict[str, int] = {"<eos>": EOS}
        self.loaded = threading.Event()
        self.calls: list[str] = []
        self.samplings: list[Sampling] = []

    def _id(self, word: str) -> int:
        return self._vocab.setdefault(word, len(self._vocab))

    def _word(self, token: int) -> str:
        return next(word for word, i in self._vocab.items() if i == token)

    def tokenize(self, text: str) -> list[int]:
        return [self._id(word) for word in text.split()]

    def chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> tuple[str, list[int]]:
        self.templated.append((messages, tools))
        parts = [f"tools: {' '.join(t['function']['name'] for t in tools)}"] if tools else []
        for m in messages:
            calls = " ".join(f"call: {c['function']['name']}" for c in m.get("tool_calls") or [])
            parts.append(f"{m['role']}: {m['content'] or ''} {calls}".strip())
        text = " ".join(parts)
        return text, self.tokenize(text)

    def offsets(self, text: str) -> list[tuple[int, str, int, int]]:
        result, position = [], 0
        for word in text.split():
            start = text.index(word, position)
            result.append((self._id(word), word, start, start + len(word)))
            position = start + len(word)
        return result

    def check(self, sampling: Sampling) -> None:
        if sampling.json_schema is not None and sampling.json_schema.get("type") == "unsupported":
            msg = "the JSON schema cannot be turned into a grammar: unsupported type"
            raise InputError(msg)

    def close(self) -> None:
        self.closed = True

    def generate(self, prompt: list[int], sampling: Sampling, on_token: OnToken) -> Outcome:
        """Reply `echo <prompt words>` then EOS, honouring max_new_tokens and stop sequences."""
        with self._slots:
            return self._generate(prompt, sampling, on_token)

    def _generate(self, prompt: list[int], sampling: Sampling, on_token: OnToken) -> Outcome:
        outcome = Outcome()
        self.calls.append(" ".join(self._word(t) for t in prompt))
        self.samplings.append(sampling)
        text = ""
        outcome.seed = sampling.seed if sampling.do_sample else None
        for count, piece in enumerate(self._reply(prompt, sampling), start=1):
            if self.fail_after is not None and count > self.fail_after:
                msg = "the engine broke"
                raise RuntimeError(msg)
            if self.delay:
                time.sleep(self.delay)
            word = piece.strip() or piece
            special = word == "<eos>"
            info = TokenInfo(id=self._id(word), text=piece, logprob=-0.5, special=special)
            outcome.tokens.append(info)
            if not special:
                text += piece
            cancelled = on_token(info)
            if special:
                outcome.finish_reason = "eos_token"
                break
            if any(text.endswith(stop) for stop in sampling.stop):
                outcome.finish_reason = "stop_sequence"
                break
            if count >= sampling.max_new_tokens or cancelled:
                outcome.finish_reason = "length"
                break
        outcome.generated_text = text
        return outcome

    def _reply(self, prompt: list[int], sampling: Sampling) -> list[str]:
        """The token texts to send, ending with the EOS."""
        if self.replies:
            return [*self.replies.pop(0), "<eos>"]
        schema = sampling.json_schema or {}
        if "$functions" in schema:
            name = schema["properties"]["function"]["anyOf"][0]["$ref"].rsplit("/", 1)[-1]
            return ['{"function":', ' {"_name":', f" {json.dumps(name)}", "}}", "<eos>"]
        words = ["echo", *(self._word(t) for t in prompt)][: self.words]
        return [*(f" {word}" for word in words), "<eos>"]
