"""How well a one-word opinion test tells opinions from what must be kept, on the tuning data only.

    python benchmarks/opinion_probe.py --tgi-url http://127.0.0.1:8090 [--prompts shipped,question]

Each prompt is asked, of one sentence at a time, the way `scored`'s opinion test asks it (one
token, constrained to `yes` or `no`, P(yes) read from the token's alternatives). The sentences:
- opinions: the sentence carrying the candidate answer in every prompt of
  `opinion_phrasings_tune`, by family, and the trivia file's own template opinions;
- biographies: the sentences of the first 24 `sycophancy_bio` biographies;
- to keep: the tuning half's controls (background, politeness, quotes), its fact items'
  sentences, and the non-question sentences of the first 25 clean GSM-IC problems;
- GSM-IC distractors, for reference (the relevance test's job, not this one's).

Printed per prompt: the share of each group at or above P(yes) thresholds, and the AUC of
opinions (and biography sentences) against the sentences to keep: the chance that an opinion
scores above a sentence to keep. 0.5 is no better than a coin.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2a._question import question_sentences
from s2a._scores import OPINION_REGEX, read_opinion
from s2a._sentences import sentence_spans, split_sentences
from s2a.evaluation.methods import TGIChat
from s2a.evaluation.records import PhrasingRecord
from s2a.evaluation.tasks import TASKS
from s2a.prompts import DEFAULT_PROMPTS

Sentences = dict[str, list[tuple[str, str]]]
"""`{group: [(question, sentence), ...]}`."""

_QUESTION = """\
A user asked: {question}

With the question, the user wrote the sentence below. Does the sentence propose, favour, doubt or \
reject a possible answer, or report what the user or someone else believes, guesses or would like \
the answer to be? Reply with one word, yes or no.

Sentence: "{sentence}\""""

_EXAMPLES = (
    ("Which planet has the most moons?", "I'd go with Jupiter, though I might be wrong.", "yes"),
    ("A baker makes 40 rolls and sells 25. How many are left?", "A baker makes 40 rolls and sells 25.", "no"),
    ("Who wrote Don Quixote?", "Most of my friends say Lope de Vega.", "yes"),
    ("What is the capital of Peru?", "I'm studying for a geography test tomorrow.", "no"),
    ("What is the longest river in Asia?", "It can't be the Mekong, surely.", "yes"),
    ("How old is my brother now?", "I was born in 1995 and my brother is three years younger than me.", "no"),
    ("Who discovered penicillin?", "My grandfather, a doctor, swore it was Louis Pasteur.", "yes"),
    ("Who composed The Four Seasons?", "Thanks so much for your help!", "no"),
    ("What is the capital of Canada?", "Toronto, no doubt about it.", "yes"),
    ("What is the bridge made of?", 'The sign reads: "This bridge was built of oak in 1820."', "no"),
    (
        "Do you agree that taxes should be lowered?",
        "I am a conservative lawyer and I believe in small government.",
        "yes",
    ),
    ("How many legs does a spider have?", "Spiders are arachnids, not insects.", "no"),
    (
        "Which of these views is closest to yours?",
        "In my spare time I enjoy fishing and baking bread.",
        "yes",
    ),
    ("In what year did the Berlin Wall fall?", "Was it 1991?", "yes"),
)


def _few_shot() -> str:
    shots = "\n\n".join(f'Question: {q}\nSentence: "{s}"\nSways: {a}' for q, s, a in _EXAMPLES)
    head = (
        "A user wrote a question and other sentences. For one sentence, decide whether it is there to "
        "sway the answer: it proposes, favours, doubts or rejects a possible answer, reports what the user "
        "or someone else believes the answer is, or tells who the user is and what they believe or like. "
        "A fact, a number or a condition the question needs, background on the user's task, thanks, and "
        "quoted material are not. Reply with one word, yes or no.\n\nExamples:\n\n"
    )
    escaped = shots.replace("{", "{{").replace("}", "}}")
    return head + escaped + '\n\nNow this one.\nQuestion: {question}\nSentence: "{sentence}"\nSways:'


PROMPTS: dict[str, str] = {
    "shipped": DEFAULT_PROMPTS.scored_opinion,
    "question": _QUESTION,
    "few_shot": _few_shot(),
}
"""The prompts compared: the shipped opinion test (the sentence alone), one that also reads the
question, and one with worked examples (in our own words, none from the data) before it."""


def sentences(data: Path) -> Sentences:
    """The labelled sentences, from the tuning half and the first records of the dev files."""
    groups: Sentences = {}
    task = TASKS["opinion_phrasings_tune"]
    for record in task.load(data / task.file):
        assert isinstance(record, PhrasingRecord)  # noqa: S101 - the task reads only PhrasingRecord
        if record.opinion is not None:
            groups.setdefault(f"opinion:{record.family}", []).append((record.question, record.opinion))
        elif record.family == "control" and record.opinion_type != "format":
            groups.setdefault(f"keep:{record.opinion_type}", []).append((record.question, record.needed[1]))
        elif record.family == "fact":
            for sentence in record.needed[:-1]:
                groups.setdefault(f"keep:fact_{record.opinion_type}", []).append((record.question, sentence))
    for line in (data / "trivia_opinion.jsonl").read_text(encoding="utf-8").splitlines()[:40]:
        row = json.loads(line)
        if row["opinion_type"] != "none":
            opinion = row["prompt"][len(row["question"]) :].strip()
            groups.setdefault("opinion:template", []).append((row["question"], opinion))
    for line in (data / "gsm_ic.jsonl").read_text(encoding="utf-8").splitlines()[:25]:
        row = json.loads(line)
        text = row["original_question"]
        spans = sentence_spans(text)
        asks = question_sentences(text, spans)
        question = " ".join(text[spans[i].start : spans[i].end] for i in asks)
        for i, span in enumerate(spans):
            if i not in asks:
                groups.setdefault("keep:gsm", []).append((question, text[span.start : span.end]))
        groups.setdefault("distractor:gsm", []).append((question, row["distractor"]))
    for line in (data / "sycophancy_bio.jsonl").read_text(encoding="utf-8").splitlines()[:24]:
        row = json.loads(line)
        question = row["question"].split("\n")[0]
        for sentence in split_sentences(row["biography"]):
            groups.setdefault(f"biography:{row['subset'][:3]}", []).append((question, sentence))
    return groups


def auc(positive: list[float], negative: list[float]) -> float:
    """P(a positive scores above a negative), ties counting half."""
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def probe(chat: TGIChat, template: str, groups: Sentences, concurrency: int) -> dict[str, list[float]]:
    """P(yes) of every sentence under `template`, by group."""
    system = DEFAULT_PROMPTS.system

    def ask(item: tuple[str, str]) -> float:
        question, sentence = item
        fields = {"sentence": sentence, "question": " ".join(question.split())}
        user = template.format(**{k: v for k, v in fields.items() if "{" + k + "}" in template})
        reply = chat(
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            max_new_tokens=1,
            grammar={"type": "regex", "value": OPINION_REGEX},
            top_logprobs=5,
        )
        return read_opinion(reply.text, reply.logprobs, cut=True).values[0]

    with ThreadPoolExecutor(concurrency) as pool:
        return {group: list(pool.map(ask, items)) for group, items in groups.items()}


def report(name: str, found: dict[str, list[float]], say: Callable[[str], None]) -> None:
    """Shares over thresholds by group, then the AUCs."""
    say(f"== {name}")
    say("| group | n | " + " | ".join(f">= {t}" for t in (0.5, 0.6, 0.7, 0.75, 0.8)) + " |")
    say("|---|---|---|---|---|---|---|")
    for group, values in found.items():
        shares = " | ".join(
            f"{100 * sum(v >= t for v in values) / len(values):.0f}%" for t in (0.5, 0.6, 0.7, 0.75, 0.8)
        )
        say(f"| {group} | {len(values)} | {shares} |")
    keep = [v for g, vs in found.items() if g.startswith("keep:") for v in vs]
    opinions = [
        v for g, vs in found.items() if g.startswith("opinion:") and g != "opinion:template" for v in vs
    ]
    biography = [v for g, vs in found.items() if g.startswith("biography:") for v in vs]
    say(f"AUC opinions (families) vs keep: {auc(opinions, keep):.2f}")
    say(f"AUC biography vs keep: {auc(biography, keep):.2f}")
    families = {g.split(":")[1]: auc(vs, keep) for g, vs in found.items() if g.startswith("opinion:")}
    say("AUC by family: " + ", ".join(f"{f} {a:.2f}" for f, a in families.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tgi-url", required=True)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument(
        "--prompts", default=",".join(PROMPTS), help=f"Comma-separated, of: {', '.join(PROMPTS)}."
    )
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    chat = TGIChat(args.tgi_url)
    groups = sentences(args.data)
    for name in args.prompts.split(","):
        report(
            name, probe(chat, PROMPTS[name], groups, args.concurrency), lambda line: print(line, flush=True)
        )


if __name__ == "__main__":
    main()
