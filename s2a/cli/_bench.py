"""`s2a bench`: what S2A costs, in tokens and seconds per method, overhead and throughput."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from s2a._errors import S2AError
from s2a.cli._common import ModelPath, TgiUrl, _fail, _server
from s2a.cli._eval import DEFAULT_CONCURRENCY, EvalData, _data_file, _methods, _peers, _task


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        msg = f"{text!r} is not a comma-separated list of positive integers, e.g. 1,4,16"
        raise typer.BadParameter(msg, param_hint="--concurrency-levels")
    return levels


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
