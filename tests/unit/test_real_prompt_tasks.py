"""The tasks on opinions as people write them and on real biography prompts (`s2a eval`).

`opinion_phrasings` (the checking half) and `opinion_phrasings_tune` build their records from
the package's phrasings and the trivia questions of ../shared/data; `sycophancy_bio` reads
Anthropic's prompts as they are. The checks here need no model.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from s2a import S2AConfigError
from s2a._question import question_sentences
from s2a._sentences import sentence_spans, split_sentences
from s2a.evaluation import TASKS
from s2a.evaluation.phrasings import QUESTIONS_PER_PHRASING, phrasings_data
from s2a.evaluation.real_prompts import choice_letter
from s2a.evaluation.records import PhrasingRecord, SycophancyRecord
from s2a.evaluation.report import markdown
from s2a.evaluation.runner import ExampleResult

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
FAMILIES = ("belief", "assertion", "hearsay", "popularity", "tag", "doubt", "before", "musing", "turn")


def test_the_phrasings_are_split_by_phrasing_and_every_family_is_in_both_halves() -> None:
    data = phrasings_data()
    phrasings = data["phrasings"]
    assert len(phrasings) >= 40
    by_half = Counter((p["family"], p["half"]) for p in phrasings)
    for family in FAMILIES:
        assert by_half[family, "tune"] >= 2, family
        assert by_half[family, "check"] >= 2, family
    templates = [p["template"] for p in phrasings]
    assert len(set(templates)) == len(templates)
    assert all(t.count("{answer}") == 1 for t in templates)
    for kind in ("background", "format", "politeness", "quote"):
        assert {c["half"] for c in data["controls"] if c["kind"] == kind} >= {"tune", "check"}
    ids = [x["id"] for key in ("phrasings", "controls", "fact_items") for x in data[key]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", ["opinion_phrasings", "opinion_phrasings_tune"])
def test_a_half_attaches_its_own_phrasings_to_the_trivia_questions(name: str) -> None:
    task = TASKS[name]
    half = "tune" if name.endswith("_tune") else "check"
    records = [r for r in task.load(SHARED / task.file) if isinstance(r, PhrasingRecord)]
    mine = {p["template"].split("{answer}")[0] for p in phrasings_data()["phrasings"] if p["half"] == half}
    opinions = [r for r in records if r.family in FAMILIES]
    assert len(opinions) == QUESTIONS_PER_PHRASING * sum(
        p["half"] == half for p in phrasings_data()["phrasings"]
    )
    for record in opinions:
        assert record.opinion is not None
        assert record.opinion in record.prompt
        assert record.question in record.prompt
        # The planted sentence names the suggested or refuted answer.
        assert any(head in record.prompt for head in mine)
        assert task.kept_planted(record, record.prompt) is True
        assert task.kept_planted(record, record.question) is False
    kinds = Counter(r.opinion_type for r in opinions)
    assert min(kinds["suggest_correct"], kinds["suggest_incorrect"], kinds["refute_correct"]) > 0
    clean = {r.group_id for r in records if r.family == "none"}
    assert {r.group_id for r in opinions} <= clean  # every opinion prompt has its clean side
    for record in records:
        assert task.kept_needed(record, record.prompt) is True
        assert task.kept_needed(record, "") is False


@pytest.mark.parametrize("half", ["fresh", "fresh2", "fresh3", "fresh4"])
def test_a_fresh_set_covers_every_family_and_shares_no_template(half: str) -> None:
    fresh = [p for p in phrasings_data()["phrasings"] if p["half"] == half]
    assert {p["family"] for p in fresh} == set(FAMILIES)
    others = {p["template"] for p in phrasings_data()["phrasings"] if p["half"] != half}
    assert not {p["template"] for p in fresh} & others


def test_the_two_halves_share_no_phrasing() -> None:
    def prompts(name: str) -> set[str]:
        task = TASKS[name]
        records = task.load(SHARED / task.file)
        planted = [r for r in records if isinstance(r, PhrasingRecord) and r.family not in {"none", "fact"}]
        return {r.prompt for r in planted}

    assert not prompts("opinion_phrasings") & prompts("opinion_phrasings_tune")


def test_the_question_of_every_phrasing_prompt_is_whole() -> None:
    """The question finder keeps the trivia question of every prompt of both halves.

    An opinion with no full stop before the question ("everyone in my class put X for this
    one Where would ...") is one sentence with it, and so is kept with the question.
    """
    for name in ("opinion_phrasings", "opinion_phrasings_tune"):
        task = TASKS[name]
        for record in task.load(SHARED / task.file):
            assert isinstance(record, PhrasingRecord)
            spans = sentence_spans(record.prompt)
            asks = question_sentences(record.prompt, spans)
            kept = "\n".join(record.prompt[spans[i].start : spans[i].end] for i in asks)
            assert record.question in kept, (record.id, kept)


def test_phrasings_built_from_a_file_without_clean_questions_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "trivia_opinion.jsonl"
    path.write_text(json.dumps({"id": "x", "opinion_type": "suggest_correct"}) + "\n", encoding="utf-8")
    with pytest.raises(S2AConfigError, match="cannot build the opinion_phrasings records"):
        TASKS["opinion_phrasings"].load(path)


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        (" (B)", " (B)"),
        ("(A) Agree", " (A)"),
        ("A", " (A)"),
        ("B) Disagree", " (B)"),
        ("I pick (B), a bigger government.", " (B)"),
        ("As an AI I have no view.", None),
        ("", None),
    ],
)
def test_the_choice_a_reply_gives(reply: str, letter: str | None) -> None:
    assert choice_letter(reply) == letter


def test_sycophancy_is_scored_against_the_users_answer_and_unparsed_replies_are_not_scored() -> None:
    task = TASKS["sycophancy_bio"]
    record = task.load(SHARED / task.file, limit=1)[0]
    assert isinstance(record, SycophancyRecord)
    agree, other = record.answer_matching_behavior, record.answer_not_matching_behavior
    assert task.exact is not None
    assert (task.exact(record, agree), task.exact(record, other), task.exact(record, "no view")) == (
        1.0,
        0.0,
        None,
    )
    assert task.oracle(record) == record.question
    assert task.kept_needed(record, record.prompt) is True
    assert task.parts_removed(record, record.prompt) == (0, len(split_sentences(record.biography)))
    assert task.parts_removed(record, record.question) == (len(split_sentences(record.biography)),) * 2


def test_the_report_counts_biography_sentences_removed_and_shows_each_family() -> None:
    task = TASKS["sycophancy_bio"]
    record = task.load(SHARED / task.file, limit=1)[0]
    assert isinstance(record, SycophancyRecord)
    first = split_sentences(record.biography)[0]
    rows = [
        ExampleResult(task=task.name, method="baseline", id=record.id, label="x", prompt=record.prompt),
        ExampleResult(
            task=task.name, method="scored", id=record.id, label="x", prompt=f"{first} {record.question}"
        ),
    ]
    table = markdown(task, rows, records=[record])
    n = len(split_sentences(record.biography))
    assert f"| baseline | - | 100.0% (1/1) | - | - | 0.0% (0/{n}) |" in table
    assert f"| scored | - | 100.0% (1/1) | - | - | {100 * (n - 1) / n:.1f}% ({n - 1}/{n}) |" in table
    phrasing = TASKS["opinion_phrasings"]
    records = phrasing.load(SHARED / phrasing.file)
    belief = next(r for r in records if phrasing.label(r) == "belief")
    assert isinstance(belief, PhrasingRecord)
    row = ExampleResult(
        task=phrasing.name, method="scored", id=belief.id, label="belief", prompt=belief.question
    )
    by_family = markdown(phrasing, [row], records=records)
    assert "planted removed / needed kept, by family" in by_family
    assert "| scored | - / - | 100.0% (1/1) / 100.0% (1/1) | - / - |" in by_family


def test_a_run_over_some_questions_keeps_every_phrasing_of_each_and_spreads_them() -> None:
    task = TASKS["opinion_phrasings_fresh2"]
    every = task.load(SHARED / task.file)
    some = task.load(SHARED / task.file, questions=10)
    groups = {task.group(r) for r in some}
    assert len(groups) == 10
    # each chosen question under all of its phrasings, as in the whole run
    assert [r.id for r in every if task.group(r) in groups] == [r.id for r in some]
    # spread over the file, not its first questions: every family is in
    assert {task.label(r) for r in some} == {task.label(r) for r in every}


def test_questions_is_refused_for_a_task_without_groups() -> None:
    task = TASKS["gsm_ic"]
    with pytest.raises(S2AConfigError, match="no question groups"):
        task.load(SHARED / task.file, questions=3)
