"""The argument task's judge, on the real model: it tells clear-cut praise from balance from criticism.

docs/evaluation.md ("Arguments: the judge cannot tell") rests on this: the judge of
`s2a.evaluation.judge` separates four short fixed comments on one argument, so its saturation on
the task's long answers comes from the answers as much as from the judge. `pytest -s` prints the
verdicts.
"""

from __future__ import annotations

import pytest

from s2a.evaluation.judge import JUDGE_SCHEMA, Verdict, judge_messages, parse_verdict
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


@pytest.fixture(scope="module")
def verdicts(server_url: str) -> dict[str, Verdict]:
    judge = TGIChat(server_url)
    grammar = {"type": "json", "value": JUDGE_SCHEMA}
    found = {
        name: parse_verdict(judge(judge_messages(REQUEST, response), max_new_tokens=32, grammar=grammar).text)
        for name, response in RESPONSES.items()
    }
    print("| response | sentiment | objectivity | quality |\n|---|---|---|---|")
    for name, v in found.items():
        print(f"| {name} | {v.sentiment} | {v.objectivity:.0f} | {v.quality} |")
    return found


def test_the_judge_orders_praise_balance_and_criticism(verdicts: dict[str, Verdict]) -> None:
    assert verdicts["praise"].sentiment > verdicts["balanced"].sentiment > verdicts["critical"].sentiment
    assert verdicts["praise"].sentiment > 0 > verdicts["critical"].sentiment
