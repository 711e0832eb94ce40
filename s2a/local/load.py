"""A load test of the local server: many concurrent clients, a bounded number of requests each.

    python benchmarks/load_local_server.py [--clients 64] [--requests 4] [--max-concurrent-requests 8]
        [--routes generate,generate_stream,chat] [--rounds 2] [--url http://127.0.0.1:PORT] [--json PATH]

Without --url it starts `s2a serve` (the default model, or --model-path) on a free loopback port
with --max-concurrent-requests, and stops it at the end. Every client has its own
httpx.AsyncClient; all start at once, and a client that gets 429 waits about --backoff seconds
before its next request.

Each request carries a nonce, a number no other request of the round has, in a prompt whose
greedy continuation is that number (`x482,x482,x482,x` -> `482`; Qwen2.5 spends one token per
digit): an answer belongs to its request when it starts with the request's own nonce.

It sends traffic only to 127.0.0.1 and stops by itself: each client sends at most --requests
requests, and a round ends after --deadline seconds, a request still unanswered then being lost.
Per round it prints requests sent, 200s, 429s, other answers, 200s that do not belong to their
request (mismatched), requests with no response (lost), latencies, what the server's /metrics
counted, and the server's resident memory (VmRSS) before and after, when it knows the server's
process (it started it, or --server-pid). It exits with status 1 if any answer was wrong or lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from s2a.local.load_driver import LATENCY_GROUPS, MIB, LoadReport, load_test
from s2a.local.load_protocol import LOOPBACK, PATHS, LoadPlan, loopback_url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"`s2a serve` exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
            raise RuntimeError(msg)
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/health", timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.5)
    msg = f"`s2a serve` was not healthy within {timeout:.0f} s; its log is {log}"
    raise RuntimeError(msg)


@contextlib.contextmanager
def local_server(
    max_concurrent_requests: int, log: Path, model_path: Path | None = None, startup_timeout: float = 600.0
) -> Iterator[tuple[str, int]]:
    """`s2a serve` on a free loopback port until the block ends; yields its URL and process id."""
    port = _free_port()
    command = [sys.executable, "-m", "s2a", "serve", "--host", LOOPBACK, "--port", str(port)]
    command += ["--max-concurrent-requests", str(max_concurrent_requests)]
    command += ["--model-path", str(model_path)] if model_path else []
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        base_url = f"http://{LOOPBACK}:{port}"
        _wait_healthy(process, base_url, log, startup_timeout)
        yield base_url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MIB:.0f}"


def print_report(report: LoadReport, capacity: object, console: Console) -> None:
    plan = report.plan
    console.print(
        f"{plan.clients} concurrent clients x {plan.requests} requests, routes {', '.join(plan.routes)}, "
        f"max_new_tokens {plan.max_new_tokens}, server capacity (max_concurrent_requests) {capacity}"
    )
    table = Table("round", "sent", "200", "429", "other", "mismatched", "lost", "wall s", "RSS before MiB")
    table.add_column("RSS after MiB")
    latencies = Table("round", "answers", "count", "p50 s", "p95 s", "max s")
    for number, r in enumerate(report.rounds, start=1):
        counts = [r.count(kind) for kind in ("ok", "overloaded", "other", "mismatched", "lost")]
        table.add_row(
            str(number),
            str(len(r.results)),
            *map(str, counts),
            f"{r.seconds:.1f}",
            _mib(r.rss_before),
            _mib(r.rss_after),
        )
        for name, kind in LATENCY_GROUPS:
            lat = r.latency(kind)
            latencies.add_row(
                str(number), name, str(lat.count), f"{lat.p50:.3f}", f"{lat.p95:.3f}", f"{lat.max:.3f}"
            )
    console.print(table, latencies)
    for number, r in enumerate(report.rounds, start=1):
        served = r.after.admitted - r.before.admitted, r.after.overloaded - r.before.overloaded
        console.print(
            f"round {number}, the server's /metrics: {served[0]:.0f} admitted, {served[1]:.0f} refused "
            f"(overloaded); afterwards {r.after.queued:.0f} queued, {r.after.running:.0f} running"
        )
    for label, alone_result in (("warm-up", report.warm_up), ("after the rounds", report.final)):
        console.print(f"{label}, a request alone: {alone_result.status} {alone_result.problem or 'belongs'}")
    for problem in [p for r in report.rounds for p in r.problems()][:10]:
        console.print(
            f"[red]client {problem.client} request {problem.index} ({problem.route}):[/] {problem.problem}"
        )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running server (http://127.0.0.1:PORT); default: start one")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's process, to read its memory")
    parser.add_argument("--model-path", type=Path, help="GGUF for the server this script starts")
    parser.add_argument("--max-concurrent-requests", type=int, default=8, help="of the server it starts")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=4, help="per client, at most")
    parser.add_argument("--routes", default="generate", help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the nonce's digits")
    parser.add_argument("--backoff", type=float, default=0.25, help="seconds a client waits after a 429")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds a round may last")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    routes = tuple(r.strip() for r in args.routes.split(",") if r.strip())
    if unknown := [r for r in routes if r not in PATHS]:
        parser.error(f"unknown route(s) {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    try:
        if args.url:
            args.url = loopback_url(args.url)
        digits = len(LoadPlan(clients=args.clients, requests=args.requests).nonce(0, 0))
        args.plan = LoadPlan(
            clients=args.clients,
            requests=args.requests,
            routes=routes,
            max_new_tokens=args.max_new_tokens or digits,
            backoff=args.backoff,
            deadline=args.deadline,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.plan.max_new_tokens < digits:
        parser.error(f"--max-new-tokens must be at least {digits}: the answer has to spell the whole nonce")
    return args


def main() -> None:
    args = _arguments()
    console = Console()
    if not console.is_terminal:  # a log or a pipe: keep the table's columns whole
        console.width = 132
    with contextlib.ExitStack() as stack:
        if args.url:
            base_url, pid = args.url, args.server_pid
        else:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "serve.log"
            console.print(
                f"Starting `s2a serve --max-concurrent-requests {args.max_concurrent_requests}` ..."
            )
            base_url, pid = stack.enter_context(
                local_server(args.max_concurrent_requests, log, args.model_path)
            )
        capacity = httpx.get(f"{base_url}/info", timeout=30, trust_env=False).json()[
            "max_concurrent_requests"
        ]
        report = asyncio.run(load_test(base_url, args.plan, rounds=args.rounds, pid=pid))
    print_report(report, capacity, console)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    bad = [p for r in report.rounds for p in r.problems()] + [
        x for x in (report.warm_up, report.final) if x.problem is not None
    ]
    if bad:
        console.print(f"[red]{len(bad)} request(s) lost or answered wrongly[/]")
        sys.exit(1)


if __name__ == "__main__":
    main()
