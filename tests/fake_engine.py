"""A stand-in for the llama.cpp engine: words are tokens, the reply echoes the prompt.

It lets the server's protocol, validation, admission and framing be tested in milliseconds;
the integration suite runs the same server over the real model. Like llama.cpp, it runs at
most `slots` generations at once; the rest wait for a slot.
"""

from __future__ import annotations

import threading
import time

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
    ) -> None:
        self.slots = slots
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

    def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
        text = " ".join(f"{m['role']}: {m['content']}" for m in messages)
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
        reply = [*["echo", *(self._word(t) for t in prompt)][: self.words], "<eos>"]
        text = ""
        outcome.seed = sampling.seed if sampling.do_sample else None
        for count, word in enumerate(reply, start=1):
            if self.fail_after is not None and count > self.fail_after:
                msg = "the engine broke"
                raise RuntimeError(msg)
            if self.delay:
                time.sleep(self.delay)
            special = word == "<eos>"
            piece = word if special else f" {word}"
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
