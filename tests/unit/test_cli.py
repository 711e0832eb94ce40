from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from s2a import _probe
from s2a.cli import app
from tests.fake_tgi import FakeTGI

PROMPT = "Mary has 3 apples. I think the answer is 4. How many apples does Mary have?"
runner = CliRunner()


def script(fake: FakeTGI, rewrite: str, answer: str = "She has 3 apples.") -> None:
    fake.reply = lambda body: rewrite if body["messages"][0]["role"] == "system" else answer


def test_run_prints_the_context_then_the_answer(fake_tgi: FakeTGI) -> None:
    script(fake_tgi, "Context: Mary has 3 apples.\nQuestion: How many apples does Mary have?")
    result = runner.invoke(
        app, ["run", "--variant", "separated", PROMPT, "--tgi-url", "http://tgi.test:8080"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.index("Mary has 3 apples.") < result.output.index("She has 3 apples.")
    assert "I think" not in result.output
    answer_request = fake_tgi.bodies("/v1/chat/completions")[1]
    assert answer_request["messages"][0]["content"].startswith("Mary has 3 apples.")


def test_run_json_from_a_file(fake_tgi: FakeTGI, tmp_path: Path) -> None:
    script(fake_tgi, '{"keep": [1]}')
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(PROMPT, encoding="utf-8")
    args = [
        "run",
        "--file",
        str(prompt_file),
        "--variant",
        "extractive",
        "--json",
        "--tgi-url",
        "http://tgi.test",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["kept"] == [1, 3]
    assert out["context"] == "Mary has 3 apples."
    assert out["question"] == "How many apples does Mary have?"
    assert out["answer"] == "She has 3 apples."
    assert fake_tgi.bodies("/v1/chat/completions")[0]["response_format"]["type"] == "json"


def test_url_from_the_environment(fake_tgi: FakeTGI) -> None:
    script(fake_tgi, "not usable")
    result = runner.invoke(app, ["run", PROMPT, "--json"], env={"S2A_TGI_URL": "http://tgi.test"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["fallback"] is not None


def test_without_a_server_the_local_model_is_used(tmp_path: Path) -> None:
    """No --tgi-url means the embedded default; a bad --model-path is refused before any serving."""
    not_gguf = tmp_path / "model.bin"
    not_gguf.write_bytes(b"PK\x03\x04 not a model")
    result = runner.invoke(app, ["run", PROMPT, "--model-path", str(not_gguf)], env={"S2A_TGI_URL": ""})
    assert result.exit_code == 1
    assert f"{not_gguf} is not a GGUF model file" in result.output


def test_serve_checks_its_limits() -> None:
    result = runner.invoke(app, ["serve", "--max-input-tokens", "10", "--max-total-tokens", "10"])
    assert result.exit_code == 2
    assert "must be below --max-total-tokens" in result.output


def test_bad_variant_is_named() -> None:
    result = runner.invoke(app, ["run", PROMPT, "--variant", "nope", "--tgi-url", "http://tgi.test"])
    assert result.exit_code == 2
    assert "variant" in result.output


def test_text_and_file_are_exclusive(tmp_path: Path) -> None:
    prompt_file = tmp_path / "p.txt"
    prompt_file.write_text("x", encoding="utf-8")
    result = runner.invoke(app, ["run", "x", "--file", str(prompt_file), "--tgi-url", "http://tgi.test"])
    assert result.exit_code == 2
    assert "not both" in result.output


def test_parse_error_with_raise_is_reported(fake_tgi: FakeTGI) -> None:
    script(fake_tgi, "I refuse.")
    result = runner.invoke(
        app, ["run", "--variant", "separated", PROMPT, "--fallback", "raise", "--tgi-url", "http://tgi.test"]
    )
    assert result.exit_code == 1
    assert "neither a 'Context:' nor a 'Question:' label" in result.output


def test_unreachable_server_is_reported(fake_tgi: FakeTGI) -> None:
    fake_tgi.refuse = True
    result = runner.invoke(app, ["run", PROMPT, "--tgi-url", "http://tgi.test:9", "--attempts", "2"])
    assert result.exit_code == 1
    assert "the model server at http://tgi.test:9: could not reach the model server after 2 attempts" in (
        result.output
    )
    assert "[Errno 111] Connection refused" in result.output
    assert "Traceback" not in result.output


def test_a_prompt_longer_than_the_servers_window_is_split_not_cut(fake_tgi: FakeTGI) -> None:
    """`s2a run` reads the window from the server's /info and filters a long prompt part by part."""
    fake_tgi.max_input_tokens, fake_tgi.max_total_tokens = 1024, 2048
    facts = " ".join(f"On day {i} Mary picks {i} apples from the old orchard." for i in range(400))
    question = "How many apples does Mary pick on day 7?"

    def reply(body: dict[str, object]) -> str:
        messages = body["messages"]
        assert isinstance(messages, list)
        if messages[0]["role"] != "system":
            return "7."
        return f"Context: kept.\nQuestion: {question}"

    fake_tgi.reply = reply
    result = runner.invoke(
        app,
        ["run", "--variant", "separated", f"{facts} {question}", "--json", "--tgi-url", "http://tgi.test"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    calls = fake_tgi.bodies("/v1/chat/completions")
    assert out["parts"] == len(calls) - 1 > 1  # every part one S2A call, then the answer
    assert out["question"] == question
    assert out["fallback"] is None
    assert all(len(c["messages"][1]["content"]) < 3 * 1024 for c in calls[:-1])


def test_serve_defaults_are_the_engines() -> None:
    """The CLI cannot import the optional engine for its defaults; they must still agree."""
    import typer.main  # noqa: PLC0415

    from s2a.local.llama import DEFAULT_SLOTS  # noqa: PLC0415
    from s2a.local.serve import LocalOptions  # noqa: PLC0415

    command = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    defaults = {param.name: param.default for param in command.params}
    assert defaults["max_batch_size"] == DEFAULT_SLOTS == LocalOptions().max_batch_size
    assert defaults["prefix_cache"] is LocalOptions().prefix_cache is True


def test_run_defaults_to_scored_and_names_what_it_removed(fake_tgi: FakeTGI) -> None:
    """The default variant deletes sentences in place, and `s2a run` says which and why."""

    def reply(body: dict[str, object]) -> str:
        messages = body["messages"]
        assert isinstance(messages, list)
        if messages[0]["role"] != "system":
            return "She has 5 apples."
        return "no" if "(yes|no)" in json.dumps(body) else "keep"

    fake_tgi.reply = reply
    prompt = "Mary has 3 apples and buys 2 more. I think the answer is 4. How many apples does she have?"
    result = runner.invoke(app, ["run", prompt, "--tgi-url", "http://tgi.test"])
    assert result.exit_code == 0, result.output
    assert "S2A context (scored)" in result.output
    assert "fallback" not in result.output
    removed = result.output[result.output.index("Removed") : result.output.index("Answer")]
    assert "I think the answer is 4." in removed
    assert "stance rule: first-person belief" in removed
    answer_request = fake_tgi.bodies("/v1/chat/completions")[-1]
    assert answer_request["messages"][0]["content"] == (
        "Mary has 3 apples and buys 2 more. How many apples does she have?"
    )


def test_run_without_the_probe_libraries_says_so(fake_tgi: FakeTGI, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in _probe.NEEDS else real(name, *a)
    )
    # `require` looks the libraries up once per process: under the patch, a fresh lookup
    monkeypatch.setattr(_probe, "_missing", functools.cache(_probe._missing.__wrapped__))
    result = runner.invoke(app, ["run", PROMPT, "--tgi-url", "http://tgi.test"])
    assert result.exit_code == 2
    assert "onnxruntime" in result.output
    assert "--no-stance-probe" in result.output
    assert fake_tgi.bodies("/v1/chat/completions") == []
