"""A context longer than the real server's window: refused whole (422), filtered in parts with a window.

The server is started with a small window (600 input tokens) so that a few paragraphs exceed it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_s2a import ContextQuestion, S2ARunnable, tgi_chat_model
from s2a import NO_RETRY, VariantName, split_sentences
from s2a._client import server_window
from s2a.tgi import inference_client
from tests.integration.conftest import start_server, stop
from tests.ledger import question_kept, record

MAX_NEW_TOKENS = 200
FACTS = [
    "The Eiffel Tower is in Paris and was finished in 1889.",
    "Mount Everest is the highest mountain above sea level.",
    "Honey never spoils if it is kept sealed.",
    "The Danube flows through ten countries, more than any other river.",
    "Octopuses have three hearts and blue blood.",
    "The Great Wall of China is thousands of kilometres long.",
    "I am quite sure the tower was finished in 1925, whatever the books say.",
    "Bananas are berries, botanically speaking, but strawberries are not.",
    "The speed of light in vacuum is about 300,000 kilometres per second.",
    "Venus spins in the opposite direction to most planets.",
    "The human body has 206 bones in adulthood.",
    "Saturn's density is lower than that of water.",
]
QUESTION = "In which year was the Eiffel Tower finished?"
CONTEXT = " ".join(FACTS * 3)


@pytest.fixture(scope="module")
def small_window_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve-small") / "serve.log"
    process, url = start_server(log, "--max-input-tokens", "600", "--max-total-tokens", "1024")
    yield url
    stop(process)


def test_the_server_refuses_the_whole_context_and_nothing_is_lost(small_window_url: str) -> None:
    llm = tgi_chat_model(small_window_url, max_new_tokens=MAX_NEW_TOKENS)
    s2a = S2ARunnable(llm=llm, variant="separated", retry=NO_RETRY)  # one call over the whole context
    value: ContextQuestion = {"context": CONTEXT, "question": QUESTION}
    result = s2a.invoke(value)
    assert result.fallback is not None
    assert "HTTP 422" in result.fallback
    assert "window_tokens" in result.fallback  # the message says what to do
    assert result.context == CONTEXT
    question_kept(result, QUESTION)


@pytest.mark.parametrize("variant", ["extractive", "separated"])
def test_with_the_servers_window_the_context_is_filtered_in_parts(
    small_window_url: str, variant: VariantName, tmp_path: Path
) -> None:
    window = server_window(inference_client(small_window_url), MAX_NEW_TOKENS)
    assert window is not None
    assert window < 600
    llm = tgi_chat_model(small_window_url, max_new_tokens=MAX_NEW_TOKENS)
    s2a = S2ARunnable(llm=llm, variant=variant, window_tokens=window, retry=NO_RETRY)
    value: ContextQuestion = {"context": CONTEXT, "question": QUESTION}
    result = s2a.invoke(value)
    record("long contexts split into parts (real server)")
    assert result.parts >= 2
    assert "422" not in (result.fallback or "")  # no part was too long for the server
    question_kept(result, QUESTION)
    if variant == "extractive":  # verbatim: only sentences of the input, whatever the model said
        assert set(split_sentences(result.context)) <= set(FACTS)
