"""The scored variant: a keep-or-drop decision per sentence, P(keep) read from its token.

The reply reader is checked on its own (probabilities, other tokenisations, missing or doubled
decisions, no probabilities at all); the variant through the real client paths: S2ARunnable
over `tgi_chat_model` and `run_s2a`, both against the in-memory TGI, which answers with the
tokens' alternatives as TGI's chat route does. Per-sentence calls share their prompt up to
the last line, run concurrently, and a failed one keeps its sentence, flagged.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from llama_index.core.schema import NodeWithScore, TextNode

from langchain_s2a import S2ADocumentCompressor, S2ARunnable, tgi_chat_model
from llamaindex_s2a import S2ANodePostprocessor, tgi_llm
from s2a import NO_RETRY, Decoding, Fusion, S2AConfig, S2AInput, S2AParseError, finish, prepare
from s2a._client import run_s2a
from s2a._parsing import Unusable
from s2a._scores import decisions_regex, dropped, read_decision, read_decisions, read_opinion
from s2a._steps import Reply, arun_plan, run_plan
from s2a._types import TokenLogprob, token_logprobs
from s2a._windows import plan_step
from s2a.selection import finish_selection, plan_selection
from s2a.tgi import inference_client
from s2a.variants import DEFAULT_RELATIVE, DEFAULT_THRESHOLD
from tests.fake_models import decision_tokens, opinion_sentence, sentence_block
from tests.fake_tgi import FakeTGI
from tests.ledger import question_kept

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
URL = "http://tgi.test:8080"
PROMPT = (
    "Mary has 3 apples. Her brother likes pears. I think the answer is 4. How many apples does Mary have?"
)
QUESTION = "How many apples does Mary have?"
SCORED = S2AConfig(variant="scored", scored_calls="one", stance_rules=False)  # the model decides alone
EACH = S2AConfig(variant="scored", scored_calls="per_sentence", stance_rules=False)
RELEVANCE = EACH.model_copy(update={"focus": "relevance"})  # per-sentence keep-or-drop calls only


@cache
def records(name: str) -> tuple[dict[str, Any], ...]:
    lines = (SHARED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def tokens(text: str, p_keep: dict[int, float]) -> tuple[TokenLogprob, ...]:
    """The core's tokens for a decision reply, P(keep) of line n being `p_keep[n]`."""
    return token_logprobs(decision_tokens(text, lambda n, _: p_keep[n])) or ()


def opinion_tokens(text: str, p_opinion: float) -> tuple[TokenLogprob, ...]:
    """The core's tokens for an opinion test's one-word reply, P(yes) being `p_opinion`."""
    return token_logprobs(decision_tokens(text, lambda _n, _line: p_opinion, ("yes", "no"))) or ()


def shown_sentences(body: dict[str, Any]) -> list[str]:
    """The sentences a scored call numbered, without their numbers."""
    return [line.split("] ", 1)[1] for line in sentence_block(str(body["messages"][-1]["content"]))]


# The reply reader.


def test_the_grammar_is_one_numbered_decision_per_line() -> None:
    regex = decisions_regex(3)
    assert regex == "1 (keep|drop)\n2 (keep|drop)\n3 (keep|drop)"
    assert re.fullmatch(regex, "1 keep\n2 drop\n3 keep")
    assert not re.fullmatch(regex, "1 keep\n2 drop")


def test_p_keep_is_read_at_each_decision_token_and_normalised_over_the_two_words() -> None:
    text = "1 keep\n2 drop\n3 keep"
    scores = read_decisions(text, 3, tokens(text, {1: 0.9, 2: 0.2, 3: 0.55}))
    assert scores.source == "logprobs"
    assert [round(v, 6) for v in scores.values] == [0.9, 0.2, 0.55]


def test_other_mass_at_the_decision_token_does_not_count() -> None:
    top = (
        (" keep", math.log(0.3)),
        (" drop", math.log(0.1)),
        (" Keep", math.log(0.1)),
        (" maybe", math.log(0.5)),
    )
    reply = (TokenLogprob("1", 0.0), TokenLogprob(" keep", math.log(0.3), top))
    (value,) = read_decisions("1 keep", 1, reply).values
    assert value == pytest.approx(0.4 / 0.5)  # keep + Keep over keep + Keep + drop


def test_a_decision_split_over_two_tokens_is_read_at_its_first() -> None:
    top = ((" ke", math.log(0.6)), (" dr", math.log(0.2)))
    reply = (TokenLogprob("1", 0.0), TokenLogprob(" ke", math.log(0.6), top), TokenLogprob("ep", 0.0))
    assert read_decisions("1 keep", 1, reply).values == pytest.approx((0.75,))


def test_without_probabilities_the_written_decision_counts_and_says_so() -> None:
    scores = read_decisions("1 keep\n2 drop", 2)
    assert scores == ((1.0, 0.0), "text")
    other_text = tokens("1 drop\n2 drop", {1: 0.1, 2: 0.1})  # tokens of another reply
    assert read_decisions("1 keep\n2 drop", 2, other_text).source == "text"
    no_alternative = (TokenLogprob("1", 0.0), TokenLogprob(" keep", -0.1, ((" maybe", -0.1),)))
    assert read_decisions("1 keep", 1, no_alternative) == ((1.0,), "text")


def test_an_unconstrained_model_may_number_as_it_likes() -> None:
    assert read_decisions("```\n[1]: keep\n2. Drop\n3) KEEP\n```", 3).values == (1.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("1 keep\n3 drop", r"no keep-or-drop decision for sentence\(s\) \[2\]"),
        ("1 keep\n1 drop\n2 keep", "decides sentence 1 twice"),
        ("Mary has 3 apples.", r"\[1, 2\]"),
    ],
)
def test_a_reply_without_one_decision_per_sentence_is_unusable(reply: str, reason: str) -> None:
    with pytest.raises(Unusable, match=reason):
        read_decisions(reply, 2)


def test_an_opinion_test_reply_gives_p_yes_normalised_over_yes_and_no() -> None:
    read = read_opinion("no", opinion_tokens("no", 0.8))
    assert read.values == pytest.approx((0.8,))
    assert read.source == "logprobs"
    top = ((" yes", math.log(0.3)), (" no", math.log(0.1)), (" maybe", math.log(0.6)))
    assert read_opinion("yes", (TokenLogprob(" yes", math.log(0.3), top),)).values == pytest.approx((0.75,))
    assert read_opinion("Yes.") == ((1.0,), "text")
    with pytest.raises(Unusable, match="neither 'yes' nor 'no'"):
        read_opinion("keep")


def test_a_one_word_reply_is_read_the_same_way() -> None:
    assert read_decision("drop") == ((0.0,), "text")
    assert read_decision("keep", tokens("keep", {1: 0.7})).values == pytest.approx((0.7,))
    with pytest.raises(Unusable, match="neither 'keep' nor 'drop'"):
        read_decision("yes")


def test_a_one_word_reply_cut_at_its_first_token_is_read_at_that_token() -> None:
    top = (("ke", math.log(0.6)), ("dr", math.log(0.2)), ("x", math.log(0.2)))
    cut = (TokenLogprob("ke", math.log(0.6), top),)
    assert read_decision("ke", cut, cut=True).values == pytest.approx((0.75,))
    assert read_decision("ke", cut=True) == ((1.0,), "text")
    assert read_decision(" d", cut=True) == ((0.0,), "text")
    assert read_opinion("n", cut=True) == ((0.0,), "text")
    assert read_decision("keep", cut=True) == ((1.0,), "text")  # a whole word is read as ever
    for start in ("", "x", "yes"):  # no start of one of the words
        with pytest.raises(Unusable, match="neither 'keep' nor 'drop'"):
            read_decision(start, cut=True)
    with pytest.raises(Unusable):  # only a reply asked for one token may stop inside its word
        read_decision("ke")


# The variant.


def test_the_call_states_the_question_numbers_the_rest_and_asks_for_probabilities() -> None:
    request = prepare(S2AInput(context=PROMPT), SCORED)
    assert request.grammar == {"type": "regex", "value": decisions_regex(3)}
    assert request.top_logprobs == 5
    assert request.json_schema is None
    user = request.messages[-1]["content"]
    assert f"asks: {QUESTION}" in user
    assert sentence_block(user) == [
        "[1] Mary has 3 apples.",
        "[2] Her brother likes pears.",
        "[3] I think the answer is 4.",
    ]


@pytest.mark.parametrize(
    ("threshold", "kept"), [(0.0, [1, 2, 3, 4]), (0.5, [1, 2, 4]), (0.51, [1, 4]), (1.0, [4])]
)
def test_a_sentence_is_kept_when_p_keep_reaches_the_threshold(threshold: float, kept: list[int]) -> None:
    absolute = SCORED.model_copy(update={"threshold": threshold, "relative": None})
    request = prepare(S2AInput(context=PROMPT), absolute)
    text = "1 keep\n2 keep\n3 drop"
    result = finish(request, text, logprobs=tokens(text, {1: 0.9, 2: 0.5, 3: 0.1}))
    assert result.kept == kept
    assert result.scores == pytest.approx({1: 0.9, 2: 0.5, 3: 0.1})
    assert result.scores_from == "logprobs"
    question_kept(result, QUESTION)
    assert result.prompt.endswith(QUESTION)
    assert all(PROMPT.split(". ")[n - 1].rstrip(".?") in result.prompt for n in kept)


@pytest.mark.parametrize(
    ("scores", "gone"),
    [
        ({1: 0.30, 2: 0.35, 3: 0.32}, set()),  # all low together: nothing stands out, nothing goes
        ({1: 0.55, 2: 0.50, 3: 0.30}, {3}),  # under the threshold and under 0.6 x the best other
        ({1: 0.45, 2: 0.30}, set()),  # under the threshold, but 0.30 >= 0.6 x 0.45
        ({1: 0.39}, set()),  # alone: nothing to stand out from, kept
        ({1: 0.90, 2: 0.60, 3: 0.41}, set()),  # at or over the threshold: kept, however far from the best
    ],
)
def test_a_sentence_goes_when_it_is_low_and_low_against_the_others(
    scores: dict[int, float], gone: set[int]
) -> None:
    assert dropped(scores, threshold=0.4, relative=0.6) == gone
    assert dropped(scores, threshold=0.4, relative=None) == {n for n, p in scores.items() if p < 0.4}


def test_the_runnable_passes_both_thresholds_on() -> None:
    default = S2ARunnable(llm=GenericFakeChatModel(messages=iter([])))._plan(PROMPT).config
    assert (default.threshold, default.relative) == (DEFAULT_THRESHOLD, DEFAULT_RELATIVE)
    mine = S2ARunnable(llm=GenericFakeChatModel(messages=iter([])), threshold=0.3, relative=None)
    config = mine._plan(PROMPT).config
    assert (config.threshold, config.relative) == (0.3, None)


def test_the_probability_decides_not_the_written_word() -> None:
    request = prepare(S2AInput(context=PROMPT), SCORED)
    text = "1 keep\n2 keep\n3 keep"  # greedy under the grammar, but P(keep) of 2 and 3 is low
    result = finish(request, text, logprobs=tokens(text, {1: 0.8, 2: 0.3, 3: 0.05}))
    assert result.prompt == f"Mary has 3 apples. {QUESTION}"


def test_an_unusable_reply_keeps_the_input_flagged_or_raises() -> None:
    request = prepare(S2AInput(context=PROMPT), SCORED)
    result = finish(request, "1 keep")
    assert result.prompt == PROMPT
    assert "no keep-or-drop decision" in (result.fallback or "")
    with pytest.raises(S2AParseError):
        finish(prepare(S2AInput(context=PROMPT), SCORED.model_copy(update={"fallback": "raise"})), "1 keep")


@pytest.mark.parametrize("config", [SCORED, EACH], ids=["one", "per_sentence"])
def test_keeping_every_sentence_gives_every_clean_dev_prompt_back_byte_for_byte(config: S2AConfig) -> None:
    prompts = [r["original_question"] for r in records("gsm_ic")[:40]]
    prompts += [r["prompt"] for r in records("trivia_opinion") if r["opinion_type"] == "none"][:40]

    def keep_all(request: Any) -> Reply:
        if request.opinion:
            return Reply("no", logprobs=opinion_tokens("no", 0.1))
        count = max(1, len(request.shown)) if request.judged is None else 1
        text = "keep" if request.judged is not None else "\n".join(f"{n} keep" for n in range(1, count + 1))
        return Reply(text, logprobs=tokens(text, dict.fromkeys(range(1, count + 1), 0.9)))

    for prompt in prompts:
        result = run_plan(plan_step(S2AInput(context=prompt), config), keep_all, NO_RETRY)
        assert result.prompt == prompt
        assert result.fallback is None


# Through LangChain and huggingface_hub, against the in-memory TGI.


def scripted_tgi(p_keep: dict[str, float], p_opinion: dict[str, float] | None = None) -> FakeTGI:
    """A TGI whose model keeps (greedily) every sentence and calls none an opinion.

    P(keep) is `p_keep` by sentence text; P(opinion) is `p_opinion` by sentence text (0.1 for
    a sentence not in it).
    """

    def reply(body: dict[str, Any]) -> str:
        grammar = body.get("response_format") or {}
        if grammar.get("value") == "(yes|no)":
            return "no"
        if grammar.get("value") == "(keep|drop)":
            return "keep"
        return "\n".join(f"{n} keep" for n in range(1, len(shown_sentences(body)) + 1))

    def logprobs(body: dict[str, Any], text: str) -> list[dict[str, Any]]:
        if text == "no":
            sentence = opinion_sentence(str(body["messages"][-1]["content"]))
            p = (p_opinion or {}).get(sentence, 0.1)
            return decision_tokens(text, lambda _n, _line: p, ("yes", "no"))
        shown = shown_sentences(body)
        if text == "keep":  # per sentence: the one asked about is named on the last line
            number = int(re.findall(r"Sentence (\d+):", body["messages"][-1]["content"])[-1])
            return decision_tokens(text, lambda _n, _line: p_keep[shown[number - 1]])
        return decision_tokens(text, lambda n, _line: p_keep[shown[n - 1]])

    return FakeTGI(reply=reply, logprobs=logprobs)


P_KEEP = {"Mary has 3 apples.": 0.93, "Her brother likes pears.": 0.22, "I think the answer is 4.": 0.08}


@pytest.mark.parametrize("config", [SCORED, EACH], ids=["one", "per_sentence"])
def test_s2a_runnable_over_tgi_reads_p_keep_from_the_chat_route(fake_tgi: FakeTGI, config: S2AConfig) -> None:
    fake_tgi.reply, fake_tgi.logprobs = scripted_tgi(P_KEEP).reply, scripted_tgi(P_KEEP).logprobs
    s2a = S2ARunnable(
        llm=tgi_chat_model(URL), variant="scored", stance_rules=False, scored_calls=config.scored_calls
    )
    result = s2a.invoke(PROMPT)
    assert result.prompt == f"Mary has 3 apples. {QUESTION}"
    assert result.scores == pytest.approx({1: 0.93, 2: 0.22, 3: 0.08})
    assert result.scores_from == "logprobs"
    bodies = fake_tgi.bodies("/v1/chat/completions")
    assert all(b["logprobs"] is True and b["top_logprobs"] == 5 for b in bodies)
    assert all(b["response_format"]["type"] == "regex" for b in bodies)
    assert len(bodies) == (1 if config.scored_calls == "one" else 3) + 3  # and an opinion test each
    assert result.opinions == pytest.approx({1: 0.1, 2: 0.1, 3: 0.1})


def test_run_s2a_reads_p_keep_through_huggingface_hub(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply, fake_tgi.logprobs = scripted_tgi(P_KEEP).reply, scripted_tgi(P_KEEP).logprobs
    result = run_s2a(inference_client(URL), S2AInput(context=PROMPT), SCORED, Decoding())
    assert result.kept == [1, 4]
    assert result.scores == pytest.approx({1: 0.93, 2: 0.22, 3: 0.08})


def test_a_backend_without_probabilities_falls_back_to_the_written_decisions(fake_tgi: FakeTGI) -> None:
    opinion = {"type": "regex", "value": "(yes|no)"}
    fake_tgi.reply = lambda body: "no" if body["response_format"] == opinion else "1 keep\n2 drop\n3 drop"
    result = S2ARunnable(
        llm=tgi_chat_model(URL), variant="scored", stance_rules=False, scored_calls="one"
    ).invoke(PROMPT)
    assert result.scores == {1: 1.0, 2: 0.0, 3: 0.0}
    assert result.opinions == {1: 0.0, 2: 0.0, 3: 0.0}
    assert result.scores_from == "text"
    assert result.prompt == f"Mary has 3 apples. {QUESTION}"


def test_a_chat_model_that_reports_logprobs_is_read_whatever_its_class() -> None:
    text = "1 keep\n2 keep\n3 keep"
    metadata = {"logprobs": {"content": decision_tokens(text, lambda n, _: [0.9, 0.4, 0.1][n - 1])}}
    llm = GenericFakeChatModel(messages=iter([AIMessage(content=text, response_metadata=metadata)]))
    s2a = S2ARunnable(
        llm=llm, variant="scored", stance_rules=False, scored_calls="one", focus="relevance", threshold=0.35
    )
    result = s2a.invoke(PROMPT)
    assert result.kept == [1, 2, 4]
    assert result.scores_from == "logprobs"


def test_a_one_word_call_asks_for_one_token_and_a_reply_cut_there_is_complete(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply, fake_tgi.logprobs = scripted_tgi(P_KEEP).reply, scripted_tgi(P_KEEP).logprobs
    fake_tgi.finish_reason = "length"  # what TGI says of a reply that reached max_tokens
    runnable = S2ARunnable(
        llm=tgi_chat_model(URL, max_new_tokens=300), variant="scored", stance_rules=False
    ).invoke(PROMPT)
    core = run_s2a(inference_client(URL), S2AInput(context=PROMPT), EACH, Decoding(max_new_tokens=300))
    for result in (runnable, core):
        assert result.fallback is None
        assert result.prompt == f"Mary has 3 apples. {QUESTION}"
        assert result.scores == pytest.approx({1: 0.93, 2: 0.22, 3: 0.08})
    bodies = fake_tgi.bodies("/v1/chat/completions")
    assert len(bodies) == 12  # 3 keep-or-drop calls and 3 opinion tests, twice
    assert all(b["max_tokens"] == 1 for b in bodies)


def test_a_cut_reply_of_many_decisions_is_still_cut_off(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply, fake_tgi.logprobs = scripted_tgi(P_KEEP).reply, scripted_tgi(P_KEEP).logprobs
    fake_tgi.finish_reason = "length"
    result = run_s2a(inference_client(URL), S2AInput(context=PROMPT), SCORED, Decoding(max_new_tokens=300))
    assert result.prompt == PROMPT
    assert result.fallback is not None
    assert "cut off" in result.fallback
    bodies = fake_tgi.bodies("/v1/chat/completions")
    assert [b["max_tokens"] for b in bodies if b["response_format"]["value"] == decisions_regex(3)] == [300]


def test_an_unconstrained_one_word_call_keeps_the_models_budget(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda _body: "keep"
    S2ARunnable(
        llm=tgi_chat_model(URL, max_new_tokens=300), variant="scored", stance_rules=False, constrain=False
    ).invoke(PROMPT)
    bodies = fake_tgi.bodies("/v1/chat/completions")
    assert bodies
    assert all("response_format" not in b and b["max_tokens"] == 300 for b in bodies)


# Per-sentence calls.


def test_per_sentence_calls_share_their_prompt_up_to_the_last_line() -> None:
    plan = plan_step(S2AInput(context=PROMPT), RELEVANCE)
    users = [r.messages[-1]["content"] for r in plan.first]
    assert len(users) == 3
    assert plan.waves() == tuple((r,) for r in plan.first)  # one after another
    heads = {u.rsplit("\n", 1)[0] for u in users}
    assert len(heads) == 1
    assert [u.rsplit("\n", 1)[1].split(":")[0] for u in users] == ["Sentence 1", "Sentence 2", "Sentence 3"]
    assert all(r.grammar == {"type": "regex", "value": "(keep|drop)"} for r in plan.first)


def test_sync_per_sentence_calls_go_one_after_another_by_default() -> None:
    in_flight: list[int] = []
    most = 0
    lock = threading.Lock()

    def call(request: Any) -> Reply:
        nonlocal most
        with lock:
            in_flight.append(request.judged)
            most = max(most, len(in_flight))
        time.sleep(0.01)
        with lock:
            in_flight.remove(request.judged)
        return Reply("keep" if request.judged == 0 else "drop")

    result = run_plan(plan_step(S2AInput(context=PROMPT), RELEVANCE), call, NO_RETRY)
    assert most == 1
    assert result.prompt == f"Mary has 3 apples. {QUESTION}"


def test_sync_per_sentence_calls_after_the_first_go_together_when_asked() -> None:
    arrived = threading.Barrier(2, timeout=10)  # breaks unless calls 2 and 3 are in flight together
    done: list[int] = []

    def call(request: Any) -> Reply:
        if request.judged != 0:
            assert done == [0]  # the first came back before the others left
            arrived.wait()
        done.append(request.judged)
        return Reply("keep" if request.judged == 0 else "drop")

    config = RELEVANCE.model_copy(update={"scored_concurrency": 4})
    result = run_plan(plan_step(S2AInput(context=PROMPT), config), call, NO_RETRY)
    assert result.prompt == f"Mary has 3 apples. {QUESTION}"


def test_async_per_sentence_calls_follow_the_waves_and_a_failed_one_keeps_its_sentence() -> None:
    started: list[tuple[int, int]] = []
    finished = 0

    async def call(request: Any) -> Reply:
        nonlocal finished
        started.append((request.judged, finished))
        await asyncio.sleep(0.01)
        finished += 1
        if request.judged == 1:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return Reply("drop" if request.judged == 2 else "keep")

    plan = plan_step(S2AInput(context=PROMPT), RELEVANCE.model_copy(update={"scored_concurrency": 2}))
    result = asyncio.run(arun_plan(plan, call, NO_RETRY))
    assert started == [(0, 0), (1, 1), (2, 1)]  # the first alone, then the other two together
    assert result.kept == [1, 2, 4]
    assert result.prompt == f"Mary has 3 apples. Her brother likes pears. {QUESTION}"
    assert "sentence 2 (keep-or-drop call): the S2A call failed" in (result.fallback or "")


# The opinion test (`focus` objectivity or both).


OPINION = "I think the answer is 4."


def test_the_opinion_test_reads_each_sentence_alone_after_the_keep_or_drop_calls() -> None:
    plan = plan_step(S2AInput(context=PROMPT), EACH)
    keeps, opinions = plan.first[:3], plan.first[3:]
    assert [r.opinion for r in keeps] == [False] * 3
    sentences = ["Mary has 3 apples.", "Her brother likes pears.", OPINION]
    assert [r.messages[-1]["content"] for r in opinions] == [
        EACH.prompts.scored_opinion.format(sentence=s) for s in sentences
    ]
    assert all(QUESTION not in str(r.messages[-1]["content"]) for r in opinions)  # nothing beside it
    assert [(r.judged, r.grammar, r.top_logprobs) for r in opinions] == [
        (i, {"type": "regex", "value": "(yes|no)"}, 5) for i in range(3)
    ]
    assert plan.waves() == tuple((r,) for r in plan.first)  # one after another, keeps first


def test_what_the_user_quotes_is_not_tested_for_opinion() -> None:
    prompt = (
        "What do you make of it? I really like this argument.\n"
        '"I believe that bottled water should be banned. It is wasteful."'
    )
    request = prepare(S2AInput(context=prompt), EACH)
    tests = [r for r in plan_step(S2AInput(context=prompt), EACH).first if r.opinion]
    tested = [request.spans[r.judged] for r in tests if r.judged is not None]
    assert [prompt[s.start : s.end] for s in tested] == ["I really like this argument."]
    assert len(request.shown) == 2  # the quotation is still judged for relevance


def test_the_argument_a_request_points_to_is_part_of_the_request() -> None:
    prompt = (
        "Please comment briefly on the following argument. I really like this argument.\n"
        'Argument: "I believe that bottled water should be banned. It is wasteful."'
    )
    request = prepare(S2AInput(context=prompt), EACH)
    assert [prompt[request.spans[i].start : request.spans[i].end] for i in request.shown] == [
        "I really like this argument."
    ]


def test_only_quoted_sentences_to_test_for_opinion_makes_no_call() -> None:
    prompt = 'What do you make of it?\n"Bottled water should be banned."'
    plan = plan_step(S2AInput(context=prompt), EACH.model_copy(update={"focus": "objectivity"}))
    assert plan.first == ()

    def call(_request: Any) -> Reply:
        raise AssertionError("no call is needed")

    result = run_plan(plan, call, NO_RETRY)
    assert (result.prompt, result.fallback, result.kept) == (prompt, None, [1, 2])


@pytest.mark.parametrize(
    ("config", "calls"),
    [
        (EACH.model_copy(update={"focus": "relevance"}), ["keep"] * 3),
        (EACH.model_copy(update={"focus": "objectivity"}), ["opinion"] * 3),
        (EACH, ["keep"] * 3 + ["opinion"] * 3),
        (SCORED.model_copy(update={"focus": "relevance"}), ["all"]),
        (SCORED.model_copy(update={"focus": "objectivity"}), ["opinion"] * 3),
        (SCORED, ["all"] + ["opinion"] * 3),
    ],
    ids=["each-relevance", "each-objectivity", "each-both", "one-relevance", "one-objectivity", "one-both"],
)
def test_focus_decides_which_tests_run(config: S2AConfig, calls: list[str]) -> None:
    plan = plan_step(S2AInput(context=PROMPT), config)
    kinds = ["opinion" if r.opinion else "keep" if r.judged is not None else "all" for r in plan.first]
    assert kinds == calls


def test_an_opinion_goes_on_its_p_opinion_however_high_its_p_keep(fake_tgi: FakeTGI) -> None:
    tgi = scripted_tgi(
        dict.fromkeys(["Mary has 3 apples.", "Her brother likes pears.", OPINION], 0.9), {OPINION: 0.8}
    )
    fake_tgi.reply, fake_tgi.logprobs = tgi.reply, tgi.logprobs
    result = S2ARunnable(llm=tgi_chat_model(URL), variant="scored", stance_rules=False).invoke(PROMPT)
    assert result.prompt == f"Mary has 3 apples. Her brother likes pears. {QUESTION}"
    assert result.opinions == pytest.approx({1: 0.1, 2: 0.1, 3: 0.8})
    assert result.scores == pytest.approx({1: 0.9, 2: 0.9, 3: 0.9})
    kept = S2ARunnable(
        llm=tgi_chat_model(URL), variant="scored", stance_rules=False, opinion_threshold=0.85
    ).invoke(PROMPT)
    assert kept.prompt == PROMPT  # under the threshold: kept
    relevance = S2ARunnable(
        llm=tgi_chat_model(URL), variant="scored", stance_rules=False, focus="relevance"
    ).invoke(PROMPT)
    assert (relevance.prompt, relevance.opinions) == (PROMPT, None)


def test_a_lone_sentence_beside_the_question_is_kept_unless_it_is_an_opinion() -> None:
    def call(request: Any) -> Reply:
        if request.opinion:
            p = 0.9 if OPINION in str(request.messages[-1]["content"]) else 0.2
            return Reply("no", logprobs=opinion_tokens("no", p))
        return Reply("drop", logprobs=tokens("drop", {1: 0.05}))  # P(keep) as low as it goes

    fact = run_plan(plan_step(S2AInput(context=f"Mary has 3 apples. {QUESTION}"), EACH), call, NO_RETRY)
    assert fact.prompt == f"Mary has 3 apples. {QUESTION}"  # nothing to stand out from: kept
    guess = run_plan(plan_step(S2AInput(context=f"{QUESTION} {OPINION}"), EACH), call, NO_RETRY)
    assert guess.prompt == QUESTION
    alone = EACH.model_copy(update={"relative": None})  # the threshold alone decides
    assert (
        run_plan(plan_step(S2AInput(context=f"Mary has 3 apples. {QUESTION}"), alone), call, NO_RETRY).prompt
        == QUESTION
    )


def test_a_failed_opinion_test_keeps_its_sentence_flagged() -> None:
    def call(request: Any) -> Reply:
        if request.opinion and request.judged == 2:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        if request.opinion:
            return Reply("no", logprobs=opinion_tokens("no", 0.1))
        return Reply("keep", logprobs=tokens("keep", {1: 0.9}))

    result = run_plan(plan_step(S2AInput(context=PROMPT), EACH), call, NO_RETRY)
    assert result.prompt == PROMPT
    assert result.opinions == pytest.approx({1: 0.1, 2: 0.1})
    assert "sentence 3 (opinion test): the S2A call failed" in (result.fallback or "")


def test_every_call_failing_keeps_the_input_flagged() -> None:
    def call(_request: Any) -> Reply:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    result = run_plan(plan_step(S2AInput(context=PROMPT), EACH), call, NO_RETRY)
    assert (result.prompt, result.scores, result.opinions) == (PROMPT, None, None)
    assert "every S2A call failed" in (result.fallback or "")


def test_a_long_context_split_into_parts_keeps_whole_context_numbers() -> None:
    sentences = [f"Fact number {i} is here." for i in range(1, 13)]
    prompt = " ".join([*sentences, QUESTION])
    p = {s: (0.1 if i % 3 == 0 else 0.9) for i, s in enumerate(sentences, start=1)}
    tgi = scripted_tgi(p)

    def call(request: Any) -> Reply:
        body = {"messages": list(request.messages), "response_format": request.grammar}
        text = tgi.reply(body)
        content = tgi.logprobs(body, text) if tgi.logprobs else []
        return Reply(text, logprobs=token_logprobs(content))

    plan = plan_step(S2AInput(context=prompt), SCORED, window_tokens=330)
    assert plan.split
    result = run_plan(plan, call, NO_RETRY)
    assert result.parts == len(plan.parts)
    assert sorted(result.scores or {}) == list(range(1, 13))
    assert result.kept == [i for i in range(1, 14) if i % 3 != 0]


# The RAG adapters' scored mode (their default).

DOCS = {
    "fact": "Paris is the capital of France.",
    "off": "The Paris Hilton hotel opened in 1960.",
    "op": "I am sure the capital of France is Lyon.",
    "also": "France's government sits in Paris.",
}
P_DOC = {"fact": 0.8, "off": 0.15, "op": 0.05, "also": 0.55}
CAPITAL = "What is the capital of France?"


def document_tgi() -> tuple[Any, Any]:
    """Reply and logprobs of a TGI whose model greedily keeps every document, P(keep) as in P_DOC."""

    def items(body: dict[str, Any]) -> list[str]:
        text = str(body["messages"][-1]["content"])
        return [line.split("] ", 1)[1] for line in text.split("\n") if re.match(r"\[\d+\] ", line)]

    def reply(body: dict[str, Any]) -> str:
        return "\n".join(f"{n} keep" for n in range(1, len(items(body)) + 1))

    def logprobs(body: dict[str, Any], text: str) -> list[dict[str, Any]]:
        by_text = {t: P_DOC[k] for k, t in DOCS.items()}
        shown = items(body)
        return decision_tokens(text, lambda n, _line: by_text[shown[n - 1]])

    return reply, logprobs


def test_the_compressor_filters_and_reranks_by_p_keep_over_tgi(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply, fake_tgi.logprobs = document_tgi()
    docs = [Document(text, id=key, metadata={"source": key}) for key, text in DOCS.items()]
    kept = S2ADocumentCompressor(llm=tgi_chat_model(URL)).compress_documents(docs, CAPITAL)
    assert [d.id for d in kept] == ["fact", "also"]  # best first; off and op under the threshold
    assert [d.metadata["relevance_score"] for d in kept] == pytest.approx([0.8, 0.55])
    assert kept[0].metadata["source"] == "fact"
    (body,) = fake_tgi.bodies("/v1/chat/completions")
    assert body["response_format"] == {"type": "regex", "value": decisions_regex(4)}
    assert (body["logprobs"], body["top_logprobs"]) == (True, 5)
    top_one = S2ADocumentCompressor(llm=tgi_chat_model(URL), top_k=1).compress_documents(docs, CAPITAL)
    assert [d.id for d in top_one] == ["fact"]


def test_the_postprocessor_gives_each_node_its_p_keep_as_score_over_tgi(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply, fake_tgi.logprobs = document_tgi()
    nodes = [NodeWithScore(node=TextNode(text=text, id_=key), score=1.0) for key, text in DOCS.items()]
    kept = S2ANodePostprocessor(llm=tgi_llm(URL)).postprocess_nodes(nodes, query_str=CAPITAL)
    assert [(n.node.node_id, round(n.score or 0, 6)) for n in kept] == [("fact", 0.8), ("also", 0.55)]
    low = S2ANodePostprocessor(llm=tgi_llm(URL), threshold=0.1).postprocess_nodes(nodes, query_str=CAPITAL)
    assert [n.node.node_id for n in low] == ["fact", "also", "off"]
    (body, *_) = fake_tgi.bodies("/v1/chat/completions")
    assert body["response_format"]["type"] == "regex"
    assert body["logprobs"] is True


def test_a_selection_without_probabilities_uses_the_written_decisions() -> None:
    plan = plan_selection(list(DOCS.values()), CAPITAL, mode="scored")
    selected = finish_selection(plan, ["1 keep\n2 drop\n3 drop\n4 keep"])
    assert (selected.keep, selected.scores_from) == ([0, 3], "text")
    unusable = finish_selection(plan, ["1 keep"])
    assert unusable.keep == [0, 1, 2, 3]
    assert "no keep-or-drop decision" in (unusable.fallback or "")


def test_both_adapters_keep_a_document_whose_title_the_query_names(fake_tgi: FakeTGI) -> None:
    # "off" scores under the threshold, but its metadata title is named in the question: with
    # the default fusion both adapters keep it (ranked by its own P(keep)), without it neither.
    fake_tgi.reply, fake_tgi.logprobs = document_tgi()
    titles = {"fact": "Paris", "off": "France", "op": "Lyon", "also": "Government of France"}
    docs = [Document(text, id=key, metadata={"title": titles[key]}) for key, text in DOCS.items()]
    nodes = [
        NodeWithScore(node=TextNode(text=text, id_=key, metadata={"title": titles[key]}))
        for key, text in DOCS.items()
    ]
    compressor = S2ADocumentCompressor(llm=tgi_chat_model(URL))
    postprocessor = S2ANodePostprocessor(llm=tgi_llm(URL))
    assert [d.id for d in compressor.compress_documents(docs, CAPITAL)] == ["fact", "also", "off"]
    kept = postprocessor.postprocess_nodes(nodes, query_str=CAPITAL)
    assert [(n.node.node_id, round(n.score or 0, 6)) for n in kept] == [
        ("fact", 0.8),
        ("also", 0.55),
        ("off", 0.15),
    ]
    plain = compressor.model_copy(update={"fusion": None}).compress_documents(docs, CAPITAL)
    assert [d.id for d in plain] == ["fact", "also"]
    untitled = Fusion(title_key="source")  # a key these documents do not have
    kept = postprocessor.model_copy(update={"fusion": untitled}).postprocess_nodes(nodes, query_str=CAPITAL)
    assert [n.node.node_id for n in kept] == ["fact", "also"]
