"""The load test of s2a.local.load, in process over the fake engine (no sockets).

64 concurrent clients against `max_concurrent_requests=8`: every request is answered, either a
200 that belongs to its request or a 429 in TGI's shape, none hangs, and nothing stays in flight.
tests/integration/test_load.py runs the same load test against the real server and model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from s2a.local.load_driver import drive, load_test
from s2a.local.load_protocol import LoadPlan, NotLoopbackError, Probe, Route, check, loopback_url
from s2a.local.server import ServerSettings, create_app
from tests.fake_engine import FakeEngine
from tests.ledger import record_load

CAPACITY = 8
SETTINGS = ServerSettings(
    model_id="fake/model", max_concurrent_requests=CAPACITY, max_input_tokens=32, max_total_tokens=48
)
ECHO = Probe(
    prompt="load {n}", answer=" echo load {n}", chat_message="load {n}", chat_answer=" echo user: load {n}"
)
"""The fake engine answers `echo` and the words of its prompt (the chat prompt is `user: <message>`)."""
PLAN = LoadPlan(
    clients=64,
    requests=4,
    routes=("generate", "generate_stream", "chat"),
    max_new_tokens=8,
    backoff=0.01,
    deadline=30.0,
)
BASE_URL = "http://127.0.0.1"


def prompt_words(route: Route, nonce: str) -> str:
    """What the fake engine records as the prompt it ran."""
    return f"user: load {nonce}" if route == "chat" else f"load {nonce}"


def in_process(
    engine: FakeEngine, plan: LoadPlan = PLAN
) -> tuple[FastAPI, Callable[[], httpx.ASGITransport]]:
    # The fake's vocabulary is a dict shared by the event loop (tokenize) and the worker thread
    # (generate): every word is registered first, so it never changes size while a generation reads it.
    for client in range(plan.clients):
        for index in range(plan.requests):
            engine.tokenize(f"echo <eos> {prompt_words('chat', plan.nonce(client, index))}")
    app = create_app(SETTINGS, lambda: engine)
    app.state.runtime.set_engine(engine)  # ASGITransport runs no lifespan, so nothing loads it

    def transport() -> httpx.ASGITransport:
        return httpx.ASGITransport(app=app)

    return app, transport


async def test_64_clients_get_their_own_answers_or_429_and_nothing_stays_in_flight() -> None:
    engine = FakeEngine(delay=0.002)
    app, transport = in_process(engine)
    try:
        async with asyncio.timeout(60):
            report = await load_test(BASE_URL, PLAN, ECHO, rounds=1, transport=transport)
    except TimeoutError:
        pytest.fail("the load test did not end within 60 s: some request hangs")
    (load,) = report.rounds
    record_load(load, "fake engine, in process")
    assert load.problems() == []  # none lost, every 200 its own request's, every 429 TGI's overloaded error
    assert len(load.results) == PLAN.total
    assert load.count("overloaded") >= 1, "64 clients against room for 8: some must be refused"
    assert load.count("ok") >= CAPACITY
    assert {result.route for result in load.results if result.kind == "ok"} == set(PLAN.routes)
    assert app.state.runtime.in_flight == 0
    assert (load.after.queued, load.after.running) == (0, 0)
    assert load.after.admitted - load.before.admitted == load.count("ok")
    assert load.after.overloaded - load.before.overloaded == load.count("overloaded")
    # Each admitted request ran once, on its own prompt; no refused request reached the engine.
    ran = engine.calls[1:-1]  # the first and the last are the requests alone before and after
    assert sorted(ran) == sorted(prompt_words(r.route, r.nonce) for r in load.results if r.kind == "ok")
    assert report.warm_up.kind == report.final.kind == "ok"


async def test_a_round_ends_at_its_deadline_and_counts_what_is_unanswered_as_lost() -> None:
    plan = LoadPlan(clients=2, requests=3, max_new_tokens=8, deadline=0.3)
    _, transport = in_process(FakeEngine(delay=0.5), plan)  # 4 tokens: 2 s per request
    async with asyncio.timeout(10):
        results = await drive(BASE_URL, plan, ECHO, transport)
    assert [r.kind for r in results] == ["lost", "lost"]  # each client gives up with its first request
    assert all("deadline" in (r.problem or "") for r in results)


def _generated(text: str) -> httpx.Response:
    tokens = [{"id": 1, "text": text, "logprob": -0.1, "special": False}]
    return httpx.Response(200, json={"generated_text": text, "details": {"tokens": tokens}})


def test_an_answer_to_another_request_is_a_mismatch() -> None:
    probe = Probe()
    assert check("generate", "101", _generated("101,x"), probe) is None
    assert "not that of its request" in (check("generate", "101", _generated("102,x"), probe) or "")
    chat = httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": "102"}}]})
    assert check("chat", "102", chat, probe) is None
    assert check("chat", "101", chat, probe) is not None
    spelled_otherwise = httpx.Response(
        200, json={"generated_text": "101", "details": {"tokens": [{"text": "1", "special": False}]}}
    )
    assert "tokens spell" in (check("generate", "101", spelled_otherwise, probe) or "")


def test_a_429_needs_tgis_overloaded_error() -> None:
    overloaded = {"error": "Model is overloaded", "error_type": "overloaded"}
    assert check("generate", "101", httpx.Response(429, json=overloaded), Probe()) is None
    event = httpx.Response(429, text='data:{"error":"Model is overloaded","error_type":"overloaded"}\n\n')
    assert check("generate_stream", "101", event, Probe()) is None
    for body in ({"error": "busy"}, {"error": "busy", "error_type": "validation"}):
        assert check("generate", "101", httpx.Response(429, json=body), Probe()) is not None
    assert check("generate", "101", httpx.Response(429, text="<html>busy</html>"), Probe()) is not None
    assert check("generate", "101", httpx.Response(500, text="boom"), Probe()) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080",
        "http://10.1.2.3:8080",
        "https://127.0.0.1:8080",
        "http://127.0.0.1.example.com:8080",
        "http://user:pw@127.0.0.1:8080",
    ],
)
def test_only_loopback_127_0_0_1_is_accepted(url: str) -> None:
    with pytest.raises(NotLoopbackError, match=r"only sends traffic to a server on this machine"):
        loopback_url(url)


def test_loopback_url_is_kept() -> None:
    assert loopback_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
