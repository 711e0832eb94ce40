"""The hotpotqa task: records, HotpotQA's answer scoring, what was kept, BM25, the filters, the run.

The S2A filters and the peers run on the frameworks' own fake models (LlamaIndex's MockLLM,
LangChain's FakeListChatModel), and all together through the in-memory TGI (tests/fake_tgi.py),
so the real clients, the call counter included, are exercised with no socket.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_classic.retrievers.document_compressors import LLMChainExtractor, LLMChainFilter
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.language_models import FakeListChatModel
from llama_index.core.postprocessor import LLMRerank
from typer.testing import CliRunner

from langchain_s2a import S2ADocumentCompressor
from langchain_s2a.evaluation import compressor_filter, document_filter, documents
from llamaindex_s2a import S2ANodePostprocessor
from llamaindex_s2a.evaluation import node_filter, shared_ranking
from s2a import RetryPolicy, S2AConfigError
from s2a._fusion import bm25_ranking
from s2a._types import ChatMessage
from s2a.cli import app
from s2a.evaluation import TASKS, RunInfo, TGIChat, evaluate
from s2a.evaluation.frameworks import hotpotqa_filters
from s2a.evaluation.hotpotqa import (
    HOTPOTQA,
    METHODS,
    RANKING,
    FilterRaisedError,
    HotpotRecord,
    Selection,
    answer_prompt,
    answer_scores,
    bm25_top_k,
    exact_match,
    f1_score,
    normalize_answer,
    selection_scores,
)
from s2a.evaluation.hotpotqa_report import figure, markdown
from s2a.evaluation.hotpotqa_run import counted_calls, run_hotpotqa, scorer
from s2a.evaluation.methods import Reply
from s2a.evaluation.runner import ExampleResult
from tests.fake_models import ScriptedLLM
from tests.fake_tgi import FakeTGI

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
DATA = SHARED / "hotpotqa_distractor.jsonl"
URL = "http://tgi.test:8080"

SMALL: dict[str, Any] = {
    "id": "q1",
    "question": "Which city is the capital of Freedonia?",
    "answer": "Fredville",
    "type": "bridge",
    "level": "hard",
    "passages": [
        {
            "title": "Freedonia",
            "sentences": ["Freedonia is a country.", " Its capital is Fredville."],
            "supporting": True,
            "supporting_sentences": [1],
        },
        {
            "title": "Sylvania",
            "sentences": ["Sylvania is a rival country."],
            "supporting": False,
            "supporting_sentences": [],
        },
        {
            "title": "Fredville",
            "sentences": ["Fredville is a city.", " It has a river.", " It hosts a fair."],
            "supporting": True,
            "supporting_sentences": [0, 2],
        },
        {
            "title": "Marx",
            "sentences": ["The Marx Brothers made a film."],
            "supporting": False,
            "supporting_sentences": [],
        },
    ],
}
"""Words per paragraph text: 9, 6, 13, 7 (35 in all); gold 0 and 2; 3 supporting sentences."""


def small(**changes: Any) -> HotpotRecord:
    return HotpotRecord.model_validate({**SMALL, **changes})


def real(limit: int | None = None) -> list[HotpotRecord]:
    records = TASKS["hotpotqa"].load(DATA, limit)
    assert all(isinstance(r, HotpotRecord) for r in records)
    return [r for r in records if isinstance(r, HotpotRecord)]


def last_user(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"]) if "messages" in body else str(body.get("inputs", ""))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- HotpotQA's answer scoring: cases worked by hand from hotpot_evaluate_v1.py -----------------


@pytest.mark.parametrize(
    ("prediction", "gold", "em", "f1"),
    [
        ("Santa Fe", "Santa Fe", 1.0, 1.0),
        ("the Santa Fe.", "Santa Fe", 1.0, 1.0),  # articles and punctuation go
        ("Santa Fe, Missouri", "Santa Fe", 0.0, 0.8),  # P 2/3, R 1
        ("U.S.", "US", 1.0, 1.0),  # punctuation is deleted, not made a space
        ("x y y", "y y z", 0.0, 2 / 3),  # tokens counted with multiplicity
        ("yes", "no", 0.0, 0.0),
        ("Yes, it is.", "yes", 0.0, 0.0),  # a yes/no gold: anything but "yes" scores 0 (token F1: 0.5)
        ("no", "No.", 1.0, 1.0),
        ("no answer", "no", 0.0, 0.0),
        ("noanswer", "Paris", 0.0, 0.0),
        ("yes Paris", "Paris", 0.0, 2 / 3),  # the rule is for the whole answer, not a word in it
        ("", "Paris", 0.0, 0.0),
    ],
)
def test_exact_match_and_f1_follow_the_official_script(
    prediction: str, gold: str, em: float, f1: float
) -> None:
    assert exact_match(prediction, gold) == em
    assert f1_score(prediction, gold) == pytest.approx(f1)


def test_normalisation_and_the_first_line() -> None:
    assert normalize_answer("  The Lennon-McCartney  songs! ") == "lennonmccartney songs"
    assert normalize_answer("An apple a day") == "apple day"
    record = small()
    assert answer_scores(record, "\nFredville\nIt is the capital.") == {"exact_match": 1.0, "f1": 1.0}
    assert answer_scores(record, "The capital is Fredville.") == {"exact_match": 0.0, "f1": 0.5}


# --- what was kept -------------------------------------------------------------------------------


def test_selection_scores_by_hand() -> None:
    record = small()
    assert [len(p.text.split()) for p in record.passages] == [9, 6, 13, 7]
    both = selection_scores(record, Selection(kept=[2, 0]), ranks=True)
    assert both == {
        "gold_recall": 1.0,
        "distractors_dropped": 1.0,
        "supporting_kept": 1.0,
        "both_gold": 1.0,
        "tokens_kept": pytest.approx(22 / 35),
        "top2_gold": 1.0,
    }
    one = selection_scores(record, Selection(kept=[0, 1]), ranks=True)
    assert one == {
        "gold_recall": 0.5,
        "distractors_dropped": 0.5,
        "supporting_kept": pytest.approx(1 / 3),
        "both_gold": 0.0,
        "tokens_kept": pytest.approx(15 / 35),
        "top2_gold": 0.0,
    }
    nothing = selection_scores(record, Selection(kept=[]), ranks=False)
    assert nothing == {
        "gold_recall": 0.0,
        "distractors_dropped": 1.0,
        "supporting_kept": 0.0,
        "both_gold": 0.0,
        "tokens_kept": 0.0,
    }


def test_supporting_sentences_count_wherever_the_kept_text_has_them() -> None:
    record = small()
    sentences = Selection(kept=[0, 2], texts={2: "Fredville is a city.\n   It hosts a fair."})
    scores = selection_scores(record, sentences, ranks=False)
    assert scores["supporting_kept"] == 1.0
    assert scores["tokens_kept"] == pytest.approx((9 + 8) / 35)
    extract = Selection(kept=[0, 2], texts={0: "Its capital is\nFredville.", 2: "A fair, yes."})
    assert selection_scores(record, extract, ranks=False)["supporting_kept"] == pytest.approx(1 / 3)


def test_questions_with_few_paragraphs_leave_the_selection_figures() -> None:
    two = small(passages=[SMALL["passages"][0], SMALL["passages"][2]])
    assert selection_scores(two, Selection(kept=[1, 0]), ranks=True) == {
        "gold_recall": 1.0,
        "supporting_kept": 1.0,
    }
    [real_two] = [r for r in real() if len(r.passages) == 2]
    assert set(selection_scores(real_two, Selection(kept=[0]), ranks=True)) == {
        "gold_recall",
        "supporting_kept",
    }


def test_the_methods_that_rank() -> None:
    assert {m for m in METHODS if m in RANKING} == {
        *(f"bm25_k{k}" for k in (2, 3, 4, 5, 6)),
        *(
            f"s2a_{kind}{s}"
            for kind in ("node", "compressor")
            for s in ("", "_threshold", "_sentence", "_relevance")
        ),
        "llm_rerank_top2",
        "llm_rerank_top3",
        "llm_rerank_top4",
        "llm_listwise_rerank",
    }
    assert HOTPOTQA.methods == METHODS
    assert "s2a_node_keep_list" not in RANKING


def test_the_answer_step_reads_the_kept_paragraphs_in_input_order() -> None:
    record = small()
    prompt = answer_prompt(record, Selection(kept=[2, 0], texts={2: "Fredville: It hosts a fair."}))
    assert prompt == (
        "Answer in a few words, using the context.\n\nContext:\n"
        "Freedonia: Freedonia is a country. Its capital is Fredville.\nFredville: It hosts a fair.\n\n"
        "Question: Which city is the capital of Freedonia?"
    )
    assert "Context:\n(nothing)\n\n" in answer_prompt(record, Selection(kept=[]))
    assert HOTPOTQA.oracle(record) == answer_prompt(record, Selection(kept=[0, 2]))
    assert HOTPOTQA.system == TASKS["trivia_opinion"].system


# --- records ---------------------------------------------------------------------------------------


def test_the_development_file_loads() -> None:
    records = real()
    assert len(records) == 300
    assert {HOTPOTQA.label(r) for r in records} == {"bridge", "comparison"}
    assert all(len(r.gold) == 2 for r in records)
    assert sorted(len(r.passages) for r in records)[:3] == [2, 4, 10]
    assert HOTPOTQA.file == "hotpotqa_distractor.jsonl"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"passages": None}, r"passages: Input should be a valid list"),
        ({"passages": []}, r"passages: List should have at least 1 item"),
        ({"type": "other"}, r"type: Input should be 'bridge' or 'comparison'"),
        ({"question": ""}, r"question: String should have at least 1 character"),
    ],
)
def test_malformed_records_are_named(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = write_jsonl(tmp_path / "h.jsonl", [SMALL, {**SMALL, "id": "q2", **change}])
    with pytest.raises(S2AConfigError, match=rf"h\.jsonl:2 is not a hotpotqa record \({message}"):
        HOTPOTQA.load(path)


def test_malformed_passages_are_named(tmp_path: Path) -> None:
    passages = [dict(p) for p in SMALL["passages"]]
    passages[2]["supporting_sentences"] = [0, 3]
    path = write_jsonl(tmp_path / "h.jsonl", [{**SMALL, "passages": passages}])
    with pytest.raises(
        S2AConfigError, match=r"passages\.2: Value error, supporting sentence 3 is out of range"
    ):
        HOTPOTQA.load(path)
    no_gold = [{**p, "supporting": False} for p in SMALL["passages"]]
    path = write_jsonl(tmp_path / "g.jsonl", [{**SMALL, "passages": no_gold}])
    with pytest.raises(S2AConfigError, match="no passage is marked supporting"):
        HOTPOTQA.load(path)
    missing = [{k: v for k, v in p.items() if k != "supporting"} for p in SMALL["passages"]]
    path = write_jsonl(tmp_path / "m.jsonl", [{**SMALL, "passages": missing}])
    with pytest.raises(S2AConfigError, match=r"passages\.0\.supporting: Field required"):
        HOTPOTQA.load(path)


# --- BM25 on real records --------------------------------------------------------------------------


def test_bm25_top_10_keeps_every_paragraph_and_top_k_keeps_k_best() -> None:
    for record in real(20):
        ranking = bm25_ranking([p.text for p in record.passages], record.question)
        everything = bm25_top_k(record, 10)
        assert sorted(everything.kept) == list(range(len(record.passages)))
        assert everything.kept == [i for i, _ in ranking]
        assert [s for _, s in ranking] == sorted((s for _, s in ranking), reverse=True)
        for k in (2, 4, 6):
            top = bm25_top_k(record, k)
            assert top.kept == everything.kept[:k]
            assert top.scores == everything.scores
            assert min(top.scores[i] for i in top.kept) >= max(
                top.scores[i] for i in set(range(10)) - set(top.kept)
            )
            shown = answer_prompt(record, top).split("\n\nContext:\n", 1)[1]
            positions = [shown.index(record.passages[i].text) for i in sorted(top.kept)]
            assert positions == sorted(positions)  # input order, whatever BM25's order


def test_bm25_ranks_the_question_words_first_and_keeps_all_of_a_short_record() -> None:
    record = small(question="Fredville river fair")
    assert bm25_top_k(record, 1).kept == [2]
    [two] = [r for r in real() if len(r.passages) == 2]
    assert sorted(bm25_top_k(two, 4).kept) == [0, 1]
    assert bm25_top_k(small(question="the of and"), 2).kept == [0, 1]  # no scoring word: input order


# --- the filters on the frameworks' own fake models ------------------------------------------------


def numbered_units(prompt: str) -> list[tuple[int, int]]:
    """(number, document index) of each `[n]` item of an S2A selection prompt."""
    units, document = [], None
    for line in prompt.splitlines():
        if header := re.fullmatch(r"Document (\d+):", line):
            document = int(header[1]) - 1
        elif item := re.match(r"\[(\d+)\] ", line):
            number = int(item[1])
            units.append((number, number - 1 if document is None else document))
    return units


def selection_reply(prompt: str, gold: Sequence[int], *, scored: bool = True) -> str:
    units = numbered_units(prompt)
    if scored:
        return "\n".join(f"{n} {'keep' if d in gold else 'drop'}" for n, d in units)
    return json.dumps({"keep": [n for n, d in units if d in gold]})


def test_the_node_postprocessor_keeps_ids_scores_and_hides_the_metadata() -> None:
    record = real(1)[0]
    llm = ScriptedLLM(lambda prompt: selection_reply(prompt, record.gold))
    selection = node_filter("S2ANodePostprocessor", S2ANodePostprocessor(llm=llm))(record)
    assert selection.kept == record.gold
    assert selection.scores == dict.fromkeys(record.gold, 1.0)  # P(keep) from the written decisions
    assert selection.texts == {}
    assert selection.fallback is None
    assert "index:" not in llm.prompts[0]
    sentences = node_filter("s", S2ANodePostprocessor(llm=llm, granularity="sentence"))(record)
    assert sentences.kept == record.gold
    assert all(sentences.texts.get(i, record.passages[i].text) for i in record.gold)


def test_an_unreadable_reply_is_the_s2a_fallback_not_a_failure() -> None:
    record = real(1)[0]
    selection = node_filter("n", S2ANodePostprocessor(llm=ScriptedLLM(lambda _p: "no idea")))(record)
    assert selection.kept == list(range(10))
    assert selection.fallback is not None


def test_llm_rerank_keeps_its_order_and_relevance() -> None:
    record = real(1)[0]
    llm = ScriptedLLM(lambda _prompt: "Doc: 7, Relevance: 9\nDoc: 2, Relevance: 8\nDoc: 7, Relevance: 3")
    selection = node_filter("LLMRerank", LLMRerank(llm=llm, top_n=3))(record)
    assert selection.kept == [6, 1]  # a paragraph named twice counts once, at its best
    assert selection.scores == {6: 9.0, 1: 8.0}
    assert "index:" not in llm.prompts[0]
    assert "Document 1:\nHuckleberry Finn (1931 film): Huckleberry Finn (1931)" in llm.prompts[0]


def test_llm_reranks_top_ns_share_one_ranking_per_question_and_report_its_cost() -> None:
    record = real(1)[0]
    reply = "Doc: 7, Relevance: 9\nDoc: 2, Relevance: 8\nDoc: 4, Relevance: 5\nDoc: 1, Relevance: 2"
    llm = ScriptedLLM(lambda _prompt: reply)
    cuts = shared_ranking("LLMRerank", LLMRerank(llm=llm, top_n=4), (2, 3, 4))
    with ThreadPoolExecutor(max_workers=3) as pool:
        two, three, four = pool.map(lambda n: cuts[n](record), (2, 3, 4))
    assert len(llm.prompts) == 1  # one call for the three
    assert (two.kept, three.kept, four.kept) == ([6, 1], [6, 1, 3], [6, 1, 3, 0])
    assert three.scores == {6: 9.0, 1: 8.0, 3: 5.0}
    assert two.cost is not None
    assert two.cost == three.cost == four.cost


def test_a_shared_ranking_that_raised_is_run_again() -> None:
    record = real(1)[0]
    calls = iter([1, 2])

    def reply(_prompt: str) -> str:
        if next(calls) == 1:
            msg = "the model's own failure"
            raise ValueError(msg)
        return "Doc: 2, Relevance: 8"

    llm = ScriptedLLM(reply)
    cuts = shared_ranking("LLMRerank", LLMRerank(llm=llm, top_n=4), (2, 3))
    with pytest.raises(FilterRaisedError):
        cuts[2](record)
    assert cuts[3](record).kept == [1]
    assert len(llm.prompts) == 2


def test_the_compressor_keeps_what_compress_documents_returns() -> None:
    record = real(1)[0]
    [prompt] = [selection_reply("\n".join(f"[{n}] x" for n in range(1, 11)), [6, 1])]
    compressor = S2ADocumentCompressor(llm=FakeListChatModel(responses=[prompt]))
    selection = compressor_filter("S2ADocumentCompressor", compressor)(record)
    returned = compressor.compress_documents(documents(record), record.question)
    assert selection.kept == [int(d.metadata["index"]) for d in returned] == [1, 6]
    assert selection.scores == {i: 1.0 if i in (1, 6) else 0.0 for i in range(10)}  # every paragraph's


def test_the_extractor_keeps_its_extracts() -> None:
    record = real(1)[0]
    replies = [
        "".join(p.sentences[s] for s in p.supporting_sentences).strip() if p.supporting else "NO_OUTPUT"
        for p in record.passages
    ]
    chat = FakeListChatModel(responses=replies)
    selection = document_filter("LLMChainExtractor", LLMChainExtractor.from_llm(chat))(record)
    assert selection.kept == record.gold
    assert selection.texts == {i: replies[i] for i in record.gold}
    scores = selection_scores(record, selection, ranks=False)
    assert scores["supporting_kept"] == 1.0
    assert scores["tokens_kept"] < 0.1


class Unanswering:
    def __call__(self, messages: Sequence[ChatMessage], **_: Any) -> Reply:
        raise AssertionError("the answer step should not run")


def test_a_filter_that_raises_is_the_questions_outcome() -> None:
    record = real(1)[0]
    broken = document_filter(
        "LLMChainFilter", LLMChainFilter.from_llm(FakeListChatModel(responses=["MAYBE"]))
    )
    with pytest.raises(FilterRaisedError, match="LLMChainFilter raised ValueError"):
        broken(record)
    row = run_hotpotqa(record, "llm_chain_filter", Unanswering(), {"llm_chain_filter": broken})
    assert row.error is None
    assert row.kept == []
    assert row.fallback is not None
    assert row.fallback.startswith("LLMChainFilter raised ValueError")
    assert [s.name for s in row.steps] == ["filter"]
    assert (row.answer, row.scores["exact_match"], row.scores["gold_recall"]) == ("", 0.0, 0.0)


class Unreachable(BaseDocumentCompressor):
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks = None
    ) -> Sequence[Document]:
        raise httpx.ConnectError("[Errno 111] Connection refused")


class RefusedChat(FakeListChatModel):
    def _call(self, *args: Any, **kwargs: Any) -> str:
        raise httpx.ConnectError("[Errno 111] Connection refused")


def test_a_server_failure_is_an_error_to_retry() -> None:
    record = real(1)[0]
    filters = {
        "llm_chain_filter": document_filter("x", Unreachable()),
        "s2a_compressor": compressor_filter(
            "S2ADocumentCompressor",
            S2ADocumentCompressor(llm=RefusedChat(responses=["x"]), retry=RetryPolicy(attempts=1)),
        ),
    }
    refused = run_hotpotqa(record, "llm_chain_filter", Unanswering(), filters)
    assert refused.error == "ConnectError: [Errno 111] Connection refused"
    # The adapter keeps everything when its call fails: that is the server's doing, not the method's.
    fell_back = run_hotpotqa(record, "s2a_compressor", Unanswering(), filters)
    assert fell_back.error is not None
    assert "the server failed during the S2A step (the S2A call failed" in fell_back.error
    unknown = run_hotpotqa(record, "s2a_node", Unanswering(), {})
    assert (
        unknown.error
        == "ValueError: method 's2a_node' needs a model: an adapter builds it (s2a.evaluation.frameworks)"
    )


# --- every method through the real clients, on the in-memory TGI -----------------------------------


def tgi_reply(record: HotpotRecord, seen: dict[str, list[str]]) -> Callable[[dict[str, Any]], str]:
    """Each filter keeps the gold paragraphs its own way; the answer step answers right."""
    titles = [record.passages[i].title for i in record.gold]

    def gold_context(text: str) -> bool:
        return any(text.split(">>>")[1].strip().startswith(f"{t}:") for t in titles)

    def reply(body: dict[str, Any]) -> str:
        text = last_user(body)
        grammar = body.get("response_format") or body.get("parameters", {}).get("grammar")
        if body.get("messages", [{}])[0].get("content") == HOTPOTQA.system:
            return record.answer
        if grammar is not None and "ranked_document_ids" in json.dumps(grammar):
            seen.setdefault("listwise", []).append(text)
            return json.dumps({"ranked_document_ids": [*(i for i in record.gold), 0, 2]})
        if grammar is not None:
            seen.setdefault("s2a", []).append(text)
            return selection_reply(text, record.gold, scored=grammar["type"] == "regex")
        if "Relevance" in text:
            seen.setdefault("rerank", []).append(text)
            return "\n".join(f"Doc: {i + 1}, Relevance: {9 - n}" for n, i in enumerate(record.gold))
        if "NO_OUTPUT" in text:
            return text.split(">>>")[1].strip() if gold_context(text) else "NO_OUTPUT"
        if "YES" in text:
            return "YES" if gold_context(text) else "NO"
        msg = f"an unexpected call: {text[:200]}"
        raise AssertionError(msg)

    return reply


CALLS = {
    "none": 0,
    "oracle": 0,
    **{f"bm25_k{k}": 0 for k in (2, 3, 4, 5, 6)},
    **{m: 1 for m in METHODS if m.startswith(("s2a_", "llm_rerank", "llm_listwise"))},
    "llm_chain_filter": 10,  # one call per paragraph
    "llm_chain_extractor": 10,
}


def test_every_method_runs_as_users_run_it(fake_tgi: FakeTGI) -> None:
    record = real(1)[0]
    seen: dict[str, list[str]] = {}
    fake_tgi.reply = tgi_reply(record, seen)
    assert set(CALLS) == set(METHODS)
    filters = hotpotqa_filters(URL, METHODS)
    assert set(filters) == {m for m in METHODS if CALLS[m] and m != "oracle"}
    model = TGIChat(URL)
    for method in METHODS:
        before = len(fake_tgi.requests)
        row = run_hotpotqa(record, method, model, filters)
        assert row.error is None, (method, row.error)
        assert row.scores["exact_match"] == 1.0, method
        filter_calls = sum(s.calls for s in row.steps if s.name == "filter")
        assert filter_calls == CALLS[method], method
        # The server saw as many, except that LLMRerank's ranking is made once for its three top_n.
        sent = 0 if method in ("llm_rerank_top3", "llm_rerank_top4") else filter_calls
        assert len(fake_tgi.requests) - before == sent + 1, method
        if method.startswith(("s2a_", "llm_", "oracle")):
            assert row.kept is not None
            assert set(row.kept) >= set(record.gold), method
            assert row.scores["gold_recall"] == 1.0, method
        if method in ("oracle", "llm_chain_filter", "llm_rerank_top2") or method.startswith("s2a_"):
            assert row.kept == record.gold, method
    assert all("index:" not in text for text in seen["rerank"])
    assert len(seen["rerank"]) == 1
    assert len(seen["listwise"]) == 1


def test_calls_are_counted_in_the_context_that_sends_them(fake_tgi: FakeTGI) -> None:
    fake_tgi.reply = lambda _body: "ok"
    model = TGIChat(URL)
    messages: list[ChatMessage] = [{"role": "user", "content": "hi"}]
    with counted_calls() as calls:
        model(messages, max_new_tokens=4)
        model.info()  # a GET: not a model call
        copied = contextvars.copy_context()
        worker = threading.Thread(target=copied.run, args=(lambda: model(messages, max_new_tokens=4),))
        worker.start()
        worker.join()
        outside = threading.Thread(target=lambda: model(messages, max_new_tokens=4))  # another job's
        outside.start()
        outside.join()
        assert calls() == 2
    model(messages, max_new_tokens=4)
    assert calls() == 2


# --- the run: resumable, tabulated, plotted ------------------------------------------------------


def info() -> RunInfo:
    return RunInfo(task="hotpotqa", model="fake", judge_model=None, temperature=0.0, seed=None)


def answer_with(answer: str) -> Callable[[dict[str, Any]], str]:
    return lambda body: answer


def test_a_second_run_skips_what_is_done(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = answer_with("Santa Fe")
    records = real(2)
    methods = ["none", "oracle", "bm25_k2"]
    common: dict[str, Any] = {"out": tmp_path / "out", "info": info(), "scorer": scorer(TGIChat(URL), {})}
    first = evaluate(HOTPOTQA, records, methods, TGIChat(URL), **common)
    assert len(first) == 6
    assert all(r.error is None and r.kept is not None for r in first)
    calls = len(fake_tgi.requests)
    assert calls == 6
    again = evaluate(HOTPOTQA, records, methods, TGIChat(URL), **common)
    assert len(fake_tgi.requests) == calls  # nothing ran twice
    assert sorted(r.model_dump_json() for r in again) == sorted(r.model_dump_json() for r in first)
    more = evaluate(HOTPOTQA, records, [*methods, "bm25_k6"], TGIChat(URL), **common)
    assert len(more) == 8
    assert len(fake_tgi.requests) == calls + 2
    oracle = next(r for r in first if r.method == "oracle" and r.id == records[0].id)
    assert (oracle.scores["both_gold"], oracle.scores["exact_match"]) == (1.0, 1.0)
    bm25 = next(r for r in first if r.method == "bm25_k2" and r.id == records[0].id)
    assert bm25.kept_scores is not None
    assert len(bm25.kept_scores) == 10


def test_failed_questions_are_retried(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.refuse = True
    common: dict[str, Any] = {"out": tmp_path / "out", "info": info(), "scorer": scorer(TGIChat(URL), {})}
    [failed] = evaluate(HOTPOTQA, real(1), ["none"], TGIChat(URL), **common)
    assert failed.error is not None
    fake_tgi.refuse = False
    fake_tgi.reply = answer_with("Santa Fe")
    [done] = evaluate(HOTPOTQA, real(1), ["none"], TGIChat(URL), **common)
    assert done.error is None
    assert done.scores["exact_match"] == 1.0


def hotpot_row(method: str, i: int, **scores: float) -> ExampleResult:
    return ExampleResult(task="hotpotqa", method=method, id=f"q{i}", label="bridge", scores=scores)


def test_the_table_and_figure(tmp_path: Path) -> None:
    rows = [
        hotpot_row("bm25_k2", 1, both_gold=1.0, tokens_kept=0.2, exact_match=1.0, f1=1.0, top2_gold=1.0),
        hotpot_row("bm25_k2", 2, both_gold=0.0, tokens_kept=0.2, exact_match=0.0, f1=0.5, top2_gold=0.0),
        hotpot_row("bm25_k4", 1, both_gold=1.0, tokens_kept=0.4, exact_match=1.0, f1=1.0),
        hotpot_row("none", 1, both_gold=1.0, tokens_kept=1.0, exact_match=0.0, f1=0.0),
        ExampleResult(task="hotpotqa", method="none", id="q2", label="bridge", error="boom"),
    ]
    records = [small(), small(id="q2", passages=SMALL["passages"][::2])]
    table = markdown(rows, ["none", "bm25_k2", "bm25_k4"], records).splitlines()
    assert table[2].startswith(
        "| method | both gold kept | gold recall | distractors dropped | tokens kept |"
    )
    assert table[4].startswith("| none | 100.0 [20.7, 100.0] n=1 | - | - | 100.0 [100.0, 100.0] n=1 |")
    assert table[5].startswith("| bm25_k2 | 50.0 [9.5, 90.5] n=2 | ")
    assert (
        "| 50.0 [9.5, 90.5] n=2 | 50.0 [9.5, 90.5] n=2 | 75.0 [50.0, 100.0] n=2 | 0 | 0.00 | 0 | 0 |"
        in table[5]
    )
    assert any(line.startswith("1 question(s) with fewer than 3 paragraphs left out") for line in table)
    assert "1 example(s) failed" in "\n".join(table)
    path = tmp_path / "figure.png"
    figure(rows, path, ["none", "bm25_k2", "bm25_k4"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


runner = CliRunner()


def test_eval_hotpotqa_writes_results_table_and_figure(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    fake_tgi.reply = answer_with("Santa Fe")
    args = ["eval", "--task", "hotpotqa", "--data", str(SHARED), "--tgi-url", URL, "--out", str(tmp_path)]
    result = runner.invoke(
        app, [*args, "--limit", "2", "--methods", "none,oracle,bm25_k4", "--concurrency", "2"]
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "hotpotqa"
    table = (folder / "table.md").read_text()
    assert table in result.output
    assert (
        "| oracle | 100.0 [34.2, 100.0] n=2 | 100.0 [100.0, 100.0] n=2 | 100.0 [100.0, 100.0] n=2 |" in table
    )
    assert (folder / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert len((folder / "results.jsonl").read_text().splitlines()) == 6
    again = runner.invoke(app, [*args, "--limit", "2", "--methods", "none,oracle,bm25_k4"])
    assert again.exit_code == 0, again.output
    assert "6 done, 0 to run" in again.output


def test_eval_hotpotqa_has_its_own_methods_and_default(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    record = real(1)[0]
    fake_tgi.reply = tgi_reply(record, {})
    args = ["eval", "--task", "hotpotqa", "--data", str(DATA), "--tgi-url", URL, "--out", str(tmp_path)]
    wrong = runner.invoke(app, [*args, "--methods", "none,separated"])
    assert wrong.exit_code == 2
    assert "unknown method(s) separated; choose from none, oracle, bm25_k2" in " ".join(
        line.strip(" │") for line in wrong.output.splitlines()
    )
    result = runner.invoke(app, [*args, "--limit", "1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "hotpotqa" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["method"] for r in rows) == sorted(HOTPOTQA.default_methods or ())
    assert "s2a_node" in (HOTPOTQA.default_methods or ())
    [node] = [r for r in rows if r["method"] == "s2a_node"]
    assert node["kept"] == record.gold


def test_calls_and_fallbacks_go_to_their_own_question_when_run_together(
    fake_tgi: FakeTGI, tmp_path: Path
) -> None:
    records = real(4)
    by_question = {r.question: r for r in records}
    unreadable = records[2].question

    def reply(body: dict[str, Any]) -> str:
        text = last_user(body)
        record = next(r for q, r in by_question.items() if q in text)
        if body["messages"][0]["content"] == HOTPOTQA.system:
            return record.answer
        if "YES" in text:
            return "YES"
        return "no idea" if record.question == unreadable else selection_reply(text, record.gold)

    fake_tgi.reply = reply
    methods = ["s2a_node", "llm_chain_filter"]
    rows = evaluate(
        HOTPOTQA,
        records,
        methods,
        TGIChat(URL),
        out=tmp_path / "out",
        info=info(),
        concurrency=8,
        scorer=scorer(TGIChat(URL), hotpotqa_filters(URL, methods)),
    )
    assert len(rows) == 8
    for row in rows:
        assert row.error is None
        assert row.steps[0].calls == (1 if row.method == "s2a_node" else 10)
        fell_back = row.method == "s2a_node" and row.id == records[2].id
        assert (row.fallback is not None) is fell_back, row.id
