from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from s2a import S2ACallError, S2AConfig, S2AParseError
from s2a._faults import NO_RETRY
from s2a._steps import Reply, arun_plan, run_plan
from s2a._windows import approx_tokens
from s2a.selection import Window, finish_selection, plan_selection
from tests.fake_models import without_cost

DOCS = [
    "Paris is the capital of France. It has the Eiffel Tower.",
    "I think Lyon is the capital, honestly.",
    "Bananas are yellow.",
]
QUERY = "What is the capital of France?"


def test_one_call_numbers_every_document() -> None:
    plan = plan_selection(DOCS, QUERY)
    (window,) = plan.windows
    user = window.messages[1]["content"]
    assert "[1] Paris is the capital of France. It has the Eiffel Tower.\n[2] I think Lyon" in user
    assert f"Question: {QUERY}" in user
    assert window.json_schema is not None
    assert window.json_schema["properties"]["keep"]["items"]["maximum"] == 3
    selected = finish_selection(plan, ['{"keep": [1]}'])
    assert (selected.keep, selected.texts, selected.fallback, selected.calls) == ([0], {0: DOCS[0]}, None, 1)


def test_order_is_kept_and_repeats_and_out_of_range_numbers_are_ignored() -> None:
    selected = finish_selection(plan_selection(DOCS, QUERY), ['{"keep": [3, 1, 3, 7, 0]}'])
    assert selected.keep == [0, 2]


def test_sentence_granularity_rebuilds_each_document_from_its_own_sentences() -> None:
    plan = plan_selection(DOCS, QUERY, granularity="sentence")
    user = plan.windows[0].messages[1]["content"]
    assert (
        "Document 1:\n[1] Paris is the capital of France.\n[2] It has the Eiffel Tower.\nDocument 2:" in user
    )
    selected = finish_selection(plan, ['{"keep": [1, 4]}'])
    assert selected.keep == [0, 2]
    assert selected.texts == {0: "Paris is the capital of France.", 2: "Bananas are yellow."}


def test_empty_input_needs_no_call() -> None:
    plan = plan_selection([], QUERY)
    assert plan.windows == ()
    assert finish_selection(plan, []).keep == []
    assert plan_selection(["  ", ""], QUERY).windows == ()


def test_large_sets_are_split_into_windows_that_fit_and_merged() -> None:
    docs = [f"Fact number {i} is about topic {i}." for i in range(40)]
    plan = plan_selection(docs, QUERY, window_tokens=300)
    assert len(plan.windows) > 1
    shown = [doc for window in plan.windows for doc, _ in window.units]
    assert shown == list(range(40))  # every document once, in order
    for window in plan.windows:
        prompt = sum(approx_tokens(m["content"]) for m in window.messages)
        assert prompt + 4 * len(window.units) <= 300
    outputs = [json.dumps({"keep": [1]}) for _ in plan.windows]  # the first of each window
    selected = finish_selection(plan, outputs)
    assert selected.keep == [window.units[0][0] for window in plan.windows]
    assert selected.calls == len(plan.windows)


def test_an_unusable_window_keeps_its_documents_and_says_why() -> None:
    docs = [f"Fact number {i} is about topic {i}." for i in range(40)]
    plan = plan_selection(docs, QUERY, window_tokens=300)
    outputs = ['{"keep": []}'] * len(plan.windows)
    outputs[1] = "I cannot decide."
    selected = finish_selection(plan, outputs)
    assert selected.keep == [doc for doc, _ in plan.windows[1].units]
    assert (
        selected.fallback == f"the output contains no JSON object or list (window 2 of {len(plan.windows)})"
    )


def test_windows_run_the_same_line_as_a_text_a_failed_call_keeps_its_documents() -> None:
    """`run_plan` drives a selection as it drives a text step, sync and async alike."""
    docs = [f"Fact number {i} is about topic {i}." for i in range(40)]
    plan = plan_selection(docs, QUERY, window_tokens=300)
    failing = plan.windows[1]

    def call(window: Window) -> Reply:
        if window.units == failing.units:
            raise httpx.ConnectError("the server is gone")
        return Reply('{"keep": [1]}')

    async def acall(window: Window) -> Reply:
        return call(window)

    selected = run_plan(plan, call, NO_RETRY)
    together = asyncio.run(arun_plan(plan, acall, NO_RETRY))
    assert without_cost(together) == without_cost(selected)
    # every window is a call, the failed one too; one round together, one a window in turn
    assert together.cost is not None
    assert selected.cost is not None
    assert (together.cost.calls, together.cost.rounds) == (len(plan.windows), 1)
    assert (selected.cost.calls, selected.cost.rounds) == (len(plan.windows), len(plan.windows))
    firsts = [window.units[0][0] for window in plan.windows]
    assert selected.keep == sorted({*firsts, *(doc for doc, _ in failing.units)})
    assert selected.raw[1] is None
    assert selected.calls == len(plan.windows)
    assert selected.fallback is not None
    assert selected.fallback.startswith("the S2A call failed: ")
    assert "the server is gone" in selected.fallback
    assert selected.fallback.endswith(f"(window 2 of {len(plan.windows)})")
    with pytest.raises(S2ACallError, match="the server is gone"):
        run_plan(plan_selection(docs, QUERY, S2AConfig(fallback="raise"), window_tokens=300), call, NO_RETRY)


def test_raise_policy() -> None:
    plan = plan_selection(DOCS, QUERY, S2AConfig(fallback="raise"))
    with pytest.raises(S2AParseError) as info:
        finish_selection(plan, ["nope"])
    assert info.value.raw == "nope"


@pytest.mark.parametrize(
    ("texts", "query", "error", "match"),
    [
        (DOCS, "  ", ValueError, "query is empty"),
        (DOCS, 3, TypeError, "query must be a str"),
        (["ok", 5], QUERY, TypeError, "document 1 must be a str"),
    ],
)
def test_bad_input(texts: list[object], query: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        plan_selection(texts, query)  # type: ignore[arg-type]


def test_wrong_number_of_outputs() -> None:
    with pytest.raises(ValueError, match="expected 1 model outputs"):
        finish_selection(plan_selection(DOCS, QUERY), [])


@given(
    docs=st.lists(st.text(alphabet="ab. ?\n", max_size=40), max_size=6),
    keep=st.lists(st.integers(min_value=-2, max_value=30), max_size=10),
    sentences=st.booleans(),
)
def test_output_is_always_a_verbatim_subset(docs: list[str], keep: list[int], sentences: bool) -> None:
    plan = plan_selection(docs, QUERY, granularity="sentence" if sentences else "document")
    selected = finish_selection(plan, [json.dumps({"keep": keep}) for _ in plan.windows])
    assert selected.keep == sorted(set(selected.keep))
    for doc, text in selected.texts.items():
        # Kept sentences in their order; only the separators where a sentence was dropped are ours.
        source = iter("".join(docs[doc].split()))
        assert all(char in source for char in "".join(text.split()))
        assert all(word in docs[doc] for word in text.split())
