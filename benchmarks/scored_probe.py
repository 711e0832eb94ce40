"""A probe for the `scored` variant to come: one yes/no token per sentence, its P(yes) read.

    python benchmarks/scored_probe.py --tgi-url http://127.0.0.1:8090 [--gsm 30:42] [--trivia 80:92]
        [--clean 6] [--data ../shared/data]

For each prompt, every sentence gets one single-token chat call (shape (b) of issue 13): the
whole message, the question found from its structure (`s2a._question`), the sentence, and
"Answer yes or no"; P(yes) is read from the first token's top logprobs, normalised over yes and
no. Per prompt it prints the question's P(yes) (the anchor: a sentence that is always needed)
and each sentence's, marked `Q` (question), `*` (the planted distractor or opinion) or `.`;
then, for thresholds on P(sentence) / P(question), how many planted sentences fall below and
how many prompts keep every other sentence. Records are taken by slice, away from the first
records that the prompts were written against.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2a._question import question_sentences
from s2a._sentences import sentence_spans

ASK = '''Here is a message from a user:
"""
{text}
"""
The user's question: {question}

One sentence of the message: "{sentence}"
Does the person answering the question need this sentence? Answer no if it only gives the \
user's opinion or guess about the answer, or if it is not used to answer the question. \
Answer yes or no.'''


def p_yes(url: str, user: str) -> float:
    """P(yes) / (P(yes) + P(no)) at the reply's first token."""
    body = {
        "model": "tgi",
        "messages": [{"role": "user", "content": user}],
        "max_tokens": 1,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 5,
    }
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=900).raise_for_status().json()
    yes = no = 0.0
    for top in reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]:
        word, p = top["token"].strip().lower(), math.exp(top["logprob"])
        yes += p if word == "yes" else 0.0
        no += p if word == "no" else 0.0
    return yes / (yes + no) if yes + no else math.nan


def score(url: str, text: str) -> tuple[list[str], list[int], list[float]]:
    """The sentences of `text`, its question sentences, and each sentence's P(yes)."""
    spans = sentence_spans(text)
    asks = question_sentences(text, spans)
    sentences = [text[s.start : s.end] for s in spans]
    question = " ".join(sentences[i] for i in asks)
    return (
        sentences,
        asks,
        [p_yes(url, ASK.format(text=text, question=question, sentence=s)) for s in sentences],
    )


def _slice(value: str) -> slice:
    start, _, stop = value.partition(":")
    return slice(int(start), int(stop))


def main() -> None:
    """Score the sampled prompts, print each, then the threshold table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tgi-url", required=True)
    parser.add_argument("--gsm", type=_slice, default=_slice("30:42"))
    parser.add_argument("--trivia", type=_slice, default=_slice("80:92"))
    parser.add_argument("--clean", type=int, default=6, help="gsm original_question prompts, from --gsm")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()

    def load(name: str) -> list[dict[str, Any]]:
        lines = (args.data / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    gsm, trivia = load("gsm_ic")[args.gsm], load("trivia_opinion")[args.trivia]
    cases: list[tuple[str, str, str | None]] = [("gsm", r["question"], r["distractor"]) for r in gsm]
    cases += [("clean", r["original_question"], None) for r in gsm[: args.clean]]
    cases += [
        ("trivia", r["prompt"], r["prompt"].replace(r["question"], "").strip())
        for r in trivia
        if r["opinion_type"] != "none"
    ]
    with ThreadPoolExecutor(4) as pool:
        scored = list(pool.map(lambda case: score(args.tgi_url, case[1]), cases))
    ratios: list[tuple[str, list[float], list[float]]] = []  # kind, planted ratios, other ratios
    for (kind, _, planted), (sentences, asks, ps) in zip(cases, scored, strict=True):
        anchor = max(ps[i] for i in asks)
        marks = ["Q" if i in asks else "*" if s == planted else "." for i, s in enumerate(sentences)]
        print(kind, f"anchor={anchor:.2f}", " ".join(f"{m}{p:.2f}" for m, p in zip(marks, ps, strict=True)))
        ratios.append(
            (
                kind,
                [p / anchor for m, p in zip(marks, ps, strict=True) if m == "*"],
                [p / anchor for m, p in zip(marks, ps, strict=True) if m == "."],
            )
        )
    print(
        "\nratio  "
        + "  ".join(f"{k}: planted below / prompts keeping the rest" for k in ("gsm", "trivia", "clean"))
    )
    for threshold in (0.80, 0.83, 0.85, 0.87, 0.90):
        cells = []
        for kind in ("gsm", "trivia", "clean"):
            rows = [(p, o) for k, p, o in ratios if k == kind]
            removed = sum(all(r < threshold for r in p) for p, _ in rows if p)
            kept = sum(all(r >= threshold for r in o) for _, o in rows)
            cells.append(f"{kind}: {removed}/{sum(1 for p, _ in rows if p)} / {kept}/{len(rows)}")
        print(f"{threshold:.2f}   " + "   ".join(cells))


if __name__ == "__main__":
    main()
