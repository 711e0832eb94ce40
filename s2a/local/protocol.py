"""TGI's request bodies and their validation, as TGI 3.3.6 publishes them (openapi.json).

The chat route's body, with its messages and tools, is in chat_request.py.

Every rejection is a `RequestError` carrying TGI's message; the server turns it into
`{"error": ..., "error_type": "validation"}` with status 422. Parameters this server cannot
honour are rejected too, never silently ignored. Types are strict, as TGI's serde is: `false`
is not a seed and `2.0` is not a token count.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from s2a.local.engine import Outcome, Sampling

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1  # the document's `format: int32` / `int64`; TGI's parser refuses larger numbers

MAX_STOP_SEQUENCES = 4
MAX_TOP_N_TOKENS = 5
MAX_BEST_OF = 1
DEFAULT_MAX_NEW_TOKENS = 1024


_PREFIX = {"validation": "Input validation error: ", "tool_error": "Tool error: "}
"""How TGI's `InferError` prints these two kinds (router/src/infer/mod.rs, `InferError`)."""


class RequestError(ValueError):
    """A request TGI would refuse; `error_type` is TGI's category for it (all but a few are 422)."""

    def __init__(self, message: str, error_type: str = "validation") -> None:
        super().__init__(f"{_PREFIX.get(error_type, '')}{message}")
        self.error_type = error_type


class Grammar(BaseModel):
    """TGI's `GrammarType`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["json", "regex", "json_schema"]
    value: Any

    @model_validator(mode="after")
    def _value_fits_type(self) -> Grammar:
        """The shape the document gives each type's value (checked on every route, /tokenize too)."""
        if self.type == "regex" and not isinstance(self.value, str):
            msg = "a `regex` grammar's value must be a string"
            raise ValueError(msg)
        if self.type == "json_schema" and not (
            isinstance(self.value, dict)
            and "schema" in self.value
            and isinstance(self.value.get("name"), str | None)
        ):
            msg = "a `json_schema` grammar's value must be an object with a `schema` (and a string `name`)"
            raise ValueError(msg)
        return self


class Parameters(BaseModel):
    """TGI's `GenerateParameters`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    adapter_id: str | None = None
    best_of: int | None = Field(default=None, ge=0)
    decoder_input_details: bool = False
    details: bool = True
    do_sample: bool = False
    frequency_penalty: float | None = None
    grammar: Grammar | None = None
    max_new_tokens: int | None = Field(default=None, ge=0, le=INT32_MAX)
    repetition_penalty: float | None = None
    return_full_text: bool | None = None
    seed: int | None = Field(default=None, ge=0, le=INT64_MAX)  # TGI's is unsigned
    stop: list[str] = Field(default_factory=list)
    temperature: float | None = None
    top_k: int | None = Field(default=None, ge=-INT32_MAX - 1, le=INT32_MAX)
    top_n_tokens: int | None = Field(default=None, ge=0, le=INT32_MAX)
    top_p: float | None = None
    truncate: int | None = Field(default=None, ge=0)
    typical_p: float | None = None
    watermark: bool = False


class GenerateRequest(BaseModel):
    """TGI's `GenerateRequest` (and `CompatGenerateRequest` with `stream`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    inputs: str
    parameters: Parameters = Field(default_factory=Parameters)
    stream: bool = False


def json_schema(grammar: Grammar | None) -> dict[str, Any] | None:
    """The JSON schema a `json` or `json_schema` grammar asks for (None for none, or a regex)."""
    if grammar is None or grammar.type == "regex":
        return None
    value = grammar.value
    if grammar.type == "json_schema":
        value = value.get("schema") if isinstance(value, dict) else None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            msg = f"grammar value is not valid JSON: {exc}"
            raise RequestError(msg) from exc
    if not isinstance(value, dict):
        msg = "grammar value must be a JSON schema object"
        raise RequestError(msg)
    return value


def regex(grammar: Grammar | None) -> str | None:
    """The regular expression a `regex` grammar asks for."""
    return grammar.value if grammar is not None and grammar.type == "regex" else None


def _check_unsupported(p: Parameters) -> None:
    unsupported = {
        "adapter_id": p.adapter_id is not None,
        "watermark": p.watermark,
        "decoder_input_details": p.decoder_input_details,
    }
    for name, asked in unsupported.items():
        if asked:
            msg = f"`{name}` is not supported by this server"
            raise RequestError(msg)


def _check_ranges(p: Parameters) -> None:
    if p.best_of is not None and not 0 < p.best_of <= MAX_BEST_OF:
        msg = f"`best_of` must be > 0 and <= {MAX_BEST_OF}. Given: {p.best_of}"
        raise RequestError(msg)
    if p.temperature is not None and p.temperature <= 0:
        msg = "`temperature` must be strictly positive"
        raise RequestError(msg)
    if p.repetition_penalty is not None and p.repetition_penalty <= 0:
        msg = "`repetition_penalty` must be strictly positive"
        raise RequestError(msg)
    if p.frequency_penalty is not None and not -2.0 <= p.frequency_penalty <= 2.0:
        msg = "`frequency_penalty` must be >= -2.0 and <= 2.0"
        raise RequestError(msg)
    for name in ("top_p", "typical_p"):  # TGI rejects 1.0 too, though its spec allows it
        value = getattr(p, name)
        if value is not None and not 0.0 < value < 1.0:
            msg = f"`{name}` must be > 0.0 and < 1.0"
            raise RequestError(msg)
    if p.top_k is not None and p.top_k <= 0:
        msg = "`top_k` must be strictly positive"
        raise RequestError(msg)
    if p.max_new_tokens is not None and p.max_new_tokens <= 0:
        msg = "`max_new_tokens` must be strictly positive"
        raise RequestError(msg)
    if len(p.stop) > MAX_STOP_SEQUENCES:
        msg = f"`stop` supports up to {MAX_STOP_SEQUENCES} stop sequences. Given: {len(p.stop)}"
        raise RequestError(msg)
    if p.top_n_tokens is not None and not 0 <= p.top_n_tokens <= MAX_TOP_N_TOKENS:
        msg = f"`top_n_tokens` must be >= 0 and <= {MAX_TOP_N_TOKENS}. Given: {p.top_n_tokens}"
        raise RequestError(msg)


def check_length(n_input: int, max_new_tokens: int | None, max_input: int, max_total: int) -> int:
    """Validate the token budget; return the effective `max_new_tokens`."""
    if n_input == 0:
        msg = "`inputs` cannot be empty"
        raise RequestError(msg)
    if n_input > max_input:
        msg = f"`inputs` must have less than {max_input} tokens. Given: {n_input}"
        raise RequestError(msg)
    budget = (
        max_new_tokens if max_new_tokens is not None else min(DEFAULT_MAX_NEW_TOKENS, max_total - n_input)
    )
    if n_input + budget > max_total:
        msg = (
            f"`inputs` tokens + `max_new_tokens` must be <= {max_total}. "
            f"Given: {n_input} `inputs` tokens and {budget} `max_new_tokens`"
        )
        raise RequestError(msg)
    return budget


def sampling(p: Parameters, max_new_tokens: int) -> Sampling:
    """Validated engine settings for TGI parameters.

    As in TGI, setting temperature (other than 1), top_k, top_p or typical_p below 1 turns
    sampling on even without `do_sample`.
    """
    _check_unsupported(p)
    _check_ranges(p)
    warpers = (p.temperature is not None and p.temperature != 1.0) or any(
        value is not None for value in (p.top_k, p.top_p, p.typical_p)
    )
    return Sampling(
        max_new_tokens=max_new_tokens,
        do_sample=p.do_sample or bool(warpers),
        temperature=p.temperature or 1.0,
        top_k=p.top_k or 0,
        top_p=p.top_p or 1.0,
        typical_p=p.typical_p or 1.0,
        repetition_penalty=p.repetition_penalty or 1.0,
        frequency_penalty=p.frequency_penalty or 0.0,
        seed=p.seed,
        stop=tuple(p.stop),
        json_schema=json_schema(p.grammar),
        regex=regex(p.grammar),
        top_n_tokens=p.top_n_tokens or 0,
    )


def openai_usage(n_prompt: int, outcome: Outcome) -> dict[str, Any]:
    """TGI's usage, and OpenAI's `prompt_tokens_details.cached_tokens`: llama.cpp's prefix-cache reuse."""
    generated = len(outcome.tokens)
    return {
        "prompt_tokens": n_prompt,
        "completion_tokens": generated,
        "total_tokens": n_prompt + generated,
        "prompt_tokens_details": {"cached_tokens": outcome.cached_tokens},
    }


def openai_envelope(kind: str, model_id: str) -> dict[str, Any]:
    """The fields every OpenAI-style reply object of this server opens with (chat and completions)."""
    return {
        "object": kind,
        "id": "",
        "created": int(time.time()),
        "model": model_id,
        "system_fingerprint": f"{model_id}-s2a",
    }


def openai_parameters(
    *,
    temperature: float | None,
    top_p: float | None,
    frequency_penalty: float | None,
    max_tokens: int | None,
    seed: int | None,
    stop: list[str] | None,
    **more: Any,
) -> Parameters:
    """TGI's mapping of the OpenAI-style routes: temperature 0 is greedy, none samples at 1.0."""
    greedy = temperature is not None and temperature == 0.0
    return Parameters(
        do_sample=not greedy,
        temperature=None if greedy else temperature,
        top_p=top_p,
        frequency_penalty=frequency_penalty,
        max_new_tokens=max_tokens,
        seed=seed,
        stop=stop or [],
        **more,
    )
