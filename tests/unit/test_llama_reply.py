"""Reading llama.cpp's stream chunks into TGI's tokens (s2a/local/llama.py), without llama.cpp.

The chunks have the shape xllamacpp's `handle_completions` passes its callback (recorded from
the real server): one token per chunk with its id, bytes and log-probabilities, then a last
chunk with the finish reason, usage and timings.
"""

from __future__ import annotations

from typing import Any

import pytest

from s2a.local.engine import EngineError, Sampling, TokenInfo
from s2a.local.llama import _grammar_error, _lark, _Reply

EOS = 151645


def token(token_id: int, raw: bytes, logprob: float = -0.5) -> dict[str, Any]:
    entry = {"id": token_id, "token": raw.decode("utf-8", "replace"), "bytes": list(raw), "logprob": logprob}
    alternative = {"id": 7, "token": "x", "bytes": [120], "logprob": -3.0}
    return {
        "choices": [
            {
                "text": "",
                "index": 0,
                "logprobs": {"content": [{**entry, "top_logprobs": [entry, alternative]}]},
                "finish_reason": None,
            }
        ]
    }


def last(reason: str, cached: int = 0) -> dict[str, Any]:
    return {
        "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": reason}],
        "timings": {"cache_n": cached, "prompt_n": 5},
    }


def run(
    chunks: list[dict[str, Any]], sampling: Sampling, stop_after: int | None = None
) -> tuple[_Reply, list[TokenInfo], int]:
    seen: list[TokenInfo] = []

    def on_token(info: TokenInfo) -> bool:
        seen.append(info)
        return len(seen) == stop_after

    reply = _Reply(sampling, on_token, lambda _id: "<|im_end|>")
    taken = 0
    for chunk in chunks:
        taken += 1
        if reply.on_chunk(chunk):
            break
    return reply, seen, taken


def test_tokens_end_of_turn_and_cache_are_read() -> None:
    chunks = [token(12095, b" Paris"), token(13, b"."), token(EOS, b""), last("stop", cached=4)]
    reply, seen, _ = run(chunks, Sampling(max_new_tokens=8, top_n_tokens=2))
    outcome = reply.result()
    assert outcome.generated_text == " Paris."
    assert outcome.finish_reason == "eos_token"
    assert outcome.cached_tokens == 4
    assert [(t.id, t.text, t.special) for t in outcome.tokens] == [
        (12095, " Paris", False),
        (13, ".", False),
        (EOS, "<|im_end|>", True),
    ]
    assert seen == outcome.tokens
    assert outcome.tokens[0].top == ((12095, " Paris", -0.5, False), (7, "x", -3.0, False))


def test_top_tokens_only_when_asked() -> None:
    reply, _, _ = run([token(1, b"a"), last("length")], Sampling(max_new_tokens=1))
    assert reply.result().tokens[0].top == ()


def test_a_stop_sequence_stays_in_the_text_and_stops_the_stream() -> None:
    chunks = [token(1, b" Paris"), token(2, b"."), token(3, b" Paris"), token(4, b" is"), token(5, b" big")]
    reply, _, taken = run(chunks, Sampling(max_new_tokens=9, stop=(" is",)))
    outcome = reply.result()
    assert taken == 4  # the callback said stop at the token that completed " is"
    assert (outcome.generated_text, outcome.finish_reason) == (" Paris. Paris is", "stop_sequence")


def test_a_stop_sequence_split_over_tokens() -> None:
    reply, _, _ = run(
        [token(1, b"ab"), token(2, b"c"), token(3, b"d")], Sampling(max_new_tokens=9, stop=("bc",))
    )
    assert reply.result().generated_text == "abc"


def test_a_character_split_over_two_tokens_is_decoded_once() -> None:
    e_acute = "é".encode()
    reply, _, _ = run(
        [token(1, e_acute[:1]), token(2, e_acute[1:] + b"!"), last("length")], Sampling(max_new_tokens=2)
    )
    outcome = reply.result()
    assert [t.text for t in outcome.tokens] == ["", "é!"]
    assert outcome.generated_text == "é!"


def test_the_consumer_can_cancel() -> None:
    reply, _, taken = run([token(i, b"a") for i in range(1, 6)], Sampling(max_new_tokens=9), stop_after=2)
    assert taken == 2
    assert (len(reply.result().tokens), reply.result().finish_reason) == (2, "length")


@pytest.mark.parametrize(
    "chunk",
    [
        {"error": {"code": 400, "message": "request (3001 tokens) exceeds the available context size"}},
        {"code": 500, "type": "server_error", "message": "boom"},
    ],
)
def test_an_error_chunk_is_an_engine_error(chunk: dict[str, Any]) -> None:
    reply, _, _ = run([chunk], Sampling(max_new_tokens=2))
    with pytest.raises(EngineError):
        reply.result()


def test_grammars_are_checked_with_llguidance() -> None:
    assert _grammar_error("json_schema", '{"type": "object"}') == ""
    assert "bogus" in _grammar_error("json_schema", '{"type": "bogus"}')
    assert "unclosed group" in _grammar_error("regex", "((")
    assert _lark("a/b").startswith("%llguidance {}\n")
    assert _grammar_error("regex", "[0-9]{3}") == ""
