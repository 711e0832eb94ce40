from __future__ import annotations

import ast
import runpy
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import langchain_s2a
import llamaindex_s2a
import s2a
from s2a import adapter
from s2a.evaluation import frameworks
from tests.fake_tgi import FakeTGI, plausible_reply, serve

# The RAG and agent examples run against the real server in tests/integration/test_examples.py.
ADAPTERS = {"langchain_s2a", "llamaindex_s2a"}
EXAMPLES = [Path(__file__).resolve().parents[2] / "examples" / "opinionated_question.py"]


def test_core_exports() -> None:
    assert sorted(s2a.__all__) == sorted(
        [
            "DEFAULT_PROMPTS", "DEFAULT_RETRY", "NO_RETRY", "VARIANTS", "ChatMessage", "Decoding",
            "FallbackPolicy", "Focus", "Fusion", "RetryPolicy", "S2ACallError", "S2AConfig", "S2AConfigError",
            "S2AError", "S2AInput", "S2AParseError", "S2APrompts", "S2ARequest", "S2AResult", "StepCost",
            "S2ATimeoutError", "S2AUnavailableError", "TokenUsage", "Variant", "VariantName", "finish",
            "history_input", "prepare", "split_sentences",
        ]
    )  # fmt: skip
    assert all(hasattr(s2a, name) for name in s2a.__all__)


def test_langchain_exports() -> None:
    assert sorted(langchain_s2a.__all__) == sorted(
        [
            "ChatHistory", "ContextQuestion", "S2ADocumentCompressor", "S2AFilterRecord", "S2AMiddleware",
            "S2ARunnable", "S2ARunnableInput", "S2AToolArgs", "create_s2a_chain", "openai_chat_model",
            "tgi_chat_model",
        ]
    )  # fmt: skip
    assert all(hasattr(langchain_s2a, name) for name in langchain_s2a.__all__)


def test_the_agent_middleware_loads_on_first_use() -> None:
    # `langchain` and `langgraph` come with the `langchain-agents` extra only.
    agents = "any(m == 'langchain' or m.startswith(('langchain.', 'langgraph')) for m in sys.modules)"
    code = f"import sys, langchain_s2a; print({agents})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.strip() == "False"
    code = (
        "import sys; sys.modules['langgraph'] = None\n"
        "import langchain_s2a\n"
        "try:\n    langchain_s2a.S2AMiddleware\nexcept ImportError as error:\n    print(error)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.strip() == (
        "S2AMiddleware needs LangChain's agents (langgraph is missing): pip install 's2a[langchain-agents]'"
    )


def test_llamaindex_exports() -> None:
    assert sorted(llamaindex_s2a.__all__) == sorted(
        [
            "S2ANodePostprocessor",
            "S2ASelectionEndEvent",
            "S2ASelectionStartEvent",
            "openai_like_llm",
            "tgi_llm",
        ]
    )
    assert all(hasattr(llamaindex_s2a, name) for name in llamaindex_s2a.__all__)


def test_adapters_do_not_import_each_other() -> None:
    for module, other in (("langchain_s2a", "llama_index"), ("llamaindex_s2a", "langchain")):
        code = f"import sys, {module}; print(any(m.startswith('{other}') for m in sys.modules))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
        assert out.stdout.strip() == "False", module


def test_core_imports_no_framework() -> None:
    code = "import sys, s2a, s2a.cli; print(any(m.startswith(('langchain', 'llama_')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_run(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(FakeTGI(reply=plausible_reply)):
        runpy.run_path(str(path), run_name="__main__")
    assert "S2A answer:" in capsys.readouterr().out


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_imports_no_adapter() -> None:
    core = Path(s2a.__file__).parent
    reaching = {
        str(path.relative_to(core)): sorted(n for n in _imported_modules(path) if n.split(".")[0] in ADAPTERS)
        for path in core.rglob("*.py")
    }
    assert {file: names for file, names in reaching.items() if names} == {}


def _private_core(module: str) -> bool:
    """`s2a._x` or `s2a.y._z`: a core module that is not public."""
    top, *rest = module.split(".")
    return top == "s2a" and any(part.startswith("_") for part in rest)


def test_the_adapters_import_the_core_only_through_its_public_modules() -> None:
    private = {}
    for package in (langchain_s2a, llamaindex_s2a):
        root = Path(str(package.__file__)).parent
        for path in root.rglob("*.py"):
            names = sorted(n for n in _imported_modules(path) if _private_core(n))
            if names:
                private[f"{root.name}/{path.relative_to(root)}"] = names
    assert private == {}


def test_the_adapter_seam_exports_what_the_adapters_use() -> None:
    assert sorted(adapter.__all__) == sorted(
        [
            "ModelCall", "Outcome", "Plan", "Reply", "ScoredCalls", "StepPlan", "TokenLogprob", "arun_plan",
            "lazy_attribute", "plan_step", "redact", "run_plan", "token_logprobs", "token_usage",
        ]
    )  # fmt: skip
    assert all(hasattr(adapter, name) for name in adapter.__all__)


def test_the_harness_finds_each_adapters_evaluation_module() -> None:
    points = {p.name: p.value for p in entry_points(group=frameworks.GROUP)}
    assert points == {"langchain": "langchain_s2a.evaluation", "llamaindex": "llamaindex_s2a.evaluation"}


def test_a_method_no_adapter_serves_is_named() -> None:
    with pytest.raises(frameworks.FrameworkMissingError, match=r"filters \(llm_magic\) need the langchain"):
        frameworks.hotpotqa_filters("http://tgi.test:8080", ["oracle", "llm_magic"])
