"""s2a._fusion and `plan_selection(fusion=...)`: which documents a scored selection keeps, by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s2a import Fusion, S2AConfig
from s2a._fusion import bm25_order, fused_keep, fused_order, named
from s2a._steps import Reply
from s2a._types import token_logprobs
from s2a.selection import DEFAULT_FUSION, finish_selection, plan_selection

QUERY = "Which river flows through the city where Ada Lovelace was born?"
TITLES = ["Ada Lovelace", "London", "River Thames", "Paris", "Seine", "Charles Babbage"]
TEXTS = [
    "Ada Lovelace: Ada Lovelace was an English mathematician, born in London in 1815.",
    "London: London is the capital of England. The River Thames flows through London.",
    "River Thames: The Thames is a river in southern England.",
    "Paris: Paris is the capital of France, on the Seine.",
    "Seine: The Seine is a river in northern France.",
    "Charles Babbage: Charles Babbage designed the Analytical Engine.",
]


def keep(
    p_keep: dict[int, float], fusion: Fusion = DEFAULT_FUSION, threshold: float | None = 0.4
) -> set[int]:
    return fused_keep(
        p_keep,
        threshold,
        texts=TEXTS,
        query=QUERY,
        titles=TITLES if fusion.title_key else [None] * len(TITLES),  # as the adapters read them
        lexical=bm25_order(TEXTS, QUERY),
        fusion=fusion,
    )


def test_a_title_the_question_names_is_kept_whatever_its_rank() -> None:
    p_keep = {0: 0.15, 1: 0.3, 2: 0.3, 3: 0.3, 4: 0.3, 5: 0.3}
    assert 0 in keep(p_keep, Fusion(share=0.2, hop=0))


def test_a_bridge_named_by_a_kept_document_is_kept_when_it_is_near_the_share() -> None:
    # "London" is named by the kept Ada Lovelace paragraph, not by the question.
    p_keep = {0: 0.5, 1: 0.2, 2: 0.25, 3: 0.3, 4: 0.3, 5: 0.3}
    with_bridge = keep(p_keep, Fusion(share=0.2, hop=5))
    assert 1 in with_bridge
    assert 1 not in keep(p_keep, Fusion(share=0.2, hop=0, title_key="title"))


def test_the_floor_vetoes_rank_title_and_bridge() -> None:
    p_keep = {0: 0.05, 1: 0.05, 2: 0.3, 3: 0.3, 4: 0.3, 5: 0.3}
    kept = keep(p_keep, Fusion(share=0.5, hop=5, floor=0.1))
    assert not kept & {0, 1}
    assert {0, 1} <= keep(p_keep, Fusion(share=0.5, hop=5, floor=0.0))


def test_documents_at_the_threshold_are_always_kept_and_count_towards_the_share() -> None:
    p_keep = {0: 0.1, 1: 0.9, 2: 0.1, 3: 0.8, 4: 0.1, 5: 0.1}
    kept = keep(p_keep, Fusion(share=1 / 3, hop=0, title_key=None))
    assert kept == {1, 3}


def test_equal_p_keep_leaves_the_order_to_bm25() -> None:
    flat = dict.fromkeys(range(len(TEXTS)), 0.5)
    assert fused_order(flat, bm25_order(TEXTS, QUERY)) == bm25_order(TEXTS, QUERY)


@given(st.lists(st.floats(0.0, 1.0), min_size=len(TEXTS), max_size=len(TEXTS)))
def test_the_share_is_kept_at_least_and_never_more_than_share_titles_and_reach(ps: list[float]) -> None:
    p_keep = dict(enumerate(ps))
    fusion = Fusion(share=0.4, hop=2, floor=0.0)
    kept = keep(p_keep, fusion, threshold=None)
    assert len(kept) >= 3  # ceil(0.4 * 6)
    named_in_query = {i for i, t in enumerate(TITLES) if named(t, QUERY)}
    assert len(kept) <= 3 + len(named_in_query) + 2


def test_named_matches_whole_phrases_without_a_qualifier() -> None:
    assert named("Psych (TV series)", "the cast of psych, season 2")
    assert not named("Psych (TV series)", "psychology")
    assert not named("It", "it was it")  # too short to look for
    assert not named(None, "anything")


@pytest.mark.parametrize(
    ("fusion", "message"),
    [
        ({"share": 0.0}, "share"),
        ({"share": 1.5}, "share"),
        ({"hop": -1}, "hop"),
        ({"floor": 2.0}, "floor"),
    ],
)
def test_bad_settings_name_the_setting(fusion: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fusion(**fusion)  # type: ignore[arg-type]


def test_plan_selection_with_fusion_keeps_the_fused_set_with_p_keep_as_score() -> None:
    plan = plan_selection(
        TEXTS, QUERY, S2AConfig(threshold=0.4), mode="scored", fusion=DEFAULT_FUSION, titles=TITLES
    )
    reply = "\n".join(f"{n} drop" for n in range(1, len(TEXTS) + 1))
    selected = finish_selection(plan, [reply])  # text decisions: every P(keep) 0.0
    # Nothing reaches the floor, so nothing is kept by rank, title or bridge.
    assert selected.keep == []
    reply = "\n".join(f"{n} keep" for n in range(1, len(TEXTS) + 1))
    selected = finish_selection(plan, [reply])
    assert selected.keep == list(range(len(TEXTS)))  # every one at the threshold
    assert selected.scores == dict.fromkeys(range(len(TEXTS)), 1.0)


def test_plan_selection_refuses_fusion_where_it_cannot_apply() -> None:
    with pytest.raises(ValueError, match="fusion"):
        plan_selection(TEXTS, QUERY, mode="keep_list", fusion=DEFAULT_FUSION)
    with pytest.raises(ValueError, match="fusion"):
        plan_selection(TEXTS, QUERY, mode="scored", granularity="sentence", fusion=DEFAULT_FUSION)
    with pytest.raises(ValueError, match="titles"):
        plan_selection(TEXTS, QUERY, mode="scored", fusion=DEFAULT_FUSION, titles=["one"])


def test_top_k_keeps_the_best_by_fused_rank_and_the_scores_stay_p_keep() -> None:
    plan = plan_selection(
        TEXTS, QUERY, S2AConfig(threshold=0.4), mode="scored", fusion=DEFAULT_FUSION, titles=TITLES, top_k=2
    )
    ps = [0.35, 0.3, 0.2, 0.15, 0.15, 0.3]
    lines = "\n".join(f"{n} keep" for n in range(1, len(TEXTS) + 1))
    logprobs = [  # `keep` at each decision token with P(keep) = ps[n]
        {"token": token, "logprob": lp, "top_logprobs": alts}
        for n, p in enumerate(ps)
        for token, lp, alts in (
            *([("\n", 0.0, [{"token": "\n", "logprob": 0.0}])] if n else []),
            (str(n + 1), 0.0, [{"token": str(n + 1), "logprob": 0.0}]),
            (
                " keep",
                math.log(p),
                [{"token": " keep", "logprob": math.log(p)}, {"token": " drop", "logprob": math.log(1 - p)}],
            ),
        )
    ]
    selected = finish_selection(plan, [Reply(lines, logprobs=token_logprobs(logprobs))])
    order = fused_order(dict(enumerate(ps)), plan.lexical)
    assert selected.keep == sorted(order[:2])
    assert selected.scores == pytest.approx(dict(enumerate(ps)))
