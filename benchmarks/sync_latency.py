"""What the gateway adds to a synchronous chat completion and to a streamed one, under real token pacing.

Runs on loopback in one go: the local stack, a fake model server and the real provider agent, each its own
process. The same requests go (interleaved) to the model server, to the provider agent and through the
gateway, so the differences are each layer's own cost.

Streaming is measured the way a chat UI feels it: the model server pauses between events as a real model
does between tokens (10 ms and 200 ms), the client reads every stream to its end on a kept-alive
connection, and time to first token is the time to the first `data:` line (not the first body bytes).
Streams also go through a bare TCP relay in front of the agent (benchmarks/_byte_relay.py), for scale:
what one more process hop costs on this machine with no work of its own, next to what the gateway adds.
Under the streaming table, the gateway's own time before its call to the agent, stream by stream, from the
`Server-Timing` header it puts on every stream, and how much CPU time the host took from this machine
while it ran (steal, from /proc/stat: on a shared virtual machine it moves the p99 figures between runs).
For the first-token p99 targets it also prints a bootstrap interval of what the gateway adds, and whether
the run decides the target at all: a p99 of 120 streams is its second-slowest stream.
Between two requests the gateway idles while the client reads the previous answer, so caches expire as
they do for real users. Also reports the API handler's DynamoDB calls on the warm path (none: the
rate-limit admission comes from the instance's lease), what the admission costs as requests see it and
how many DynamoDB calls it made in all against the same embedded AWS (a lease, one UpdateItem, against a
conditional UpdateItem per request before), and the handler's cold import time.

    .venv/bin/python benchmarks/sync_latency.py [--requests 600] [--stream-rounds 40] [--only streaming]
        [--pacing-ms 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _processes import ROOT, CpuTimes, cpu_times, percentile, running_byte_relay, running_stack, steal_report

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
# Four tokens: a role chunk, four content chunks and a finish chunk, paced, then [DONE].
STREAMED_CHAT = {**CHAT, "max_tokens": 4, "stream": True}
PACINGS_MS = (10, 200)
# "bare relay": benchmarks/_byte_relay.py in front of the agent, copying bytes and nothing else. What it adds
# over the agent is what one more Python process on the path costs by itself on this machine (two more
# loopback hops, two more wake-ups), measured in the same run: the rest of the gateway's figure is its work.
PATHS = ("model server", "agent", "bare relay", "gateway")


def timed_post(client: httpx.Client, url: str, headers: dict, body: dict) -> float:
    started = time.perf_counter()
    response = client.post(url, json=body, headers=headers)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


@dataclass
class Stream:
    arrivals: list[float]  # seconds from sending the request to each `data:` line but the final [DONE]
    # The gateway's Server-Timing (seconds): `gateway`, from the request's arrival to its call to the agent
    # sent; `provider`, from there to the agent's first byte. Empty for the other paths.
    timing: dict[str, float]


def event_arrivals(
    client: httpx.Client, url: str, headers: dict, body: dict, mark: Callable[[str], None] | None = None
) -> Stream:
    """One stream, read to the end; `mark("BEGIN")` and `mark("FIRST")`, if given, at its start and at its
    first `data:` line (first_token_trace.py writes them into a kernel trace)."""
    started = time.perf_counter()
    if mark is not None:
        mark("BEGIN")
    arrivals = []
    with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data:") and line != "data: [DONE]":
                if mark is not None and not arrivals:
                    mark("FIRST")
                arrivals.append(time.perf_counter() - started)
    return Stream(arrivals, server_timing(response.headers.get("server-timing", "")))


def server_timing(value: str) -> dict[str, float]:
    """`gateway;dur=0.412, provider;dur=3.104` -> {"gateway": 0.000412, "provider": 0.003104} (seconds)."""
    durations = {}
    for metric in filter(None, (part.strip() for part in value.split(","))):
        name, *params = (param.strip() for param in metric.split(";"))
        for param in params:
            key, _, number = param.partition("=")
            if key == "dur":
                durations[name] = float(number) / 1000
    return durations


@dataclass
class StreamFigures:
    first_token: dict[str, list[float]] = field(default_factory=lambda: {path: [] for path in PATHS})
    gaps: dict[str, list[float]] = field(default_factory=lambda: {path: [] for path in PATHS})
    # Per gateway stream, its Server-Timing `gateway`: the gateway's own work before the agent call, in its
    # own process (authentication, admission, routing, the request written). A tail here is the gateway's
    # code path; a tail in p(gateway) - p(agent) and not here is the hops and the machine's scheduling.
    gateway_own: list[float] = field(default_factory=list)
    # The machine's CPU time when the measured streams started and ended: how much the host took (steal).
    cpu_before: CpuTimes | None = None
    cpu_after: CpuTimes | None = None

    def add(self, path: str, stream: Stream) -> None:
        arrivals = stream.arrivals
        self.first_token[path].append(arrivals[0])
        if "gateway" in stream.timing:
            self.gateway_own.append(stream.timing["gateway"])
        self.gaps[path].extend(
            later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)
        )


def measure_streaming(
    pacing_ms: int, rounds: int, read_stream: Callable[..., Stream] | None = None
) -> StreamFigures:
    """`read_stream(client, url, headers, body, path)` reads one stream (default: event_arrivals); the
    scheduler trace (first_token_trace.py) passes one that marks each stream's start and first token."""
    read = read_stream or (
        lambda client, url, headers, body, path: event_arrivals(client, url, headers, body)
    )
    figures = StreamFigures()
    with (
        running_stack(server_args=("--stream-delay-ms", str(pacing_ms))) as setup,
        running_byte_relay(setup.agent_url) as bare_relay_url,
        httpx.Client(timeout=30, trust_env=False) as client,
    ):
        agent_auth = {"Authorization": f"Bearer {setup.agent_secret}"}
        targets = {
            "model server": (f"{setup.model_server_url}/v1/chat/completions", {}),
            "agent": (f"{setup.agent_url}/v1/chat/completions", agent_auth),
            "bare relay": (f"{bare_relay_url}/v1/chat/completions", agent_auth),
            "gateway": (
                f"{setup.gateway_url}/v1/chat/completions",
                {"Authorization": f"Bearer {setup.api_key}"},
            ),
        }
        for _ in range(3):  # warm every connection and code path
            for path, (url, headers) in targets.items():
                read(client, url, headers, STREAMED_CHAT, f"warm-up {path}")
        figures.cpu_before = cpu_times()
        for _ in range(rounds):
            for path in PATHS:
                figures.add(path, read(client, *targets[path], STREAMED_CHAT, path))
        figures.cpu_after = cpu_times()
    return figures


def print_streaming(pacing_ms: int, rounds: int, figures: StreamFigures) -> None:
    ms = 1000.0

    def p(values: list[float], fraction: float) -> float:
        return percentile(values, fraction) * ms

    def added(values: dict[str, list[float]], over: str, by: str, fraction: float) -> float:
        return p(values[by], fraction) - p(values[over], fraction)

    print(f"\nStreaming, {pacing_ms} ms between events, {rounds} streams per path, read to the end (ms)")
    print(f"{'path':<34}{'first token p50':>16}{'p99':>8}{'event gap p50':>16}{'p99':>8}")
    for path in PATHS:
        first, gaps = figures.first_token[path], figures.gaps[path]
        print(f"{path:<34}{p(first, 0.5):16.2f}{p(first, 0.99):8.2f}{p(gaps, 0.5):16.2f}{p(gaps, 0.99):8.2f}")
    for label, over, by, target_first, target_gap in (
        ("agent adds", "model server", "agent", None, None),
        ("a bare relay adds over the agent", "agent", "bare relay", None, None),
        ("gateway adds over the agent", "agent", "gateway", 2.0, 1.0),
        ("gateway + agent add", "model server", "gateway", 5.0, None),
    ):
        first = [added(figures.first_token, over, by, fraction) for fraction in (0.5, 0.99)]
        gap = [added(figures.gaps, over, by, fraction) for fraction in (0.5, 0.99)]
        goal = f"  (targets at 200 ms pacing: first token <= {target_first:g}" if target_first else ""
        goal += f", per event <= {target_gap:g})" if target_gap else (")" if target_first else "")
        print(f"{label:<34}{first[0]:16.2f}{first[1]:8.2f}{gap[0]:16.2f}{gap[1]:8.2f}{goal}")
    for label, over, by, target in (
        ("gateway over the agent", "agent", "gateway", 2.0),
        ("gateway + agent", "model server", "gateway", 5.0),
    ):
        low, high = p99_added_interval(figures.first_token[over], figures.first_token[by])
        verdict = "met" if high <= target else "not met" if low > target else "not decided by this run"
        print(
            f"  first token p99, {label}: 95% interval {low:.2f} to {high:.2f} ms over resampled rounds "
            f"(target <= {target:g}: {verdict})"
        )
    if figures.gateway_own:
        own = figures.gateway_own
        print(
            f"{'  of it, before the agent call':<34}{p(own, 0.5):16.2f}{p(own, 0.99):8.2f}"
            "  (Server-Timing `gateway`: in the gateway's process, stream by stream)"
        )
    print(steal_report(figures.cpu_before, figures.cpu_after))


def p99_added_interval(
    over: list[float], by: list[float], resamples: int = 2000, confidence: float = 0.95
) -> tuple[float, float]:
    """A bootstrap interval (ms) for p99(by) - p99(over), the rounds resampled with replacement.

    A p99 of 120 streams stands on its one or two slowest: another run of the same code moves it by ms.
    The interval says how far this run's figure can be trusted: a target above it is met, one below it
    missed, one inside it not decided by this run (roughly: a bootstrap of the second-slowest of 120 values
    is coarse, it cannot see a tail the run never hit). Rounds are resampled whole (both paths' streams of a
    round together), since the streams of one round share the machine's state at that moment.
    """
    rng = random.Random(0)  # noqa: S311 - a statistic, not a secret: the same figures give the same interval
    rounds = list(zip(over, by, strict=True))
    differences = []
    for _ in range(resamples):
        sample = rng.choices(rounds, k=len(rounds))
        differences.append(
            percentile([b for _, b in sample], 0.99) - percentile([o for o, _ in sample], 0.99)
        )
    tail = (1 - confidence) / 2
    return percentile(differences, tail) * 1000, percentile(differences, 1 - tail) * 1000


def cold_import_seconds(runs: int = 5) -> float:
    code = (
        "import time, sys; sys.path.insert(0, 'functions/api'); t = time.perf_counter(); import app; "
        "print(time.perf_counter() - t)"
    )
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(samples)


def warm_path_dynamodb_calls() -> int:
    """Count AWS calls of one warm synchronous request through the real handler on in-process moto."""
    import botocore.client
    from _in_process import api_on_moto

    with api_on_moto(provider=True) as bench:
        for _ in range(2):  # warm: the first learns the account's limit, the second leases a block
            bench.call("POST", "/v1/chat/completions", CHAT)
        calls = []
        real = botocore.client.BaseClient._make_api_call
        request_thread = threading.get_ident()

        def counting(self, operation, params):
            if threading.get_ident() == request_thread:  # a cache's background reload is not the request's
                calls.append(operation)
            return real(self, operation, params)

        botocore.client.BaseClient._make_api_call = counting
        try:
            result = bench.call("POST", "/v1/chat/completions", CHAT)
        finally:
            botocore.client.BaseClient._make_api_call = real
        assert result["statusCode"] == 200, result
        return len(calls)


@dataclass
class AdmissionFigures:
    seconds: list[float]  # each admission as its request waits for it
    dynamodb_calls: int  # every DynamoDB call they made, background lease renewals included
    lease_seconds: list[float]  # one lease (one UpdateItem) on its own


def admission_figures(setup, calls: int = 300) -> AdmissionFigures:
    """The rate-limit admission against the running stack's embedded AWS, from this process: `calls`
    admissions of one account as a warm instance makes them, and the lease's UpdateItem on its own."""
    import json
    import os

    import botocore.client

    state = json.loads((setup.workdir / ".switchyard" / "local-stack.json").read_text())
    os.environ.update(state["environment"])
    os.environ.update(
        AWS_ENDPOINT_URL=state["aws_endpoint_url"],
        AWS_DEFAULT_REGION=state["region"],
        AWS_REGION=state["region"],
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
    )
    from switchyard.adapters.limits_table import get_limits_table
    from switchyard.caches import reset_all
    from switchyard.services.accounts import get_accounts_service
    from switchyard.services.rate_limits import get_rate_limiter

    reset_all()
    account = get_accounts_service().create_account("admission-bench").account_id
    limiter = get_rate_limiter()
    limiter.set_limits(account, requests_per_minute=10_000_000, max_active_jobs=None)
    for _ in range(2):  # the first learns the account's limit, the second leases a block
        limiter.admit(account)
    made = [0]
    real = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        made[0] += 1
        return real(self, operation, params)

    botocore.client.BaseClient._make_api_call = counting
    samples = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            limiter.admit(account)
            samples.append(time.perf_counter() - started)
            time.sleep(0.001)  # requests arrive one by one: a renewal has the time it has in real traffic
    finally:
        botocore.client.BaseClient._make_api_call = real
    table = get_limits_table()
    leases = []
    for _ in range(100):
        started = time.perf_counter()
        table.count(account, window=int(time.time() // 60) * 60, requests=50)
        leases.append(time.perf_counter() - started)
    return AdmissionFigures(samples, made[0], leases)


def measure_sync(requests: int) -> None:
    with running_stack() as setup, httpx.Client(timeout=30, trust_env=False) as client:
        gateway = (f"{setup.gateway_url}/v1/chat/completions", {"Authorization": f"Bearer {setup.api_key}"})
        direct = (f"{setup.agent_url}/v1/chat/completions", {"Authorization": f"Bearer {setup.agent_secret}"})
        model_server = (f"{setup.model_server_url}/v1/chat/completions", {})
        for _ in range(50):  # warm every connection, cache and code path
            for url, headers in (gateway, direct, model_server):
                timed_post(client, url, headers, CHAT)
        samples: dict[str, list[float]] = {"gateway": [], "agent": [], "model server": []}
        cpu_before = cpu_times()
        for _ in range(requests):
            samples["agent"].append(timed_post(client, *direct, CHAT))
            samples["gateway"].append(timed_post(client, *gateway, CHAT))
            samples["model server"].append(timed_post(client, *model_server, CHAT))
        cpu_after = cpu_times()
        admission = admission_figures(setup)
    ms = 1000.0
    print(f"\nSynchronous chat completion, {requests} requests each, interleaved, on loopback (ms)")
    print(f"{'path':<34}{'p50':>8}{'p99':>8}{'mean':>8}")
    for name, label in (
        ("model server", "model server directly"),
        ("agent", "provider agent directly"),
        ("gateway", "through the gateway"),
    ):
        values = samples[name]
        print(
            f"{label:<34}{percentile(values, 0.5) * ms:8.2f}{percentile(values, 0.99) * ms:8.2f}{statistics.mean(values) * ms:8.2f}"
        )
    added_p50 = (percentile(samples["gateway"], 0.5) - percentile(samples["agent"], 0.5)) * ms
    added_p99 = (percentile(samples["gateway"], 0.99) - percentile(samples["agent"], 0.99)) * ms
    print(
        f"gateway adds: p50 {added_p50:.2f} ms (target <= 5), p99 {added_p99:.2f} ms (target <= 10); "
        f"ratio gateway/direct p50 {percentile(samples['gateway'], 0.5) / percentile(samples['agent'], 0.5):.2f}x"
    )
    print(steal_report(cpu_before, cpu_after))
    seconds, leases = admission.seconds, admission.lease_seconds
    print(
        f"Rate-limit admission as {len(seconds)} requests of one account wait for it: "
        f"p50 {percentile(seconds, 0.5) * ms:.3f} ms, p99 {percentile(seconds, 0.99) * ms:.3f} ms; "
        f"{admission.dynamodb_calls} DynamoDB calls in all (background lease renewals); "
        f"one lease (UpdateItem) on its own: p50 {percentile(leases, 0.5) * ms:.2f} ms, "
        f"p99 {percentile(leases, 0.99) * ms:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="synchronous requests per path")
    parser.add_argument(
        "--stream-rounds", type=int, default=40, help="streams per path at 200 ms pacing (3x at 10 ms)"
    )
    parser.add_argument("--only", choices=("sync", "streaming"), help="run one part only")
    parser.add_argument(
        "--pacing-ms",
        type=int,
        action="append",
        help=f"streaming: this pacing only (repeatable; default {' and '.join(map(str, PACINGS_MS))})",
    )
    args = parser.parse_args()

    if args.only in (None, "sync"):
        measure_sync(args.requests)
    if args.only in (None, "streaming"):
        for pacing_ms in args.pacing_ms or PACINGS_MS:
            rounds = args.stream_rounds if pacing_ms >= 100 else args.stream_rounds * 3
            print_streaming(pacing_ms, rounds, measure_streaming(pacing_ms, rounds))
    if args.only is None:
        print(f"\nDynamoDB calls of a warm synchronous request: {warm_path_dynamodb_calls()} (target <= 1)")
        print(
            "Cold import of functions/api/app.py (median of 5 fresh interpreters): "
            f"{cold_import_seconds() * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
