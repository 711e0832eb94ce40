"""What an S2A step cost, as the driver counts it: calls (retries too), rounds, tokens, cached tokens."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from llama_index.core.schema import NodeWithScore, TextNode

from langchain_s2a import ContextQuestion, S2ADocumentCompressor, S2ARunnable
from llamaindex_s2a import S2ANodePostprocessor, tgi_llm
from s2a import Decoding, RetryPolicy, S2AConfig, S2AInput, StepCost, TokenUsage
from s2a._client import run_s2a
from s2a._faults import NO_RETRY
from s2a._steps import Reply, arun_plan, run_plan
from s2a._windows import plan_step
from s2a.evaluation.cost_model import fit_cost_model
from s2a.evaluation.methods import Step
from s2a.selection import Window, plan_selection
from s2a.tgi import inference_client
from tests.fake_models import selection_ends
from tests.fake_tgi import FakeTGI, Fault

URL = "http://tgi.test:8080"
QUESTION = "How many apples does Mary have?"
CONTEXT = "Mary has 3 apples. She buys 2 more. Max has 1 dog. I think the answer is 4."
USAGE = TokenUsage(input_tokens=100, output_tokens=3, total_tokens=103, cached_tokens=40)
QUICK = RetryPolicy(attempts=3, backoff=0.0)


def test_the_cost_sums_what_every_reply_reported() -> None:
    docs = [f"Fact number {i} is about topic {i}." for i in range(40)]
    plan = plan_selection(docs, "topic 3", window_tokens=300)

    def call(window: Window) -> Reply:
        return Reply('{"keep": [1]}', USAGE)

    selected = run_plan(plan, call, NO_RETRY)
    n = len(plan.windows)
    assert n > 1
    assert selected.cost == StepCost(
        calls=n, rounds=n, prompt_tokens=100 * n, cached_tokens=40 * n, generated_tokens=3 * n
    )


def test_no_usage_reported_is_none_not_zero() -> None:
    plan = plan_step(S2AInput(context=CONTEXT, question=QUESTION), S2AConfig(variant="separated"))
    result = run_plan(
        plan, lambda _request: Reply(f"Context: Mary has 3 apples.\nQuestion: {QUESTION}"), NO_RETRY
    )
    assert result.cost == StepCost(calls=1, rounds=1)


def test_a_step_with_nothing_to_filter_costs_nothing() -> None:
    plan = plan_step(S2AInput(context="", question=QUESTION), S2AConfig(variant="scored"))
    result = run_plan(plan, lambda _request: pytest.fail("no call is needed"), NO_RETRY)
    assert result.cost == StepCost()


def test_retries_are_calls_and_a_failed_step_still_says_what_it_cost(fake_tgi: FakeTGI) -> None:
    fake_tgi.faults = [Fault("status", 503), Fault("status", 503)]
    fake_tgi.reply = lambda _body: f"Context: Mary has 3 apples.\nQuestion: {QUESTION}"
    inp, config = S2AInput(context=CONTEXT, question=QUESTION), S2AConfig(variant="separated")
    result = run_s2a(inference_client(URL), inp, config, Decoding(), QUICK)
    assert result.fallback is None
    assert result.cost == StepCost(
        calls=3, rounds=1, prompt_tokens=11, generated_tokens=7
    )  # 2 failed, 1 answered
    fake_tgi.faults = [Fault("status", 503)] * 3
    failed = run_s2a(inference_client(URL), inp, config, Decoding(), QUICK)
    assert failed.fallback is not None
    assert failed.cost == StepCost(calls=3, rounds=1)


def test_the_tgi_client_reads_the_servers_cached_tokens(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda _body: f"Context: Mary has 3 apples.\nQuestion: {QUESTION}"
    inp, config = S2AInput(context=CONTEXT, question=QUESTION), S2AConfig(variant="separated")
    assert run_s2a(inference_client(URL), inp, config, Decoding()).cost == StepCost(
        calls=1, rounds=1, prompt_tokens=11, generated_tokens=7
    )  # TGI says nothing of a cache
    fake_tgi.cached_tokens = 9
    cost = run_s2a(inference_client(URL), inp, config, Decoding()).cost
    assert cost is not None
    assert cost.cached_tokens == 9


def _usage_model(text: str, count: int) -> GenericFakeChatModel:
    usage = {
        "input_tokens": 50,
        "output_tokens": 5,
        "total_tokens": 55,
        "input_token_details": {"cache_read": 20},
    }
    return GenericFakeChatModel(messages=iter([AIMessage(text, usage_metadata=usage)] * count))


async def test_the_adapters_results_carry_the_cost_sync_and_async() -> None:
    text = f"Context: Mary has 3 apples. She buys 2 more.\nQuestion: {QUESTION}"
    value: ContextQuestion = {"context": CONTEXT, "question": QUESTION}
    expected = StepCost(calls=1, rounds=1, prompt_tokens=50, cached_tokens=20, generated_tokens=5)
    assert S2ARunnable(variant="separated", llm=_usage_model(text, 1)).invoke(value).cost == expected
    assert (await S2ARunnable(variant="separated", llm=_usage_model(text, 1)).ainvoke(value)).cost == expected
    compressor = S2ADocumentCompressor(llm=_usage_model('{"keep": [1]}', 2), mode="keep_list")
    docs = [Document("Mary has 3 apples."), Document("Max has 1 dog.")]
    assert compressor.select(docs, QUESTION).cost == expected
    assert (await compressor.aselect(docs, QUESTION)).cost == expected


def test_the_node_postprocessors_trace_carries_the_cost(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda _body: '{"keep": [1]}'
    fake_tgi.cached_tokens = 4
    nodes = [NodeWithScore(node=TextNode(text=t)) for t in ("Mary has 3 apples.", "Max has 1 dog.")]
    with selection_ends() as ends:
        S2ANodePostprocessor(llm=tgi_llm(URL), mode="keep_list").postprocess_nodes(nodes, query_str=QUESTION)
    (end,) = ends
    assert end.cost == StepCost(calls=1, rounds=1, prompt_tokens=11, cached_tokens=4, generated_tokens=7)


def test_async_sends_a_wave_together_in_one_round() -> None:
    docs = [f"Fact number {i} is about topic {i}." for i in range(40)]
    plan = plan_selection(docs, "topic 3", window_tokens=300)

    async def call(_window: Window) -> Reply:
        await asyncio.sleep(0)
        return Reply('{"keep": [1]}', USAGE)

    cost = asyncio.run(arun_plan(plan, call, NO_RETRY)).cost
    assert cost is not None
    assert (cost.calls, cost.rounds) == (len(plan.windows), 1)


def test_the_local_servers_usage_says_what_its_cache_gave() -> None:
    # The shape the local server sends (s2a/local/chat.py), read as huggingface_hub reads it.
    from huggingface_hub import ChatCompletionOutput  # noqa: PLC0415

    from s2a._types import _cached  # noqa: PLC0415

    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 1,
        "total_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 3},
    }
    output = ChatCompletionOutput.parse_obj(
        {
            "id": "x",
            "created": 1,
            "model": "m",
            "system_fingerprint": "s",
            "object": "chat.completion",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
            ],
            "usage": usage,
        }
    )
    assert isinstance(output, ChatCompletionOutput)
    assert _cached(output.usage) == 3
    assert _cached(object()) is None  # a usage with no such field


def test_the_cost_model_recovers_known_rates_and_leaves_cached_tokens_out() -> None:
    a, b, c = 0.004, 0.06, 0.3  # seconds per uncached prompt token, per generated token, per call

    def step(prompt: int, cached: int, generated: int, calls: int) -> Step:
        seconds = a * (prompt - cached) + b * generated + c * calls
        return Step(
            name="filter",
            seconds=seconds,
            calls=calls,
            input_tokens=prompt,
            output_tokens=generated,
            cached_tokens=cached,
        )

    steps = [step(400, 0, 1, 1), step(900, 300, 30, 1), step(1200, 0, 8, 4), step(300, 100, 120, 2)]
    fitted = fit_cost_model(steps)
    assert fitted is not None
    assert fitted.coefficients == pytest.approx((a, b, c), rel=1e-6)
    assert fitted.seconds(step(1000, 500, 10, 3)) == pytest.approx(a * 500 + b * 10 + c * 3)
    assert fitted.seconds(Step(name="filter", seconds=1.0, calls=1)) is None  # no tokens reported


def test_the_cost_model_never_fits_a_negative_rate() -> None:
    # Noise that makes the steps with more calls a little faster: unconstrained, the fit would
    # explain it with a negative per-call cost.
    rows = [(2.1, 1, 100, 1), (1.9, 6, 100, 1), (5.0, 1, 200, 10), (4.8, 6, 200, 10)]
    steps = [Step(name="filter", seconds=s, calls=n, input_tokens=p, output_tokens=g) for s, n, p, g in rows]
    unconstrained = np.linalg.lstsq(
        np.array([[p, g, n] for _, n, p, g in rows], dtype=float), np.array([s for s, *_ in rows]), rcond=None
    )[0]
    assert unconstrained[2] < 0  # the case is what it says
    fitted = fit_cost_model(steps)
    assert fitted is not None
    assert min(fitted.coefficients) >= 0
    assert fitted.per_call == 0


def test_the_cost_model_weighs_each_steps_error_relative_to_its_time() -> None:
    # 1 s and 10 s steps that no non-negative rates fit both. Fitted on absolute errors, the one
    # rate that fits (per prompt token) would be 0.196 s and predict the 1 s steps at 1.96 s;
    # on relative errors the 1 s steps are missed by less than half that.
    small = Step(name="filter", seconds=1.0, calls=1, input_tokens=10, output_tokens=0)
    large = Step(name="filter", seconds=10.0, calls=1, input_tokens=50, output_tokens=0)
    fitted = fit_cost_model([small] * 3 + [large] * 3)
    assert fitted is not None
    predicted = fitted.seconds(small)
    assert predicted is not None
    assert abs(predicted - 1.0) < 0.5


def test_no_cost_model_without_enough_steps_with_tokens() -> None:
    with_tokens = Step(name="filter", seconds=1.0, calls=1, input_tokens=10, output_tokens=1)
    assert fit_cost_model([with_tokens, with_tokens]) is None
    assert fit_cost_model([Step(name="filter", seconds=1.0, calls=1)] * 5) is None
