from __future__ import annotations

import pytest

from s2a import DEFAULT_PROMPTS, S2AConfig, S2AInput, S2APrompts, prepare


def test_default_prompts_validate() -> None:
    assert S2APrompts() == DEFAULT_PROMPTS


def test_missing_field_is_named() -> None:
    with pytest.raises(ValueError, match=r"'separated'.*\['focus', 'text'\]"):
        S2APrompts(separated="Rewrite this: {text}")


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValueError, match="answer_instructed"):
        S2APrompts(answer_instructed="{original} {oops}")


def test_malformed_template_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a valid format string"):
        S2APrompts(system="unbalanced { brace")


def test_replaced_prompt_is_what_the_model_sees() -> None:
    prompts = DEFAULT_PROMPTS.model_copy(update={"unseparated": "MY PROMPT {focus} :: {text}"})
    prompts = S2APrompts.model_validate(prompts.model_dump())
    request = prepare(S2AInput(context="Is water wet?"), S2AConfig(variant="unseparated", prompts=prompts))
    assert request.messages[1]["content"].startswith("MY PROMPT ")
    assert request.messages[1]["content"].endswith(":: Is water wet?")


@pytest.mark.parametrize(
    ("focus", "has_objectivity", "has_relevance"),
    [("objectivity", True, False), ("relevance", False, True), ("both", True, True)],
)
def test_focus_selects_instructions(focus: str, has_objectivity: bool, has_relevance: bool) -> None:
    config = S2AConfig.model_validate({"variant": "separated", "focus": focus})
    user = prepare(S2AInput(context="Why? I think so."), config).messages[1]["content"]
    assert (DEFAULT_PROMPTS.focus_objectivity in user) is has_objectivity
    assert (DEFAULT_PROMPTS.focus_relevance in user) is has_relevance
