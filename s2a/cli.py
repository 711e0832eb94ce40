"""The `s2a` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import httpx
import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from s2a._client import answer, run_s2a
from s2a._errors import S2AError
from s2a._types import S2AInput
from s2a.tgi import Decoding, inference_client
from s2a.variants import S2AConfig

app = typer.Typer(
    name="s2a",
    help="System 2 Attention: regenerate the context, then answer from it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_NO_SERVER = (
    "no model server given. Pass --tgi-url URL (or set S2A_TGI_URL) with the address of a "
    "text-generation-inference server, e.g. --tgi-url http://127.0.0.1:8080. "
    "The embedded local default model is not available in this version."
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


@app.command()
def run(
    text: Annotated[str | None, typer.Argument(help="The whole user prompt (question and context).")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the prompt from this file.", exists=True, dir_okay=False),
    ] = None,
    variant: Annotated[
        str, typer.Option(help="separated, unseparated, keep_original, instructed, extractive.")
    ] = ("separated"),
    focus: Annotated[str, typer.Option(help="objectivity, relevance or both.")] = "both",
    fallback: Annotated[str, typer.Option(help="original (keep the input, flagged) or raise.")] = "original",
    tgi_url: Annotated[
        str | None, typer.Option("--tgi-url", envvar="S2A_TGI_URL", help="Base URL of a TGI server.")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Token budget of each model call.", min=1)] = 512,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Run S2A on a prompt: print the regenerated context, then the answer."""
    prompt = _read_text(text, file)
    if tgi_url is None:
        raise typer.BadParameter(_NO_SERVER, param_hint="--tgi-url")
    try:
        config = S2AConfig.model_validate({"variant": variant, "focus": focus, "fallback": fallback})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    decoding = Decoding(max_new_tokens=max_new_tokens)
    client = inference_client(tgi_url)
    try:
        result = run_s2a(client, S2AInput(context=prompt), config, decoding)
        reply = answer(client, result.prompt, decoding)
    except S2AError as exc:
        _fail(str(exc))
    except httpx.HTTPError as exc:
        _fail(f"the model server at {tgi_url} failed: {exc}. Check that it is running and reachable.")
    if as_json:
        typer.echo(json.dumps({**result.model_dump(mode="json"), "answer": reply}, ensure_ascii=False))
        return
    console = Console()
    title = f"S2A context ({result.variant})" + (f" - fallback: {result.fallback}" if result.fallback else "")
    console.print(Panel(Text(result.prompt), title=title, title_align="left"))
    console.print(Panel(Text(reply), title="Answer", title_align="left"))
