"""The load test's async driver and its reports: clients, rounds, the server's counters and memory.

Every client has its own httpx.AsyncClient and sends its requests in turn (waiting after a 429);
a round runs every client at once with the server's /metrics and resident memory read around it;
the load test is a request alone, the rounds, and a request alone again. `s2a.local.load` has
the whole load test's description.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, get_args

import httpx
from prometheus_client.parser import text_string_to_metric_families

from s2a.local.load_protocol import PATHS, Kind, LoadPlan, Probe, Result, check, loopback_url, request_body

MIB = 1024 * 1024
LATENCY_GROUPS: tuple[tuple[str, Kind | None], ...] = (("all", None), ("200", "ok"), ("429", "overloaded"))
Transport = Callable[[], httpx.AsyncBaseTransport]
"""Makes the transport of each client; None in the functions below means real loopback HTTP."""


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
