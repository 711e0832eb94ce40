"""Starting the local server: in the foreground (`s2a serve`) or in-process for one command."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from s2a.local.cpu import check_cpu
from s2a.local.guard import DEFAULT_PAYLOAD_LIMIT, check_api_key
from s2a.local.llama import DEFAULT_SLOTS, LlamaEngine
from s2a.local.model import DEFAULT_MODEL_ID, MODEL_SHA256, cache_dir, resolve_model_path
from s2a.local.server import ServerSettings, create_app


class LocalOptions(BaseModel):
    """How to run the local model (the `s2a serve` flags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: Path | None = None
    """A GGUF file instead of the embedded default model."""
    max_concurrent_requests: int = Field(default=128, ge=1)
    """Requests in flight (running and queued) beyond this get 429."""
    max_input_tokens: int = Field(default=7168, ge=1)
    """Longest accepted prompt, in tokens."""
    max_total_tokens: int = Field(default=8192, ge=2)
    """Prompt plus generated tokens per request; the model context."""
    threads: int | None = Field(default=None, ge=1)
    """CPU threads for llama.cpp; None uses all cores."""
    max_batch_size: int = Field(default=DEFAULT_SLOTS, ge=1)
    """Requests decoded together (llama.cpp's slots); more wait their turn (TGI's `--max-batch-size`)."""
    prefix_cache: bool = True
    """Reuse the KV cache of an earlier prompt that shares a prefix; off makes greedy replies
    repeatable byte for byte (with `max_batch_size=1`)."""
    api_key: SecretStr | None = None
    """Bearer key every route but `GET /health` requires (TGI's `--api-key`); None: no key."""

    @field_validator("api_key")
    @classmethod
    def _carriable(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            check_api_key(key.get_secret_value())
        return key

    payload_limit: int = Field(default=DEFAULT_PAYLOAD_LIMIT, ge=1)
    """Largest accepted request body in bytes (TGI's `--payload-limit`); 413 beyond."""


def _resolve_with_progress(model_path: Path | None, console: Console) -> Path:
    with Progress(
        TextColumn("[bold]Assembling the default model"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("assemble", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        path = resolve_model_path(model_path, progress=report)
    console.print(f"Model: {path}" + ("" if model_path else f" (cached in {cache_dir()})"), highlight=False)
    return path


def build_app(options: LocalOptions, console: Console) -> FastAPI:
    """Check the CPU, resolve (assemble and verify) the model, then build the app that loads it."""
    check_cpu()
    path = _resolve_with_progress(options.model_path, console)
    is_default = options.model_path is None and path.parent == cache_dir()
    settings = ServerSettings(
        model_id=DEFAULT_MODEL_ID if is_default else path.name,
        model_sha=MODEL_SHA256 if is_default else None,
        max_concurrent_requests=options.max_concurrent_requests,
        max_input_tokens=options.max_input_tokens,
        max_total_tokens=options.max_total_tokens,
        api_key=options.api_key,
        payload_limit=options.payload_limit,
        max_batch_size=options.max_batch_size,
    )

    def load() -> LlamaEngine:
        return LlamaEngine(
            path,
            n_ctx=options.max_total_tokens,
            slots=options.max_batch_size,
            n_threads=options.threads,
            prefix_cache=options.prefix_cache,
        )

    return create_app(settings, load)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


KEEP_ALIVE_SECONDS = 75
"""How long an idle client connection stays open. Longer than httpx's pool keeps one (5 s,
as huggingface_hub's client uses it): at uvicorn's own 5 s, a client reusing a connection
the moment the server closes it got `Connection reset by peer`. TGI's server does not close
idle connections on a timer at all."""


def uvicorn_config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    """The server's settings: `app` on `host:port`, idle connections kept `KEEP_ALIVE_SECONDS`."""
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_keep_alive=KEEP_ALIVE_SECONDS
    )


def serve(options: LocalOptions, host: str, port: int, console: Console) -> None:
    """Run the server in the foreground until interrupted."""
    app = build_app(options, console)
    console.print(f"Serving TGI's API on http://{host}:{port} (the model loads now; /health says when ready)")
    if options.api_key is not None:
        console.print("Every route but GET /health needs `Authorization: Bearer <the API key>`.")
    elif not _is_loopback(host):
        console.print(
            f"[bold yellow]Warning:[/] {host} is not loopback and there is no API key: anyone who can "
            "reach this port can use the model. Set S2A_API_KEY."
        )
    try:
        uvicorn.Server(uvicorn_config(app, host, port, "info")).run()
    finally:
        app.state.runtime.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_healthy(base_url: str, timeout: float, console: Console | None = None) -> None:
    """Poll `/health` until it answers 200.

    Raises:
        RuntimeError: the model failed to load, or `timeout` seconds passed.

    """
    deadline = time.monotonic() + timeout
    status = console.status("Loading the model...") if console else contextlib.nullcontext()
    with status, httpx.Client(base_url=base_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                response = client.get("/health")
                if response.status_code == 200:
                    return
                error = response.json().get("error", "")
                if error.startswith("model failed to load"):
                    raise RuntimeError(error)
            time.sleep(0.2)
    msg = f"the local server at {base_url} was not healthy after {timeout:.0f} s"
    raise RuntimeError(msg)


@contextlib.contextmanager
def local_server(options: LocalOptions, console: Console, timeout: float = 600.0) -> Iterator[str]:
    """Run the local server in this process on a free loopback port; yield its base URL."""
    app = build_app(options, console)
    port = _free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, "warning"))
    thread = threading.Thread(target=server.run, name="s2a-local-server", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, timeout, console)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.runtime.close()
