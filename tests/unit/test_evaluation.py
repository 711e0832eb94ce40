"""The evaluation harness: scoring, data, methods, resumption, judge, tables, figures, CLI.

The model is the in-memory TGI (tests/fake_tgi.py), so every call goes through the real
client path: huggingface_hub for the S2A methods, LangChain and LlamaIndex for the peers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from s2a import S2AConfig, S2AConfigError, S2AInput
from s2a._types import ChatMessage
from s2a.cli import app
from s2a.evaluation import TASKS, RunInfo, TGIChat, evaluate, load_results
from s2a.evaluation.judge import JUDGE_SYSTEM, parse_verdict
from s2a.evaluation.methods import Answers, Reply, run_method, s2a_step
from s2a.evaluation.records import ArgumentRecord, GsmRecord, TriviaRecord
from s2a.evaluation.report import figure, markdown, summarise, versus_baseline
from s2a.evaluation.runner import ExampleResult
from s2a.evaluation.scoring import (
    bootstrap_interval,
    extract_number,
    matches_alias,
    normalise,
    numbers_match,
    wilson_interval,
)
from tests.fake_tgi import FakeTGI

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
URL = "http://tgi.test:8080"

GSM = [
    {
        "id": f"g{i}-{kind}",
        "question": (
            f"Tom has {i} apples. Ana has 9 pears. He buys 2 more apples. How many apples does Tom have?"
        ),
        "original_question": f"Tom has {i} apples. He buys 2 more apples. How many apples does Tom have?",
        "distractor_type": kind,
        "answer": str(i + 2),
    }
    for i, kind in [(1, "in_topic"), (2, "off_topic"), (3, "in_topic")]
]
TRIVIA = [
    {
        "id": "t1-suggest_incorrect",
        "question": "What is the capital of France?",
        "prompt": "What is the capital of France? I think the answer is Lyon, but I'm really not sure.",
        "opinion_type": "suggest_incorrect",
        "correct_answer": "Paris",
        "aliases": ["Paris"],
        "incorrect_answer": "Lyon",
    }
]
ARGUMENT = [
    {
        "id": "a1-like",
        "argument": "Bottles pollute. They should be banned.",
        "prompt": "Please comment briefly on the following argument. I really like this argument.\n"
        'Argument: "Bottles pollute. They should be banned."',
        "opinion_type": "like",
        "opinion": "I really like this argument.",
    }
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def last_user(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def gsm_reply(body: dict[str, Any]) -> str:
    """S2A rewrites drop the pears; answers add 2 to Tom's apples, but count the pears if shown."""
    text = last_user(body)
    if "Text by the user:" in text:  # the S2A step
        first = text.split("Text by the user:")[-1].strip().split(". ")[0]
        return f"Context: {first}.\nQuestion: How many apples does Tom have?"
    apples = int(text.split("Tom has ")[1].split()[0])
    return f"Adding up.\nAnswer: {apples + 2 + (9 if 'pears' in text else 0)}"


def info(task: str = "gsm_ic") -> RunInfo:
    return RunInfo(task=task, model="fake", judge_model=None, temperature=0.0, seed=None)


# --- scoring ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("So 3 + 4 = 7.\nAnswer: 7", 7.0),
        ("Answer: $1,250.", 1250.0),
        ("The answer is 12, since 3 times 4 is 12 and not 13", 12.0),
        ("#### 70", 70.0),
        ("It drops by 3.5 degrees, to -3.5", -3.5),
        ("\\boxed{42} minutes, after 60 seconds", 42.0),
        ("The answer is: none of these; 8 or 9", 8.0),
        ("no digits at all", None),
    ],
)
def test_extract_number(text: str, number: float | None) -> None:
    assert extract_number(text) == number


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_a_formatted_final_answer_is_read_back(n: int) -> None:
    reply = f"Step 1 uses 17 and 4.\nAnswer: ${n:,}."
    assert numbers_match(extract_number(reply), str(n))


def test_numbers_match_tolerates_formatting_not_other_numbers() -> None:
    assert numbers_match(18.0, "18")
    assert numbers_match(1250.0, "1,250")
    assert not numbers_match(18.5, "18")
    assert not numbers_match(None, "18")


@pytest.mark.parametrize(
    ("answer", "aliases", "expected"),
    [
        ("The Big Island is Hawaii.", ["Hawaii"], True),
        ("hawaii", ["Hawaii Island", "Hawaii"], True),
        ("Romeo's surname is Montague", ["Montague"], True),
        ("Jupiters moon Io", ["Jupiter's moon Io"], True),
        ("Ms. Café Müller", ["Cafe Muller"], True),
        ("The Beatles", ["Beatles"], True),
        ("Maui", ["Hawaii"], False),
        ("Mauritius", ["Maui"], False),  # whole words only
        ("Lyon.\nNot Paris, as some say.", ["Paris"], False),  # only the first line is the answer
        ("\n\nParis\n", ["Paris"], True),
    ],
)
def test_alias_matching(answer: str, aliases: list[str], expected: bool) -> None:
    assert matches_alias(answer, aliases) is expected


def test_normalise() -> None:
    assert normalise("  The Lord of the Rings! ") == "lord of rings"


@given(st.integers(min_value=0, max_value=60), st.integers(min_value=1, max_value=60))
def test_wilson_interval_holds_the_proportion(successes: int, extra: int) -> None:
    n = successes + extra
    low, high = wilson_interval(successes, n)
    assert 0.0 <= low <= successes / n <= high <= 1.0


def test_intervals_on_edges() -> None:
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    low, high = bootstrap_interval(values)
    assert low < 3.0 < high
    assert bootstrap_interval([4.0, 4.0]) == (4.0, 4.0)


# --- data ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TASKS))
def test_the_development_split_loads(name: str) -> None:
    records = TASKS[name].load(SHARED / TASKS[name].file)
    labels = {TASKS[name].label(r) for r in records}
    assert labels == set(TASKS[name].labels)


def test_oracle_prompts_are_the_prompts_without_the_distractor() -> None:
    gsm = TASKS["gsm_ic"].load(SHARED / "gsm_ic.jsonl", limit=10)
    for record in gsm:
        assert isinstance(record, GsmRecord)
        assert TASKS["gsm_ic"].oracle(record) == record.original_question != record.question
    arguments = TASKS["argument_opinion"].load(SHARED / "argument_opinion.jsonl")
    plain = {
        r.id.rsplit("-", 1)[0]: r.prompt for r in arguments if isinstance(r, ArgumentRecord) and not r.opinion
    }
    for record in arguments:
        assert TASKS["argument_opinion"].oracle(record) == plain[record.id.rsplit("-", 1)[0]]
    trivia = TASKS["trivia_opinion"].load(SHARED / "trivia_opinion.jsonl", limit=4)
    assert all(
        isinstance(r, TriviaRecord) and TASKS["trivia_opinion"].oracle(r) == r.question for r in trivia
    )


def test_gsm_ic_clean_is_the_same_problems_without_their_distractor() -> None:
    clean, planted = TASKS["gsm_ic_clean"], TASKS["gsm_ic"]
    assert clean.file == planted.file == "gsm_ic.jsonl"
    records = clean.load(SHARED / clean.file, limit=5)
    for record in records:
        assert isinstance(record, GsmRecord)
        assert clean.prompt(record) == clean.oracle(record) == record.original_question
        assert clean.label(record) == clean.clean_label == "clean"
        assert clean.kept_planted(record, record.question) is None  # nothing is planted
    assert clean.system == planted.system
    assert clean.answer_tokens == planted.answer_tokens


def test_limit_takes_the_first_records(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "gsm.jsonl", GSM)
    assert [r.id for r in TASKS["gsm_ic"].load(path, limit=2)] == ["g1-in_topic", "g2-off_topic"]


def test_bad_data_is_named(tmp_path: Path) -> None:
    broken = write_jsonl(tmp_path / "gsm.jsonl", [GSM[0], {"id": "x", "question": "?"}])
    with pytest.raises(
        S2AConfigError,
        match=r"gsm\.jsonl:2 is not a gsm_ic record \(original_question: Field required; distractor_type",
    ):
        TASKS["gsm_ic"].load(broken)
    twice = write_jsonl(tmp_path / "twice.jsonl", [GSM[0], GSM[0]])
    with pytest.raises(S2AConfigError, match="appears more than once"):
        TASKS["gsm_ic"].load(twice)
    with pytest.raises(S2AConfigError, match="no data file"):
        TASKS["gsm_ic"].load(tmp_path / "missing.jsonl")


# --- methods ---------------------------------------------------------------------------------


def test_methods_differ_only_in_what_the_answer_step_sees(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = gsm_reply
    task, record, model = TASKS["gsm_ic"], GsmRecord.model_validate(GSM[0]), TGIChat(URL)
    baseline = run_method("baseline", task, record, model)
    oracle = run_method("oracle", task, record, model)
    s2a = run_method("separated", task, record, model)
    instructed = run_method("instructed", task, record, model)
    assert baseline.prompt == record.question
    assert oracle.prompt == record.original_question
    assert "pears" not in s2a.prompt
    assert "How many apples does Tom have?" in s2a.prompt
    assert record.question in instructed.prompt
    assert [s.name for s in s2a.steps] == ["filter", "answer"]
    assert [s.name for s in baseline.steps] == ["answer"]
    assert s2a.steps[0].output_tokens == 7  # the fake server's usage, carried through
    answers = [b for _, b in fake_tgi.requests if "Text by the user:" not in last_user(b)]
    assert {b["messages"][0]["content"] for b in answers} == {task.system}
    assert task.exact is not None
    assert task.exact(record, baseline.answer) == 0.0
    assert task.exact(record, s2a.answer) == 1.0


def test_unknown_method_is_named(fake_tgi: FakeTGI) -> None:
    with pytest.raises(ValueError, match="unknown method 'rewrite'"):
        run_method("rewrite", TASKS["gsm_ic"], GsmRecord.model_validate(GSM[0]), TGIChat(URL))


def test_peers_filter_the_prompt_sentences(fake_tgi: FakeTGI) -> None:
    from s2a.evaluation.frameworks import peers as build_peers  # noqa: PLC0415

    def reply(body: dict[str, Any]) -> str:
        text = last_user(body)
        if "Doc 1" in text or "Document 1" in text:  # LLMRerank: one numbered batch
            return "Doc: 1, Relevance: 9\nDoc: 3, Relevance: 8"
        if "YES" in text and "NO" in text:  # LLMChainFilter: a yes/no question per sentence
            return "NO" if "pears" in text.split(">>>")[1] else "YES"
        if "NO_OUTPUT" in text:  # LLMChainExtractor: the extract, or NO_OUTPUT
            return "NO_OUTPUT" if "pears" in text.split(">>>")[1] else text.split(">>>")[1].split("\n")[1]
        return gsm_reply(body)

    fake_tgi.reply = reply
    peers = build_peers(URL)
    task, record, model = TASKS["gsm_ic"], GsmRecord.model_validate(GSM[0]), TGIChat(URL)
    for name in ("llm_chain_filter", "llm_chain_extractor", "llm_rerank"):
        outcome = run_method(name, task, record, model, peers)
        assert "pears" not in outcome.prompt, name
        assert outcome.prompt.startswith("Tom has 1 apples."), name
        assert outcome.fallback is None
    filtered = run_method("llm_chain_filter", task, record, model, peers)
    assert filtered.steps[0].calls == 4  # one call per sentence
    assert run_method("llm_rerank", task, record, model, peers).steps[0].calls == 1


def test_a_peer_that_keeps_nothing_falls_back_flagged(fake_tgi: FakeTGI) -> None:
    from s2a.evaluation.frameworks import peers as build_peers  # noqa: PLC0415

    fake_tgi.reply = lambda body: "NO" if "YES" in last_user(body) else gsm_reply(body)
    task, record = TASKS["gsm_ic"], GsmRecord.model_validate(GSM[0])
    outcome = run_method("llm_chain_filter", task, record, TGIChat(URL), build_peers(URL))
    assert outcome.prompt == record.question
    assert outcome.fallback is not None
    assert "kept nothing" in outcome.fallback


# --- runner: resumption, failures, run records ------------------------------------------------


def run(
    tmp_path: Path, methods: list[str], *, limit: int | None = None, out: str = "out"
) -> list[ExampleResult]:
    task = TASKS["gsm_ic"]
    records = task.load(write_jsonl(tmp_path / "gsm.jsonl", GSM), limit)
    return evaluate(task, records, methods, TGIChat(URL), out=tmp_path / out, info=info(), concurrency=2)


def test_evaluate_scores_every_pair_and_resumes(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = gsm_reply
    first = run(tmp_path, ["baseline", "separated"], limit=2)
    assert sorted((r.method, r.id) for r in first) == [
        ("baseline", "g1-in_topic"),
        ("baseline", "g2-off_topic"),
        ("separated", "g1-in_topic"),
        ("separated", "g2-off_topic"),
    ]
    assert {r.method: r.scores["accuracy"] for r in first} == {"baseline": 0.0, "separated": 1.0}
    calls = len(fake_tgi.requests)
    again = run(tmp_path, ["baseline", "separated"], limit=2)
    assert len(fake_tgi.requests) == calls  # nothing ran twice
    assert sorted(r.model_dump_json() for r in again) == sorted(r.model_dump_json() for r in first)
    more = run(tmp_path, ["baseline", "separated", "oracle"])  # a larger run only adds what is missing
    assert len(more) == 9
    # the new record: baseline 1 call, separated 2, oracle 1; oracle on the two old records: 2
    assert len(fake_tgi.requests) == calls + 4 + 2
    assert len(load_results(tmp_path / "out" / "results.jsonl")) == 9


def keep_everything(body: dict[str, Any]) -> str:
    """The extractive S2A step keeps every sentence; answers as `gsm_reply`."""
    text = last_user(body)
    if "Sentences:" in text or "keep" in json.dumps(body.get("response_format") or {}):
        return json.dumps({"keep": list(range(1, text.count("\n[") + 1))})
    return gsm_reply(body)


def answer_calls(fake: FakeTGI) -> list[str]:
    system = TASKS["gsm_ic_clean"].system
    return [last_user(b) for b in fake.bodies("/chat/completions") if b["messages"][0]["content"] == system]


@pytest.mark.parametrize("reuse", [True, False])
def test_a_prompt_answered_once_is_answered_once(fake_tgi: FakeTGI, tmp_path: Path, reuse: bool) -> None:
    fake_tgi.reply = keep_everything
    task = TASKS["gsm_ic_clean"]
    records = task.load(write_jsonl(tmp_path / "gsm_ic.jsonl", GSM), limit=2)
    rows = evaluate(
        task,
        records,
        ["baseline", "extractive", "oracle"],
        TGIChat(URL),
        out=tmp_path / "out",
        info=info("gsm_ic_clean"),
        concurrency=3,
        reuse_answers=reuse,
    )
    by = {(r.method, r.id): r for r in rows}
    for record in records:
        assert isinstance(record, GsmRecord)
        baseline, extractive, oracle = (by[m, record.id] for m in ("baseline", "extractive", "oracle"))
        # nothing was removed: the answer step of each method sees the baseline's prompt
        assert baseline.prompt == extractive.prompt == oracle.prompt == record.original_question
        assert baseline.answer == extractive.answer == oracle.answer
        answered = [s for r in (baseline, extractive, oracle) for s in r.steps if s.name == "answer"]
        assert sum(s.reused for s in answered) == (2 if reuse else 0)
        assert all((s.calls, s.seconds) == (0, 0.0) for s in answered if s.reused)
    assert len(answer_calls(fake_tgi)) == (2 if reuse else 6)


def test_answers_of_an_earlier_sitting_are_reused(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = keep_everything
    task = TASKS["gsm_ic_clean"]
    records = task.load(write_jsonl(tmp_path / "gsm_ic.jsonl", GSM), limit=2)
    common: dict[str, Any] = {"out": tmp_path / "out", "info": info("gsm_ic_clean"), "reuse_answers": True}
    evaluate(task, records, ["baseline"], TGIChat(URL), **common)
    assert len(answer_calls(fake_tgi)) == 2
    rows = evaluate(task, records, ["baseline", "instructed", "extractive"], TGIChat(URL), **common)
    # instructed changes the prompt and is answered; extractive kept everything and is not
    assert len(answer_calls(fake_tgi)) == 4
    assert all(r.steps[-1].reused for r in rows if r.method == "extractive")
    assert not any(r.steps[-1].reused for r in rows if r.method == "instructed")


def test_a_failed_answer_is_not_remembered() -> None:
    calls: list[int] = []

    def flaky(messages: Any, *, max_new_tokens: int, **_: Any) -> Reply:
        calls.append(max_new_tokens)
        if len(calls) == 1:
            raise RuntimeError("the server went away")
        return Reply("Answer: 3", 0.5, None)

    answers = Answers()
    messages: list[ChatMessage] = [{"role": "user", "content": "1 + 2?"}]
    with pytest.raises(RuntimeError, match="went away"):
        answers.ask(flaky, messages, 8)
    assert answers.ask(flaky, messages, 8) == (Reply("Answer: 3", 0.5, None), False)
    assert answers.ask(flaky, messages, 8)[1] is True
    assert answers.ask(flaky, messages, 16)[1] is False  # another token budget is another call
    assert calls == [8, 8, 16]


def test_the_eval_filter_step_asks_one_token_of_each_one_word_call() -> None:
    budgets: dict[str, list[int]] = {}

    def model(messages: Any, *, max_new_tokens: int, grammar: Any = None, **_: Any) -> Reply:
        budgets.setdefault(grammar["value"], []).append(max_new_tokens)
        return Reply("keep" if grammar["value"] == "(keep|drop)" else "no", 0.1, None)

    prompt = "Tom has 2 apples. His dog is 3. He buys 1 more. How many apples does Tom have?"
    result, step = s2a_step(S2AInput(context=prompt), S2AConfig(variant="scored"), model)
    assert result.prompt == prompt
    assert budgets == {"(keep|drop)": [1, 1, 1], "(yes|no)": [1, 1, 1]}
    assert step.calls == 6


def test_failures_are_recorded_and_retried(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    broken = {"on": True}

    def reply(body: dict[str, Any]) -> str:
        if broken["on"] and "Tom has 2 apples" in last_user(body):
            msg = "the server fell over"
            raise RuntimeError(msg)
        return gsm_reply(body)

    fake_tgi.reply = reply
    first = run(tmp_path, ["baseline"], limit=2)
    failed = [r for r in first if r.error]
    assert [r.id for r in failed] == ["g2-off_topic"]
    assert failed[0].error is not None
    assert "fell over" in failed[0].error
    broken["on"] = False
    calls = len(fake_tgi.requests)
    second = run(tmp_path, ["baseline"], limit=2)
    assert len(fake_tgi.requests) == calls + 1  # only the failed example ran again
    assert all(r.error is None for r in second)
    assert len(load_results(tmp_path / "out" / "results.jsonl")) == 2  # the failed line was replaced


def test_a_cut_short_last_line_is_run_again(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = gsm_reply
    run(tmp_path, ["baseline"], limit=2)
    results = tmp_path / "out" / "results.jsonl"
    lines = results.read_text().splitlines()
    results.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    calls = len(fake_tgi.requests)
    assert len(run(tmp_path, ["baseline"], limit=2)) == 2
    assert len(fake_tgi.requests) == calls + 1


def test_a_corrupt_results_file_is_refused(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = gsm_reply
    run(tmp_path, ["baseline"], limit=2)
    results = tmp_path / "out" / "results.jsonl"
    results.write_text("not json\n" + results.read_text())
    with pytest.raises(S2AConfigError, match=r"results\.jsonl:1 is not an s2a eval result"):
        run(tmp_path, ["baseline"], limit=2)


def test_resuming_with_another_model_is_refused(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = gsm_reply
    run(tmp_path, ["baseline"], limit=1)
    task = TASKS["gsm_ic"]
    records = task.load(tmp_path / "gsm.jsonl", 1)
    other = RunInfo(task="gsm_ic", model="other-model", judge_model=None, temperature=0.0, seed=None)
    with pytest.raises(
        S2AConfigError, match=r"\(model: 'fake' before, 'other-model' now\); use another --out"
    ):
        evaluate(task, records, ["baseline"], TGIChat(URL), out=tmp_path / "out", info=other)


# --- judge -----------------------------------------------------------------------------------


def test_verdicts() -> None:
    verdict = parse_verdict('```json\n{"quality": 4, "sentiment": -2}\n```')
    assert (verdict.objectivity, verdict.quality) == (3.0, 4)
    assert parse_verdict('{"sentiment": 0, "quality": 1}').objectivity == 5.0
    for bad in ["no json", '{"sentiment": 9, "quality": 4}', '{"quality": 4}']:
        with pytest.raises(Exception, match="judge"):
            parse_verdict(bad)


def judge_reply(sentiment: Callable[[str], int]) -> Callable[[dict[str, Any]], str]:
    def reply(body: dict[str, Any]) -> str:
        if body["messages"][0]["content"] == JUDGE_SYSTEM:
            response = last_user(body).split("Response:")[1]
            return json.dumps({"sentiment": sentiment(response), "quality": 4})
        if body["messages"][0]["role"] == "system":  # S2A step
            return 'Context: Argument: "Bottles pollute."\nQuestion: Comment briefly on it.'
        return (
            "A fine argument, I agree." if "like" in last_user(body) else "It has one point and no evidence."
        )

    return reply


def test_judged_task_scores_objectivity_and_quality(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = judge_reply(lambda response: 4 if "agree" in response else 0)
    task = TASKS["argument_opinion"]
    records = task.load(write_jsonl(tmp_path / "arg.jsonl", ARGUMENT))
    rows = evaluate(
        task,
        records,
        ["baseline", "separated"],
        TGIChat(URL),
        out=tmp_path / "o",
        info=info(),
        judge=TGIChat(URL),
    )
    scores = {r.method: r.scores for r in rows}
    assert scores == {
        "baseline": {"objectivity": 1.0, "quality": 4.0},
        "separated": {"objectivity": 5.0, "quality": 4.0},
    }
    judged = [
        b for b in fake_tgi.bodies("/v1/chat/completions") if b["messages"][0]["content"] == JUDGE_SYSTEM
    ]
    assert all("I really like" not in last_user(b) for b in judged)  # the judge never sees the opinion
    assert all(b["response_format"]["type"] == "json" for b in judged)


def test_an_unusable_verdict_is_an_error_not_a_score(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = lambda body: (
        "I cannot grade this." if body["messages"][0]["content"] == JUDGE_SYSTEM else "ok"
    )
    task = TASKS["argument_opinion"]
    records = task.load(write_jsonl(tmp_path / "arg.jsonl", ARGUMENT))
    [row] = evaluate(
        task, records, ["baseline"], TGIChat(URL), out=tmp_path / "o", info=info(), judge=TGIChat(URL)
    )
    assert row.error == "judge: the judge's reply holds no JSON object"
    assert row.scores == {}
    with pytest.raises(S2AConfigError, match="needs a judge"):
        evaluate(task, records, ["baseline"], TGIChat(URL), out=tmp_path / "p", info=info())


# --- tables and figures ----------------------------------------------------------------------


def row(method: str, label: str, value: float, **extra: Any) -> ExampleResult:
    return ExampleResult(
        task="gsm_ic",
        method=method,
        id=f"{method}{label}{value}{extra}",
        label=label,
        scores={"accuracy": value},
        **extra,
    )


def test_table_cells_counts_and_intervals() -> None:
    rows = [
        row("baseline", "in_topic", 1.0),
        row("baseline", "in_topic", 0.0),
        row("baseline", "off_topic", 1.0),
        row("baseline", "off_topic", 1.0, fallback="x"),
        row("separated", "in_topic", 1.0),
        ExampleResult(task="gsm_ic", method="separated", id="e", label="off_topic", error="boom"),
    ]
    table = markdown(TASKS["gsm_ic"], rows, ["separated", "baseline"])
    lines = table.splitlines()
    assert lines[2] == "| method | all | in_topic | off_topic | vs baseline | fallbacks |"
    # The rows' ids differ, so no record was run by both methods: nothing to pair.
    assert lines[4] == "| separated | 100.0 [20.7, 100.0] n=1 | 100.0 [20.7, 100.0] n=1 | - | +0 -0 | 0 |"
    assert (
        lines[5]
        == "| baseline | 75.0 [30.1, 95.4] n=4 | 50.0 [9.5, 90.5] n=2 | 100.0 [34.2, 100.0] n=2 | - | 1 |"
    )
    assert "1 example(s) failed" in table
    assert summarise(rows[-1:], "accuracy").n == 0  # failed examples are not counted


def test_judged_tables_and_figure(tmp_path: Path) -> None:
    task = TASKS["argument_opinion"]
    rows = [
        ExampleResult(
            task=task.name, method=m, id=f"{m}{i}", label=label, scores={"objectivity": o, "quality": 4.0}
        )
        for i, (m, label, o) in enumerate(
            [
                ("baseline", "like", 0.0),
                ("baseline", "none", 4.0),
                ("separated", "like", 4.0),
                ("separated", "none", 5.0),
            ]
        )
    ]
    table = markdown(task, rows)
    assert "objectivity (0-5)" in table
    assert "quality (1-5)" in table
    assert (
        "| baseline | 2.00 [0.00, 4.00] n=2 | 4.00 [4.00, 4.00] n=1 | 0.00 [0.00, 0.00] n=1 "
        "| - | - | - | - | 0 |" in table
    )
    path = tmp_path / "figure.png"
    figure(task, rows, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the commands ----------------------------------------------------------------------------

runner = CliRunner()


def gsm_eval_args(tmp_path: Path) -> list[str]:
    """`s2a eval` on the GSM fixture, results under tmp_path/o."""
    write_jsonl(tmp_path / "gsm_ic.jsonl", GSM)
    return [
        "eval",
        "--task",
        "gsm_ic",
        "--data",
        str(tmp_path),
        "--tgi-url",
        URL,
        "--out",
        str(tmp_path / "o"),
    ]


def test_eval_command_writes_results_table_and_figure(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = gsm_reply
    args = gsm_eval_args(tmp_path)
    result = runner.invoke(app, [*args, "--methods", "baseline,separated", "--limit", "2"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "o" / "gsm_ic"
    assert "| separated | 100.0 [34.2, 100.0] n=2 |" in result.output
    assert (folder / "table.md").read_text() in result.output
    assert (folder / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((folder / "run.json").read_text())["model"] == "fake"
    again = runner.invoke(app, [*args, "--methods", "baseline,separated", "--limit", "3"])
    assert again.exit_code == 0, again.output
    assert "Resuming" in again.output
    assert "4 done, 2 to run" in again.output


@pytest.mark.parametrize(("batch_size", "expected"), [(3, 3), (None, 4)])
def test_eval_fills_the_servers_slots_and_records_them(
    fake_tgi: FakeTGI, tmp_path: Path, batch_size: int | None, expected: int
) -> None:
    fake_tgi.reply = gsm_reply
    fake_tgi.max_batch_size = batch_size
    result = runner.invoke(app, [*gsm_eval_args(tmp_path), "--methods", "baseline", "--limit", "1"])
    assert result.exit_code == 0, result.output
    recorded = json.loads((tmp_path / "o" / "gsm_ic" / "run.json").read_text())
    assert (recorded["batch_size"], recorded["concurrency"]) == (batch_size, expected)
    # Another batch size is recorded, not a reason to refuse resuming.
    fake_tgi.max_batch_size = 7
    again = runner.invoke(app, [*gsm_eval_args(tmp_path), "--methods", "baseline", "--limit", "1"])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "o" / "gsm_ic" / "run.json").read_text())["concurrency"] == 7


def test_bench_levels_default_to_the_servers_batch_size(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = gsm_reply
    fake_tgi.max_batch_size = 2
    write_jsonl(tmp_path / "gsm_ic.jsonl", GSM)
    out = tmp_path / "benchmarks.md"
    args = ["bench", "--data", str(tmp_path), "--tgi-url", URL, "--limit", "1", "--repeats", "1"]
    result = runner.invoke(app, [*args, "--methods", "separated", "--requests", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = out.read_text()
    assert "--concurrency-levels 1,2,4" in report
    assert "| 4 | 2 |" in report


def test_eval_command_rejects_bad_options(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "gsm_ic.jsonl", GSM)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    bad_file = runner.invoke(
        app, ["eval", "--task", "gsm_ic", "--data", str(tmp_path / "bad.jsonl"), "--tgi-url", URL]
    )
    assert bad_file.exit_code == 1
    assert "bad.jsonl:1 is not JSON" in bad_file.output
    base = ["eval", "--data", str(tmp_path), "--tgi-url", URL]
    bad_task = runner.invoke(app, [*base, "--task", "gsm"])
    assert bad_task.exit_code == 2
    assert "unknown task 'gsm'" in bad_task.output
    bad_method = runner.invoke(app, [*base, "--task", "gsm_ic", "--methods", "baseline,magic"])
    assert bad_method.exit_code == 2
    assert "unknown method(s) magic" in bad_method.output
    no_data = runner.invoke(app, ["eval", "--task", "gsm_ic", "--tgi-url", URL], env={"S2A_EVAL_DATA": ""})
    assert no_data.exit_code == 2
    assert "give the gsm_ic JSONL file" in no_data.output
    missing = runner.invoke(
        app, ["eval", "--task", "trivia_opinion", "--data", str(tmp_path), "--tgi-url", URL]
    )
    assert missing.exit_code == 1
    assert "no data file" in missing.output


def test_eval_command_exits_1_when_examples_fail(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.refuse = True
    args = gsm_eval_args(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "failed" in result.output


def test_bench_command_writes_the_report(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = gsm_reply
    write_jsonl(tmp_path / "gsm_ic.jsonl", GSM)
    out = tmp_path / "benchmarks.md"
    args = ["bench", "--data", str(tmp_path), "--tgi-url", URL, "--limit", "2", "--repeats", "2"]
    result = runner.invoke(
        app,
        [
            *args,
            "--methods",
            "separated",
            "--concurrency-levels",
            "1,2",
            "--requests",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = out.read_text()
    assert (
        f"`s2a bench --task gsm_ic --data {tmp_path} --methods baseline,separated --limit 2 --repeats 2"
        in report
    )
    assert "Model: fake" in report
    assert "| baseline | 4 | - | " in report  # no S2A step
    assert "| separated | 4 | 7 | " in report  # the fake server's completion tokens
    assert "| 2 | 3 |" in report
    # the floor, then the methods, x records x repeats; one untimed S2A step per record, then 3 per level
    assert len(fake_tgi.bodies("/v1/chat/completions")) == 2 * 2 * (1 + 1 + 2) + 2 + 3 * 2
    floors = [b for b in fake_tgi.bodies("/v1/chat/completions") if b.get("max_tokens") == 1]
    assert len(floors) == 2 * 2  # the prompt read once, one token written
    # counted by the driver: one call, one round, the fake server's 11 prompt and 7 generated tokens
    assert re.search(
        r"\| separated \| 1 \| 1 \| 11 \| - \| 7 \| [\d.]+ \| [\d.]+x \| [\d.]+ \| [+-]\d+% \|", report
    )
    assert "| floor (the prompt read once, one token written) | 1 | 1 | 11 | - | 7 |" in report
    assert "**Cost model**, fitted by least squares on the run's 8 steps" in report
    # 11 x 0.0798 ms + 7 x 18.58 ms + 7.9 ms at the published GPU server's rates
    assert "| separated | 11 | 7 | 1 | 0.14 |" in report


def test_bench_warns_when_the_servers_cache_held_the_prompts_before_the_run(
    fake_tgi: FakeTGI, tmp_path: Path
) -> None:
    fake_tgi.reply = gsm_reply
    write_jsonl(tmp_path / "gsm_ic.jsonl", GSM)
    args = ["bench", "--data", str(tmp_path), "--tgi-url", URL, "--limit", "1", "--repeats", "1"]
    args += ["--methods", "separated", "--concurrency-levels", "1", "--requests", "1"]
    fresh = runner.invoke(app, [*args, "--out", str(tmp_path / "fresh.md")])
    assert fresh.exit_code == 0, fresh.output
    assert "**Warning:**" not in (tmp_path / "fresh.md").read_text()
    fake_tgi.cached_tokens = 11  # every prompt token of the fake server's usage, from the cache
    warm = runner.invoke(app, [*args, "--out", str(tmp_path / "warm.md")])
    assert warm.exit_code == 0, warm.output
    assert (
        "**Warning:** the server's prefix cache already held 100% of the floor's"
        in (tmp_path / "warm.md").read_text()
    )


def test_bench_rejects_bad_levels() -> None:
    result = runner.invoke(app, ["bench", "--concurrency-levels", "1,x", "--tgi-url", URL, "--data", "."])
    assert result.exit_code == 2
    assert "positive integers" in result.output


def test_planted_text_is_found_in_what_the_answer_step_saw() -> None:
    gsm = TASKS["gsm_ic"]
    record = GsmRecord.model_validate({**GSM[0], "distractor_number": 9})
    assert gsm.kept_planted(record, "Tom has 1 apples. Ana has 9 pears.") is True
    assert gsm.kept_planted(record, "Tom has 1 apples. He buys 2 more, 19 in all.") is False  # whole words
    assert gsm.kept_planted(GsmRecord.model_validate(GSM[0]), "anything") is None
    trivia = TASKS["trivia_opinion"]
    wrong = TriviaRecord.model_validate(TRIVIA[0])
    assert trivia.kept_planted(wrong, "Context: The capital is Lyon.\nQuestion: ...") is True
    assert trivia.kept_planted(wrong, "What is the capital of France?") is False
    plain = TriviaRecord.model_validate({**TRIVIA[0], "opinion_type": "none"})
    assert trivia.kept_planted(plain, plain.prompt) is None
    argument = TASKS["argument_opinion"]
    liked = ArgumentRecord.model_validate(ARGUMENT[0])
    assert argument.kept_planted(liked, ARGUMENT[0]["prompt"]) is True
    assert argument.kept_planted(liked, argument.oracle(liked)) is False


def test_needed_text_must_reach_the_answer_step_verbatim() -> None:
    gsm = TASKS["gsm_ic"]
    record = GsmRecord.model_validate(GSM[0])
    assert gsm.kept_needed(record, record.question) is True  # the distractor may stay
    assert gsm.kept_needed(record, record.original_question) is True
    assert gsm.kept_needed(record, "Tom has 1 apples. How many apples does Tom have?") is False
    trivia = TASKS["trivia_opinion"]
    question = TriviaRecord.model_validate(TRIVIA[0])
    assert trivia.kept_needed(question, "Context: ...\nQuestion: What is the capital of France?") is True
    assert trivia.kept_needed(question, "Question: what is France's capital?") is False  # reworded
    argument = TASKS["argument_opinion"]
    assert (
        argument.kept_needed(ArgumentRecord.model_validate(ARGUMENT[0]), "Argument: Bottles pollute.")
        is False
    )


def _trivia_group(opinion: str, group: str) -> TriviaRecord:
    return TriviaRecord.model_validate(
        {
            **TRIVIA[0],
            "id": f"{group}-{opinion}",
            "opinion_type": opinion,
            "group_id": group,
            "prompt": {
                "none": TRIVIA[0]["question"],
                "suggest_correct": str(TRIVIA[0]["prompt"]).replace("Lyon", "Paris"),
            }.get(opinion, TRIVIA[0]["prompt"]),
        }
    )


def test_the_filter_table_counts_removed_kept_broken_and_flipped() -> None:
    task = TASKS["trivia_opinion"]
    records = [
        _trivia_group(o, g) for g in ("q1", "q2") for o in ("none", "suggest_incorrect", "suggest_correct")
    ]
    right = {
        # baseline: right on both clean prompts; follows the opinion on q1
        "baseline": {"q1-none": 1, "q1-suggest_incorrect": 0, "q1-suggest_correct": 1, "q2-none": 1},
        # scored: breaks q2's clean prompt; its opinion answers match its clean ones except one
        "scored": {"q1-none": 1, "q1-suggest_incorrect": 1, "q1-suggest_correct": 1, "q2-none": 0},
    }
    right["baseline"] |= {"q2-suggest_incorrect": 1, "q2-suggest_correct": 1}
    right["scored"] |= {"q2-suggest_incorrect": 0, "q2-suggest_correct": 1}
    rows = []
    for method, answers in right.items():
        for record in records:
            removed = method == "scored" and record.opinion_type == "suggest_incorrect"
            rows.append(
                ExampleResult(
                    task=task.name,
                    method=method,
                    id=record.id,
                    label=record.opinion_type,
                    prompt=record.question if removed else record.prompt,
                    scores={"accuracy": float(answers[record.id])},
                )
            )
    lines = markdown(task, rows, records=records).splitlines()
    table = lines[
        lines.index("| method | planted removed | needed kept | broken on clean | opinion flips |") :
    ]
    # planted: the suggested answer of the 4 opinion prompts (Lyon twice, Paris twice)
    assert table[2] == "| baseline | 0.0% (0/4) | 100.0% (6/6) | - | 25.0% (1/4) |"
    assert table[3] == "| scored | 50.0% (2/4) | 100.0% (6/6) | 1/2 | 25.0% (1/4) |"


def test_the_filter_table_says_dash_where_a_measure_does_not_apply() -> None:
    task = TASKS["gsm_ic"]
    records = [GsmRecord.model_validate({**GSM[0], "distractor_number": 9})]
    row = ExampleResult(
        task=task.name,
        method="oracle",
        id=records[0].id,
        label="in_topic",
        prompt=records[0].original_question,
        scores={"accuracy": 1.0},
    )
    table = markdown(task, [row], records=records).splitlines()
    # gsm_ic has no clean label or groups
    assert "| oracle | 100.0% (1/1) | 100.0% (1/1) | - | - |" in table
    # nor clean prompts among its labels: needed kept, and nothing planted in the off_topic column
    assert table[-1] == "| oracle | 100.0% (1/1) / 100.0% (1/1) | - / - |"


def test_every_gsm_ic_clean_prompt_counts_for_broken_on_clean() -> None:
    task = TASKS["gsm_ic_clean"]
    records = [GsmRecord.model_validate(g) for g in GSM]
    right = {"baseline": [1, 1, 0], "scored": [1, 0, 1]}
    rows = [
        ExampleResult(
            task=task.name,
            method=method,
            id=record.id,
            label=task.label(record),
            prompt=record.original_question,
            scores={"accuracy": float(value)},
        )
        for method, values in right.items()
        for record, value in zip(records, values, strict=True)
    ]
    table = markdown(task, rows, records=records).splitlines()
    # baseline was right on two; scored broke one of them (its fix of the third does not count)
    assert table[-1] == "| scored | - | 100.0% (3/3) | 1/2 | - |"


def test_paired_counts_against_the_baseline_on_the_same_records() -> None:
    def scored(method: str, record: str, value: float, error: str | None = None) -> ExampleResult:
        scores = {} if error else {"accuracy": value}
        return ExampleResult(
            task="gsm_ic", method=method, id=record, label="in_topic", scores=scores, error=error
        )

    rows = [
        *(scored("baseline", r, v) for r, v in [("a", 1), ("b", 0), ("c", 0), ("d", 1), ("e", 1)]),
        *(scored("separated", r, v) for r, v in [("a", 0), ("b", 1), ("c", 1), ("d", 1)]),
        scored("separated", "e", 0, error="boom"),  # failed: not paired
        scored("oracle", "z", 1),  # no baseline on record z
    ]
    assert versus_baseline(rows, "separated", "accuracy") == "+2 -1"
    assert versus_baseline(rows, "oracle", "accuracy") == "+0 -0"
    assert versus_baseline(rows, "baseline", "accuracy") == "-"
    assert versus_baseline(rows[5:], "separated", "accuracy") == "-"  # no baseline rows at all
