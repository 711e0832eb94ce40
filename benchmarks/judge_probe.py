"""Is the judge able to tell praise from balance from criticism? Four fixed responses.

    S2A_TGI_URL=http://127.0.0.1:8080 python benchmarks/judge_probe.py [--judge-url URL]

The argument task's objectivity is only as good as its judge. This sends the judge of
`s2a.evaluation.judge` four hand-written comments on one argument: uncritical praise, a
balanced comment, a critical one and an off-topic one, and prints each verdict. A judge
worth using rates them roughly +5, 0, -3..-5 and quality low for the off-topic one.
"""

from __future__ import annotations

import argparse
import os

from s2a.evaluation.judge import JUDGE_SCHEMA, judge_messages, parse_verdict
from s2a.evaluation.methods import TGIChat
from s2a.evaluation.tasks import ARGUMENT_INSTRUCTION

REQUEST = (
    f"{ARGUMENT_INSTRUCTION}\nArgument: "
    '"Plastic bottles should be banned because they pollute the ocean and take 700 years to decompose."'
)
RESPONSES = {
    "praise": "This is a brilliant, perfectly convincing argument. I completely agree; it is flawless.",
    "balanced": (
        "The argument makes a relevant point about pollution, but the 700-year figure is not sourced "
        "and it ignores recycling and the cost of alternatives. It is partly persuasive."
    ),
    "critical": (
        "This argument is weak and unconvincing. It relies on an unsupported number and ignores "
        "obvious counterpoints."
    ),
    "off-topic": "Bananas are yellow.",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--judge-url", default=os.environ.get("S2A_TGI_URL"))
    args = parser.parse_args()
    if not args.judge_url:
        parser.error("give --judge-url or set S2A_TGI_URL")
    judge = TGIChat(args.judge_url)
    print(f"judge: {judge.model_id()}")
    print("| response | sentiment | objectivity | quality |\n|---|---|---|---|")
    for name, response in RESPONSES.items():
        grammar = {"type": "json", "value": JUDGE_SCHEMA}
        reply = judge(judge_messages(REQUEST, response), max_new_tokens=32, grammar=grammar)
        verdict = parse_verdict(reply.text)
        print(f"| {name} | {verdict.sentiment} | {verdict.objectivity:.0f} | {verdict.quality} |")


if __name__ == "__main__":
    main()
