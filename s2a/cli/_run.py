"""`s2a run` (S2A on one prompt, then the answer) and `s2a serve` (the local model over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from s2a._client import answer, run_s2a, server_window
from s2a._errors import S2ACallError, S2AError
from s2a._faults import RetryPolicy, call_with_retries
from s2a._probe import LABEL as PROBE_LABEL
from s2a._sentences import sentence_spans
from s2a._types import S2AInput, S2AResult
from s2a.cli._common import ModelPath, TgiUrl, _fail, _local, _server
from s2a.tgi import Decoding, inference_client
from s2a.variants import S2AConfig

if TYPE_CHECKING:
    from huggingface_hub import InferenceClient


def _read_text(text: str | None, file: Path | None) -> str:
    either = "give the prompt either as TEXT or with --file, not both"
    if file is not None:
        if text is not None:
            raise typer.BadParameter(either)
        return file.read_text(encoding="utf-8")
    if text is None:
        raise typer.BadParameter(either)
    return text


def _window(client: InferenceClient, max_new_tokens: int, retry: RetryPolicy) -> int | None:
    """The server's prompt budget for one S2A call; `None` if it has no TGI `/info`."""
    try:
        return call_with_retries(lambda: server_window(client, max_new_tokens), retry)
    except S2ACallError as exc:
        if exc.failure.status == 404:
            return None
        raise


def _ask(
    url: str,
    prompt: str,
    config: S2AConfig,
    decoding: Decoding,
    *,
    api_key: SecretStr | None,
    retry: RetryPolicy,
) -> tuple[S2AResult, str]:
    client = inference_client(url, api_key=api_key)
    try:
        window = _window(client, decoding.max_new_tokens, retry)
        result = run_s2a(client, S2AInput(context=prompt), config, decoding, retry, window_tokens=window)
        return result, answer(client, result.prompt, decoding, retry)
    except S2ACallError as exc:
        _fail(f"the model server at {url}: {exc}")
    except S2AError as exc:
        _fail(str(exc))
    except httpx.HTTPError as exc:
        _fail(f"the model server at {url} failed: {exc}. Check that it is running and reachable.")


ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="S2A_API_KEY",
        show_default=False,
        help="The TGI server's API key (its --api-key); prefer the environment variable.",
    ),
]


def run(
    text: Annotated[str | None, typer.Argument(help="The whole user prompt (question and context).")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the prompt from this file.", exists=True, dir_okay=False),
    ] = None,
    variant: Annotated[
        str,
        typer.Option(
            help="scored (the default), extractive, separated, unseparated, keep_original, instructed."
        ),
    ] = "scored",
    focus: Annotated[str, typer.Option(help="objectivity, relevance or both.")] = "both",
    fallback: Annotated[str, typer.Option(help="original (keep the input, flagged) or raise.")] = "original",
    stance_probe: Annotated[
        bool,
        typer.Option(
            help="scored: also drop what a probe over a small sentence embedder reads as an opinion "
            "(docs/variants.md)."
        ),
    ] = True,
    tgi_url: TgiUrl = None,
    model_path: ModelPath = None,
    max_new_tokens: Annotated[int, typer.Option(help="Token budget of each model call.", min=1)] = 512,
    api_key: ApiKey = None,
    attempts: Annotated[
        int,
        typer.Option(
            help="Calls per step before giving up (timeouts, connection errors, 429, 502-504).", min=1
        ),
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Run S2A on a prompt: print the regenerated context, then the answer."""
    prompt = _read_text(text, file)
    try:
        config = S2AConfig.model_validate(
            {"variant": variant, "focus": focus, "fallback": fallback, "stance_probe": stance_probe}
        )
    except (ValueError, ImportError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    decoding = Decoding(max_new_tokens=max_new_tokens)
    with _server(tgi_url, model_path) as url:
        key = SecretStr(api_key) if api_key and tgi_url else None  # the embedded server needs none
        result, reply = _ask(url, prompt, config, decoding, api_key=key, retry=RetryPolicy(attempts=attempts))
    if as_json:
        typer.echo(json.dumps({**result.model_dump(mode="json"), "answer": reply}, ensure_ascii=False))
        return
    console = Console()
    title = f"S2A context ({result.variant})" + (f" - fallback: {result.fallback}" if result.fallback else "")
    if result.kept is not None:  # extractive, scored: the user's text with sentences deleted in place
        shown = result.prompt
    else:
        shown = f"{result.context}\n\nQuestion: {result.question}" if result.question else result.prompt
    console.print(Panel(Text(shown.strip()), title=title, title_align="left"))
    removed = _removed(prompt, result, config)
    if removed:
        console.print(Panel(Text("\n".join(removed)), title="Removed", title_align="left"))
    console.print(Panel(Text(reply), title="Answer", title_align="left"))


def _removed(prompt: str, result: S2AResult, config: S2AConfig) -> list[str]:
    """The sentences an in-place variant deleted, each with why (`extractive`, `scored`)."""
    if result.kept is None or result.fallback is not None:
        return []
    lines = []
    for number, span in enumerate(sentence_spans(prompt), start=1):
        if number in result.kept:
            continue
        if result.stance and number in result.stance:
            rule = result.stance[number]
            why = rule if rule.startswith(PROBE_LABEL) else f"stance rule: {rule}"
        elif (
            opinion := (result.opinions or {}).get(number)
        ) is not None and opinion >= config.opinion_threshold:
            why = f"opinion test: P(opinion) {opinion:.2f}"
        elif result.scores and number in result.scores:
            why = f"relevance: P(keep) {result.scores[number]:.2f}"
        else:
            why = "not kept"
        lines.append(f"{prompt[span.start : span.end]}  ({why})")
    return lines


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
    max_batch_size: Annotated[
        int, typer.Option(help="Requests decoded together; more wait their turn (TGI's flag).", min=1)
    ] = 4,
    prefix_cache: Annotated[
        bool,
        typer.Option(
            help="Reuse the KV cache of earlier prompts that share a prefix. "
            "With --no-prefix-cache and --max-batch-size 1, greedy replies repeat byte for byte."
        ),
    ] = True,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="S2A_API_KEY",
            show_default=False,
            help="Require `Authorization: Bearer KEY` on every route but GET /health (TGI's --api-key). "
            "Prefer the environment variable: a command line shows in `ps`.",
        ),
    ] = None,
    payload_limit: Annotated[
        int, typer.Option(help="Largest request body in bytes; larger ones get 413 (TGI's default).", min=1)
    ] = 2_000_000,
) -> None:
    """Serve the local model over text-generation-inference's HTTP API (TGI 3.3.6)."""
    if max_input_tokens >= max_total_tokens:
        msg = f"--max-input-tokens ({max_input_tokens}) must be below --max-total-tokens ({max_total_tokens})"
        raise typer.BadParameter(msg)
    local = _local()
    try:
        options = local.LocalOptions(
            model_path=model_path,
            max_concurrent_requests=max_concurrent_requests,
            max_input_tokens=max_input_tokens,
            max_total_tokens=max_total_tokens,
            threads=threads,
            max_batch_size=max_batch_size,
            prefix_cache=prefix_cache,
            api_key=api_key,
            payload_limit=payload_limit,
        )
    except ValidationError as exc:  # the API key: typer checked the rest
        raise typer.BadParameter(
            "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from None
    try:
        local.serve(options, host, port, Console(stderr=True))
    except S2AError as exc:
        _fail(str(exc))
