"""`s2a eval`: the S2A paper's experiments, and the helpers it shares with `s2a bench`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from s2a._errors import S2AError
from s2a.cli._common import ModelPath, TgiUrl, _fail, _server
from s2a.tgi import Decoding

if TYPE_CHECKING:
    from s2a.evaluation.methods import ChatModel, Peer
    from s2a.evaluation.runner import ExampleResult, Scorer
    from s2a.evaluation.task import Task

DEFAULT_CONCURRENCY = 4
"""Requests `s2a eval` and `s2a bench` keep in flight when the server does not give its batch size."""


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
            "keep_original, instructed, extractive, scored), scored_no_probe (scored without its stance "
            "probe), llm_chain_extractor, llm_chain_filter, "
            "llm_rerank; default baseline,oracle,separated. hotpotqa has its own: none, oracle, "
            "bm25_k2..bm25_k6, s2a_node, s2a_compressor (and _keep_list, _sentence, "
            "_keep_list_sentence, _relevance), llm_rerank_top2..4, llm_chain_filter, "
            "llm_chain_extractor, llm_listwise_rerank; default none, oracle, bm25_k2..6, s2a_node.",
            show_default=False,
        ),
    ] = None,
    data: EvalData = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N records (file order).", min=1)] = None,
    questions: Annotated[
        int | None,
        typer.Option(
            help="Only the records of N questions spread evenly over the file, each under every "
            "phrasing (tasks with question groups: trivia_opinion and the opinion_phrasings sets).",
            min=1,
        ),
    ] = None,
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
        records = spec.load(_data_file(data, spec), limit, questions)
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
