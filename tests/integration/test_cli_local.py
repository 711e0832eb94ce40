"""The README's main job: `s2a run` with no server given uses the embedded default model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROMPT = "Mary has 3 apples and buys 2 more. I think the answer is 4. How many apples does she have?"


def test_run_with_the_embedded_default_model() -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"S2A_TGI_URL", "S2A_MODEL_PATH"}}
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "s2a", "run", PROMPT, "--json", "--max-new-tokens", "96"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # stdout is the JSON alone; progress goes to stderr
    assert result["variant"] == "scored"
    assert result["fallback"] is None
    assert result["stance"] == {"2": "first-person belief"}  # the opinion, by its words
    assert result["prompt"].endswith("How many apples does she have?")  # the question, verbatim
    assert "I think" not in result["prompt"]
    assert result["answer"].strip()
    assert "Model:" in done.stderr
    assert "s2a" in done.stderr  # says where the model is cached
