"""The engine behind the local server: llama.cpp's own server, in process, through xllamacpp.

llama.cpp decodes up to `slots` requests together (continuous batching); more wait in its own
queue, in arrival order. Each slot keeps its last prompt in the KV cache, and finished prompts
are kept in RAM, so a request that shares a prefix with an earlier one skips that prefill.
Generation goes through `Server.handle_completions` with a stream callback, on the calling
thread; returning True from the callback stops it.

llama.cpp's server also opens an HTTP listener of its own, which xllamacpp cannot turn off
(an empty host list crashes it). It is bound to a Unix socket in a private (0700) directory
with a random API key that never leaves this process: nothing else on the machine can use it,
and no TCP port opens. The engine uses it for what the Python API lacks: /tokenize,
/detokenize, /apply-template and /props.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import random
import secrets
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
from llguidance import LLMatcher, grammar_from

from s2a.local.cpu import load_xllamacpp
from s2a.local.engine import EngineError, FinishReason, InputError, OnToken, Outcome, Sampling, TokenInfo
from s2a.local.model import ModelError

logger = logging.getLogger(__name__)

DEFAULT_SLOTS = 4
"""Requests decoded together by default: on 2 cores, 4 gave the best total decode rate."""
PROMPT_CACHE_MIB = 512
"""RAM for prompts kept after their slot moves on (llama.cpp's `--cache-ram`)."""
_NO_SEED = 0xFFFFFFFF  # llama.cpp's LLAMA_DEFAULT_SEED: "pick one at random"
_GRAMMAR_CACHE = 64


GrammarKind = Literal["json_schema", "regex"]


def _grammar_error(kind: GrammarKind, value: str) -> str:
    """Llguidance's complaint about a grammar, or "" if it compiles (the same library llama.cpp uses)."""
    return str(LLMatcher.validate_grammar(grammar_from(kind, value)))


def _lark(regex: str) -> str:
    """A regular expression as the llguidance grammar llama.cpp's `grammar` field takes."""
    lark = json.loads(grammar_from("regex", regex))["grammars"][0]["lark_grammar"]
    return f"%llguidance {{}}\n{lark}"


class LlamaEngine:
    """A GGUF model served by llama.cpp with `slots` sequences decoded together."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int,
        slots: int = DEFAULT_SLOTS,
        n_threads: int | None = None,
        prefix_cache: bool = True,
    ) -> None:
        xllamacpp = load_xllamacpp()
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.slots = slots
        self.prefix_cache = prefix_cache
        self._grammars: dict[str, str] = {}
        self._special_text: dict[int, str] = {}
        self._socket_dir = Path(tempfile.mkdtemp(prefix="s2a-llama-"))  # mode 0700
        weakref.finalize(self, shutil.rmtree, self._socket_dir, ignore_errors=True)
        socket_path = self._socket_dir / "llama.sock"
        key = secrets.token_urlsafe(32)
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.n_parallel = slots
        params.n_ctx = n_ctx * slots  # every slot holds a whole request (TGI's max_total_tokens)
        params.kv_unified = False
        threads = n_threads or os.cpu_count() or 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.cache_prompt = prefix_cache
        params.cache_ram_mib = PROMPT_CACHE_MIB if prefix_cache else 0
        params.verbosity = -1  # llama.cpp's own log would fill the terminal; failures reach clients
        params.hostnames = [str(socket_path)]
        params.api_keys = [key]
        params.ui = False
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError as exc:
            msg = f"llama.cpp could not load {model_path}: {exc}"
            raise ModelError(msg) from exc
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket_path)),
            base_url="http://llama.cpp",
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(60.0),
        )
        props = self._call("GET", "/props")
        template = str(props.get("chat_template") or "")
        self._chat_template = bool(template)
        # llama.cpp finds these by rendering the template with and without tools (`chat_template_caps`);
        # TGI asks whether the template names a `tools` variable (router/src/infer/chat_template.rs).
        caps = props.get("chat_template_caps") or {}
        self._renders_tools = bool(caps.get("supports_tools", "tools" in template))
        self._renders_tool_calls = bool(caps.get("supports_tool_calls", "tool_calls" in template))

    def close(self) -> None:
        """Stop llama.cpp and remove its socket."""
        self._http.close()
        server, self._server = self._server, None
        del server  # the destructor stops llama.cpp's loop and joins its threads
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            error = response.json().get("error", {})
            message = error.get("message", response.text) if isinstance(error, dict) else str(error)
            if response.status_code < 500:
                raise InputError(message)
            raise EngineError(message)
        return response.json()

    @property
    def has_chat_template(self) -> bool:
        """Whether the model has a chat template (the GGUF's, or llama.cpp's default for it)."""
        return self._chat_template

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a raw prompt, with the model's BOS if it uses one; special tokens parsed."""
        body = {"content": text, "add_special": True, "parse_special": True}
        return [int(t) for t in self._call("POST", "/tokenize", body)["tokens"]]

    @property
    def template_renders_tools(self) -> bool:
        """Whether the chat template shows the model a `tools` list."""
        return self._renders_tools

    @property
    def template_renders_tool_calls(self) -> bool:
        """Whether the chat template renders an assistant message's `tool_calls`."""
        return self._renders_tool_calls

    def chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> tuple[str, list[int]]:
        """The prompt text and tokens for chat messages, through the model's chat template.

        `tools` (OpenAI's shape) go to the template's `tools` variable; llama.cpp's Jinja engine
        renders them, and an assistant message's `tool_calls`, as the template says.
        """
        body: dict[str, Any] = {"messages": messages}
        if tools:
            body["tools"] = tools
        prompt = str(self._call("POST", "/apply-template", body)["prompt"])
        return prompt, self.tokenize(prompt)

    def offsets(self, text: str) -> list[tuple[int, str, int, int]]:
        """(id, text, start, stop) for each token of `text`; offsets are character positions.

        A token that is not in the text (a BOS the tokenizer adds) has empty text at its place.
        """
        body = {"content": text, "add_special": True, "parse_special": True, "with_pieces": True}
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        position, result = 0, []
        for token in self._call("POST", "/tokenize", body)["tokens"]:
            piece = token["piece"]
            raw = piece.encode("utf-8") if isinstance(piece, str) else bytes(piece)
            decoded = decoder.decode(raw)
            if not text.startswith(decoded, position):
                decoded = ""
            result.append((int(token["id"]), decoded, position, position + len(decoded)))
            position += len(decoded)
        return result

    def check(self, sampling: Sampling) -> None:
        """Refuse a grammar llama.cpp could not compile: it would generate unconstrained instead."""
        if sampling.json_schema is not None:
            self._checked("json_schema", json.dumps(sampling.json_schema, sort_keys=True))
        if sampling.regex is not None:
            self._checked("regex", sampling.regex)

    def _checked(self, kind: GrammarKind, value: str) -> None:
        key = f"{kind}:{value}"
        if key not in self._grammars:
            error = _grammar_error(kind, value)
            if error:
                msg = f"the {kind.replace('_', ' ')} cannot be turned into a grammar: {error.strip()}"
                raise InputError(msg)
            if len(self._grammars) >= _GRAMMAR_CACHE:
                self._grammars.pop(next(iter(self._grammars)))
            self._grammars[key] = value

    def _request(self, prompt: list[int], sampling: Sampling, seed: int | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "prompt": prompt,
            "stream": True,
            "max_tokens": sampling.max_new_tokens,
            "n_probs": max(1, sampling.top_n_tokens),  # the chosen token's id and log-probability
            "cache_prompt": self.prefix_cache,
            "temperature": sampling.temperature if sampling.do_sample else 0.0,
            "top_k": sampling.top_k,
            "top_p": sampling.top_p,
            "min_p": 0.0,  # TGI has no min-p; llama.cpp's default is 0.05
            "typical_p": sampling.typical_p,
            "repeat_penalty": sampling.repetition_penalty,
            "repeat_last_n": self.n_ctx,  # TGI penalises every token so far
            "frequency_penalty": sampling.frequency_penalty,
            "presence_penalty": sampling.presence_penalty,
        }
        if seed is not None:
            request["seed"] = seed % _NO_SEED  # llama.cpp's seed is 32 bits, and its maximum means "random"
        if sampling.json_schema is not None:
            request["json_schema"] = sampling.json_schema
        if sampling.regex is not None:
            request["grammar"] = _lark(sampling.regex)
        return request

    def _special(self, token: int) -> str:
        if token not in self._special_text:
            self._special_text[token] = str(self._call("POST", "/detokenize", {"tokens": [token]})["content"])
        return self._special_text[token]

    def generate(self, prompt: list[int], sampling: Sampling, on_token: OnToken) -> Outcome:
        """Generate to the end, calling `on_token` for each token; safe from many threads at once."""
        reply = _Reply(sampling, on_token, self._special)
        if sampling.do_sample:
            reply.outcome.seed = sampling.seed if sampling.seed is not None else random.randint(1, 2**31 - 1)  # noqa: S311
        self._server.handle_completions(self._request(prompt, sampling, reply.outcome.seed), reply.on_chunk)
        return reply.result()


class _Reply:
    """One generation, assembled from llama.cpp's stream chunks as its callback receives them."""

    def __init__(self, sampling: Sampling, on_token: OnToken, special_text: Callable[[int], str]) -> None:
        self.sampling, self.on_token, self.special_text = sampling, on_token, special_text
        self.outcome = Outcome()
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text: list[str] = []
        self.longest = max((len(stop) for stop in sampling.stop), default=0)
        self.tail = ""  # the last `longest` characters, where a stop sequence would end
        self.finish: FinishReason | None = None
        self.error: str | None = None

    def on_chunk(self, chunk: dict[str, Any]) -> bool:
        """Take one chunk; True stops the generation (it never raises into llama.cpp)."""
        if "error" in chunk or "choices" not in chunk:
            error = chunk.get("error", chunk)
            self.error = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            return True
        choice = chunk["choices"][0] if chunk["choices"] else {}
        for entry in (choice.get("logprobs") or {}).get("content") or []:
            info = self._token(entry)
            stop = self._take(info)
            if self.on_token(info) or stop:
                self.finish = "stop_sequence" if stop else "length"
                return True
        if "timings" in chunk:
            self.outcome.cached_tokens = int(chunk["timings"].get("cache_n", 0))
        reason = choice.get("finish_reason")
        if reason is not None:  # no stop strings go to llama.cpp, so "stop" is an end-of-generation token
            self.finish = "length" if reason == "length" else "eos_token"
            return True
        return False

    def _token(self, entry: dict[str, Any]) -> TokenInfo:
        raw = bytes(entry.get("bytes") or b"")
        special = not raw  # control tokens (end of turn) have no text in llama.cpp's output
        top = tuple(
            (
                int(t["id"]),
                t["token"] if t.get("bytes") else self.special_text(int(t["id"])),
                float(t["logprob"]),
                not t.get("bytes"),
            )
            for t in entry.get("top_logprobs", [])[: self.sampling.top_n_tokens]
        )
        piece = self.special_text(int(entry["id"])) if special else self.decoder.decode(raw)
        return TokenInfo(int(entry["id"]), piece, float(entry["logprob"]), special, top)

    def _take(self, info: TokenInfo) -> bool:
        """Add a token; whether the text now ends with a stop sequence."""
        self.outcome.tokens.append(info)
        if info.special:
            return False
        self.text.append(info.text)
        self.tail = (self.tail + info.text)[-self.longest :] if self.longest else ""
        return any(stop and self.tail.endswith(stop) for stop in self.sampling.stop)

    def result(self) -> Outcome:
        """The finished outcome, or `EngineError` with llama.cpp's message."""
        if self.error is not None:
            raise EngineError(self.error)
        self.outcome.finish_reason = self.finish or "length"
        self.outcome.generated_text = "".join(self.text)
        return self.outcome
