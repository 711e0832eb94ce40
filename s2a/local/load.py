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
import math
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

Route = Literal["generate", "generate_stream", "chat"]
PATHS: dict[Route, str] = {
    "generate": "/generate",
    "generate_stream": "/generate_stream",
    "chat": "/v1/chat/completions",
}
LOOPBACK = "127.0.0.1"
MIB = 1024 * 1024
Kind = Literal["ok", "overloaded", "mismatched", "lost", "other"]
LATENCY_GROUPS: tuple[tuple[str, Kind | None], ...] = (("all", None), ("200", "ok"), ("429", "overloaded"))
Transport = Callable[[], httpx.AsyncBaseTransport]
"""Makes the transport of each client; None in the functions below means real loopback HTTP."""


class NotLoopbackError(ValueError):
    """A URL other than http://127.0.0.1:PORT: this load test sends traffic nowhere else."""


def loopback_url(url: str) -> str:
    """`url` without a trailing slash, if it is `http://127.0.0.1[:PORT]`; else `NotLoopbackError`."""
    parsed = httpx.URL(url)
    if parsed.scheme != "http" or parsed.host != LOOPBACK or parsed.userinfo:
        msg = (
            f"{url!r} is not http://127.0.0.1:PORT: the load test only sends traffic to a server on "
            "this machine's loopback address (start one with `s2a serve`, or leave out --url)"
        )
        raise NotLoopbackError(msg)
    return url.rstrip("/")


@dataclass(frozen=True)
class Probe:
    """How a request carries its nonce `{n}`, and what an answer that belongs to it starts with."""

    prompt: str = "x{n},x{n},x{n},x"
    """The `inputs` of /generate and /generate_stream."""
    answer: str = "{n}"
    """What their generated text starts with."""
    chat_message: str = "Reply with the number {n} and nothing else."
    """The user message of /v1/chat/completions."""
    chat_answer: str = "{n}"
    """What the assistant's reply starts with."""


@dataclass(frozen=True)
class LoadPlan:
    """Who sends what: `clients` concurrent clients, `requests` requests each, at most."""

    clients: int = 64
    requests: int = 4
    routes: tuple[Route, ...] = ("generate",)
    """Requests take these routes in turn."""
    max_new_tokens: int = 3
    backoff: float = 0.25
    """Seconds (scaled by 0.5 to 1.5, fixed per request) a client waits after a 429."""
    deadline: float = 600.0
    """Seconds a round may last; requests unanswered by then are lost."""
    request_timeout: float = 300.0

    def __post_init__(self) -> None:
        if min(self.clients, self.requests, self.max_new_tokens) < 1 or not self.routes:
            msg = f"a load plan needs at least one client, request, new token and route: {self}"
            raise ValueError(msg)

    @property
    def total(self) -> int:
        """Requests the round sends if none is lost."""
        return self.clients * self.requests

    def nonce(self, client: int, index: int) -> str:
        """A number of the same width for every request of the round, none the same."""
        digits = 3
        while 9 * 10 ** (digits - 1) < self.total:
            digits += 1
        return str(10 ** (digits - 1) + client * self.requests + index)

    def route(self, client: int, index: int) -> Route:
        return self.routes[(client * self.requests + index) % len(self.routes)]

    def pause(self, client: int, index: int) -> float:
        """The wait after a 429, spread so the refused clients do not all come back at once."""
        return self.backoff * (0.5 + (37 * (client * self.requests + index) % 100) / 100)


@dataclass(frozen=True)
class Result:
    """One request and what came back."""

    client: int
    index: int
    route: Route
    nonce: str
    status: int | None
    """The HTTP status; None when no response came (lost)."""
    seconds: float
    problem: str | None = None
    """Why the response is neither a 200 that belongs to the request nor a well-formed 429."""

    @property
    def kind(self) -> Kind:
        if self.status is None:
            return "lost"
        if self.problem is None:
            return "ok" if self.status == 200 else "overloaded"
        return "mismatched" if self.status == 200 else "other"


def request_body(route: Route, nonce: str, plan: LoadPlan, probe: Probe) -> dict[str, Any]:
    """A greedy request carrying `nonce`."""
    if route == "chat":
        message = {"role": "user", "content": probe.chat_message.format(n=nonce)}
        return {"messages": [message], "max_tokens": plan.max_new_tokens, "temperature": 0}
    return {"inputs": probe.prompt.format(n=nonce), "parameters": {"max_new_tokens": plan.max_new_tokens}}


def sse_payloads(text: str) -> list[str]:
    """The `data:` payloads of a server-sent-event body."""
    return [line.removeprefix("data:").strip() for line in text.splitlines() if line.startswith("data:")]


def _spelled(tokens: list[dict[str, Any]]) -> str:
    return "".join(token["text"] for token in tokens if not token["special"])


def answer_text(route: Route, response: httpx.Response) -> str:
    """The generated text of a 200, after checking that its parts agree with one another."""
    if route == "chat":
        content: str = response.json()["choices"][0]["message"]["content"]
        return content
    if route == "generate":
        body = response.json()
        tokens = body["details"]["tokens"]
    else:
        events = [json.loads(payload) for payload in sse_payloads(response.text)]
        if errors := [e for e in events if "error" in e]:
            msg = f"the stream has an error event: {errors[0]}"
            raise ValueError(msg)
        if [e["index"] for e in events] != list(range(1, len(events) + 1)):
            msg = f"stream indices are not 1..{len(events)}"
            raise ValueError(msg)
        body, tokens = events[-1], [e["token"] for e in events]
    text: str = body["generated_text"]
    if _spelled(tokens) != text:
        msg = f"the tokens spell {_spelled(tokens)!r}, not the generated text {text!r}"
        raise ValueError(msg)
    return text


def _refusal_problem(route: Route, response: httpx.Response) -> str | None:
    """None if a 429 has TGI's `{"error": ..., "error_type": "overloaded"}` (an event on stream routes)."""
    payloads = sse_payloads(response.text) if route == "generate_stream" else [response.text]
    try:
        body = json.loads(payloads[0]) if len(payloads) == 1 else None
    except ValueError:
        body = None
    if (
        isinstance(body, dict)
        and set(body) == {"error", "error_type"}
        and body["error_type"] == "overloaded"
        and isinstance(body["error"], str)
    ):
        return None
    return f"429 without TGI's overloaded error: {response.text[:200]!r}"


def check(route: Route, nonce: str, response: httpx.Response, probe: Probe) -> str | None:
    """None for a 200 that belongs to the request of `nonce` or a 429 in TGI's shape; else what is wrong."""
    if response.status_code == 429:
        return _refusal_problem(route, response)
    if response.status_code != 200:
        return f"status {response.status_code}: {response.text[:200]!r}"
    try:
        text = answer_text(route, response)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return f"unreadable answer ({exc}): {response.text[:200]!r}"
    expected = (probe.chat_answer if route == "chat" else probe.answer).format(n=nonce)
    if not text.startswith(expected):
        return f"the answer {text!r} is not that of its request (it should start with {expected!r})"
    return None


def _http(base_url: str, timeout: float, transport: Transport | None) -> httpx.AsyncClient:
    # trust_env=False: no proxy from the environment may carry the traffic off this machine.
    return httpx.AsyncClient(
        base_url=base_url, timeout=timeout, trust_env=False, transport=transport() if transport else None
    )


async def ask(http: httpx.AsyncClient, client: int, index: int, plan: LoadPlan, probe: Probe) -> Result:
    """Send one request of the plan and judge its response; a failure to get one is a lost result."""
    route, nonce = plan.route(client, index), plan.nonce(client, index)
    started = time.perf_counter()
    try:
        response = await http.post(PATHS[route], json=request_body(route, nonce, plan, probe))
    except Exception as exc:  # whatever the reason, the request got no response
        problem = f"no response: {type(exc).__name__}: {exc}"
        return Result(client, index, route, nonce, None, time.perf_counter() - started, problem)
    seconds = time.perf_counter() - started
    return Result(
        client, index, route, nonce, response.status_code, seconds, check(route, nonce, response, probe)
    )


async def _one_client(
    base_url: str, client: int, plan: LoadPlan, probe: Probe, *, transport: Transport | None, deadline: float
) -> list[Result]:
    loop = asyncio.get_running_loop()
    results: list[Result] = []
    async with _http(base_url, plan.request_timeout, transport) as http:
        for index in range(plan.requests):
            if loop.time() >= deadline:
                break
            started = time.perf_counter()
            try:
                async with asyncio.timeout_at(deadline):
                    result = await ask(http, client, index, plan, probe)
            except TimeoutError:
                problem = f"no response within the round's deadline of {plan.deadline:.0f} s"
                route, nonce = plan.route(client, index), plan.nonce(client, index)
                results.append(
                    Result(client, index, route, nonce, None, time.perf_counter() - started, problem)
                )
                break
            results.append(result)
            if result.status == 429:
                await asyncio.sleep(min(plan.pause(client, index), max(0.0, deadline - loop.time())))
    return results


async def drive(
    base_url: str, plan: LoadPlan, probe: Probe, transport: Transport | None = None
) -> list[Result]:
    """Run every client of the plan at once; their results in client order."""
    deadline = asyncio.get_running_loop().time() + plan.deadline
    base_url = loopback_url(base_url)
    per_client = await asyncio.gather(
        *(
            _one_client(base_url, client, plan, probe, transport=transport, deadline=deadline)
            for client in range(plan.clients)
        )
    )
    return [result for results in per_client for result in results]


@dataclass(frozen=True)
class Counters:
    """What the server's /metrics says (TGI's names)."""

    admitted: float
    """`tgi_request_count`: requests let in (not refused with 429)."""
    answered: float
    """`tgi_request_success`."""
    overloaded: float
    """`tgi_request_failure{err="overloaded"}`: requests refused with 429."""
    queued: float
    """`tgi_queue_size`: requests waiting for the model."""
    running: float
    """`tgi_batch_current_size`: requests being generated."""


def parse_metrics(text: str) -> Counters:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            name = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            values[name] = sample.value
    return Counters(
        admitted=values.get("tgi_request_count_total", 0.0),
        answered=values.get("tgi_request_success_total", 0.0),
        overloaded=values.get("tgi_request_failure_total{err=overloaded}", 0.0),
        queued=values["tgi_queue_size"],
        running=values["tgi_batch_current_size"],
    )


def rss_bytes(pid: int) -> int:
    """The resident memory of process `pid` (VmRSS in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    msg = f"/proc/{pid}/status has no VmRSS line"
    raise RuntimeError(msg)


@dataclass(frozen=True)
class Latency:
    """Seconds from sending a request to its whole response: nearest-rank percentiles."""

    count: int
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ordered = sorted(seconds)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan)

        def rank(q: float) -> float:
            return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

        return cls(len(ordered), rank(0.50), rank(0.95), ordered[-1])

    def to_json(self) -> dict[str, float | None]:
        """The fields, with null for the percentiles of no requests (JSON has no NaN)."""
        return {key: None if math.isnan(value) else value for key, value in asdict(self).items()}


@dataclass(frozen=True)
class RoundReport:
    """One round: every client's results, the server's counters and memory around it."""

    results: tuple[Result, ...]
    seconds: float
    before: Counters
    after: Counters
    rss_before: int | None
    rss_after: int | None

    def count(self, kind: Kind) -> int:
        return sum(1 for result in self.results if result.kind == kind)

    def problems(self) -> list[Result]:
        return [result for result in self.results if result.kind not in {"ok", "overloaded"}]

    def latency(self, kind: Kind | None = None) -> Latency:
        """Over the answered requests, or those of one kind."""
        chosen = [r for r in self.results if r.status is not None and kind in {None, r.kind}]
        return Latency.of([r.seconds for r in chosen])

    def summary(self) -> dict[str, Any]:
        counts = {kind: self.count(kind) for kind in get_args(Kind)}
        return {
            "sent": len(self.results),
            **counts,
            "seconds": self.seconds,
            "latency": {name: self.latency(kind).to_json() for name, kind in LATENCY_GROUPS},
            "server_before": asdict(self.before),
            "server_after": asdict(self.after),
            "rss_before": self.rss_before,
            "rss_after": self.rss_after,
        }


async def run_round(
    base_url: str, plan: LoadPlan, probe: Probe, *, pid: int | None = None, transport: Transport | None = None
) -> RoundReport:
    """Every client of the plan once, with the server's /metrics and memory read before and after."""
    base_url = loopback_url(base_url)
    async with _http(base_url, 60.0, transport) as admin:
        before = parse_metrics((await admin.get("/metrics")).text)
        rss_before = rss_bytes(pid) if pid is not None else None
        started = time.perf_counter()
        results = await drive(base_url, plan, probe, transport)
        seconds = time.perf_counter() - started
        after = parse_metrics((await admin.get("/metrics")).text)
        rss_after = rss_bytes(pid) if pid is not None else None
    return RoundReport(tuple(results), seconds, before, after, rss_before, rss_after)


@dataclass(frozen=True)
class LoadReport:
    """A warm-up request alone, the rounds, and a request alone after them (the server still answers)."""

    plan: LoadPlan
    warm_up: Result
    rounds: tuple[RoundReport, ...]
    final: Result

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": asdict(self.plan),
            "warm_up": asdict(self.warm_up),
            "rounds": [{**r.summary(), "results": [asdict(x) for x in r.results]} for r in self.rounds],
            "final": asdict(self.final),
        }


async def alone(base_url: str, plan: LoadPlan, probe: Probe, transport: Transport | None = None) -> Result:
    """One /generate request with nothing else in flight (nonce of client 0, request 0)."""
    solo = replace(plan, routes=("generate",))
    async with _http(loopback_url(base_url), plan.request_timeout, transport) as http:
        return await ask(http, 0, 0, solo, probe)


async def load_test(
    base_url: str,
    plan: LoadPlan,
    probe: Probe | None = None,
    *,
    rounds: int = 2,
    pid: int | None = None,
    transport: Transport | None = None,
) -> LoadReport:
    """Warm up, run `rounds` identical rounds, then ask once more alone."""
    probe = probe or Probe()
    warm_up = await alone(base_url, plan, probe, transport)
    reports = [await run_round(base_url, plan, probe, pid=pid, transport=transport) for _ in range(rounds)]
    return LoadReport(plan, warm_up, tuple(reports), await alone(base_url, plan, probe, transport))


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
