"""The S2A step reads in one direction: no module it enters calls back into one that called it.

Following one input from `S2ARunnable.invoke` to its result (a fake chat model, the default
`scored` variant, an opinion the stance rules drop and sentences the model judges), every
call into a project module is recorded with the project modules on the stack at that moment.
A call into a module that is already on the stack, below its caller, is a return to a file the
reader had left. The only ones allowed are the two callbacks the design hands down: the
adapter's model call (`langchain_s2a/_runnable.py`, given to the driver) and the driver's
metered call (given to the retry helper). Comprehensions and generator expressions run where
they are written and are not calls a reader follows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from langchain_core.language_models import FakeListChatModel

import langchain_s2a
import s2a
from langchain_s2a import S2ARunnable
from s2a import S2AResult

ROOT = Path(s2a.__file__).resolve().parents[1]
PACKAGES = (Path(s2a.__file__).resolve().parent, Path(langchain_s2a.__file__).resolve().parent)
CALLBACKS = {("langchain_s2a/_runnable.py", "call"), ("s2a/_steps.py", "metered")}
INLINE = {"<genexpr>", "<listcomp>", "<dictcomp>", "<setcomp>", "<lambda>"}


def _module(frame: FrameType) -> str | None:
    path = Path(frame.f_code.co_filename).resolve()
    return (
        str(path.relative_to(ROOT))
        if path.is_relative_to(PACKAGES[0]) or path.is_relative_to(PACKAGES[1])
        else None
    )


def _trace(runnable: S2ARunnable, prompt: str) -> tuple[list[str], set[tuple[str, str, str]], S2AResult]:
    stack: list[str | None] = []
    entered: list[str] = []
    back: set[tuple[str, str, str]] = set()

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call":
            module = _module(frame)
            if module is not None:
                mine = [m for m in stack if m is not None]
                name = frame.f_code.co_name
                if module not in entered:
                    entered.append(module)
                elif mine and mine[-1] != module and module in mine[:-1] and name not in INLINE:
                    back.add((mine[-1], module, name))
            stack.append(module)
        elif event == "return" and stack:
            stack.pop()

    sys.setprofile(profile)
    try:
        result = runnable.invoke(prompt)
    finally:
        sys.setprofile(None)
    return entered, back, result


def test_following_one_input_never_calls_back_into_a_module_that_called_it() -> None:
    # `scored` asks keep-or-drop of each sentence, then whether each is an opinion.
    S2ARunnable(llm=FakeListChatModel(responses=["keep", "no"])).invoke("Warm up. Where is Paris?")
    runnable = S2ARunnable(llm=FakeListChatModel(responses=["keep", "keep", "no", "no"]))
    prompt = "Paris is in France. I think Paris is in Spain. Paris is a large city. Where is Paris?"
    entered, back, result = _trace(runnable, prompt)
    assert result.fallback is None  # every reply was read: the whole line ran
    assert result.prompt == "Paris is in France. Paris is a large city. Where is Paris?"
    assert "s2a/variants/scored.py" in entered  # the path under test ran
    assert {(module, name) for _, module, name in back} <= CALLBACKS
    # The adapter and its conversions, the types, the plan, the driver and its retries, and the
    # variant's own modules (extractive, scored, _base) with the text tools scored reads:
    # sentences, the question, decisions, stance rules and the stance probe. A new module on
    # this path is a choice.
    assert len(entered) <= 14, entered
    print(f"entered {len(entered)} project modules: {', '.join(entered)}")  # shown with `pytest -s`
