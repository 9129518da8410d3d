"""What the gateway adds to a synchronous chat completion and to streaming time-to-first-byte.

Runs on loopback in one go: the local stack, a fake model server and the real provider agent, each its own
process. The same requests go (interleaved) straight to the provider agent and through the gateway, so the
difference is the gateway's own cost. Also reports the API handler's DynamoDB calls on the warm path (one:
the rate-limit admission), what that admission costs on its own against the same embedded AWS, and the
handler's cold import time.

    .venv/bin/python benchmarks/sync_latency.py [--requests 600]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _processes import ROOT, percentile, running_stack

CHAT = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def timed_post(client: httpx.Client, url: str, headers: dict, body: dict) -> float:
    started = time.perf_counter()
    response = client.post(url, json=body, headers=headers)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def time_to_first_byte(client: httpx.Client, url: str, headers: dict, body: dict) -> float:
    started = time.perf_counter()
    elapsed = None
    with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        for _chunk in response.iter_raw():
            if elapsed is None:
                elapsed = time.perf_counter() - started
    return elapsed


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
        bench.call("POST", "/v1/chat/completions", CHAT)  # warm
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


def admission_seconds(setup, calls: int = 300) -> list[float]:
    """The rate-limit admission alone (one conditional UpdateItem) against the running stack's embedded AWS,
    from this process: the DynamoDB call every limited request now makes."""
    import json
    import os

    state = json.loads((setup.workdir / ".switchyard" / "local-stack.json").read_text())
    os.environ.update(state["environment"])
    os.environ.update(
        AWS_ENDPOINT_URL=state["aws_endpoint_url"],
        AWS_DEFAULT_REGION=state["region"],
        AWS_REGION=state["region"],
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
    )
    from switchyard.caches import reset_all
    from switchyard.services.accounts import get_accounts_service
    from switchyard.services.rate_limits import get_rate_limiter

    reset_all()
    account = get_accounts_service().create_account("admission-bench").account_id
    limiter = get_rate_limiter()
    limiter.set_limits(account, requests_per_minute=10_000_000, max_active_jobs=None)
    limiter.admit(account)  # the window's first request starts it: not the steady state
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        limiter.admit(account)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--stream-requests", type=int, default=200)
    args = parser.parse_args()

    with running_stack() as setup, httpx.Client(timeout=30, trust_env=False) as client:
        gateway = (f"{setup.gateway_url}/v1/chat/completions", {"Authorization": f"Bearer {setup.api_key}"})
        direct = (f"{setup.agent_url}/v1/chat/completions", {"Authorization": f"Bearer {setup.agent_secret}"})
        model_server = (f"{setup.model_server_url}/v1/chat/completions", {})
        for _ in range(50):  # warm every connection, cache and code path
            for url, headers in (gateway, direct, model_server):
                timed_post(client, url, headers, CHAT)
        samples: dict[str, list[float]] = {"gateway": [], "agent": [], "model server": []}
        for _ in range(args.requests):
            samples["agent"].append(timed_post(client, *direct, CHAT))
            samples["gateway"].append(timed_post(client, *gateway, CHAT))
            samples["model server"].append(timed_post(client, *model_server, CHAT))
        streaming = {**CHAT, "stream": True}
        ttfb: dict[str, list[float]] = {"gateway": [], "agent": []}
        for _ in range(20):
            time_to_first_byte(client, *gateway, streaming)
            time_to_first_byte(client, *direct, streaming)
        for _ in range(args.stream_requests):
            ttfb["agent"].append(time_to_first_byte(client, *direct, streaming))
            ttfb["gateway"].append(time_to_first_byte(client, *gateway, streaming))
        admission = admission_seconds(setup)

    ms = 1000.0
    print(f"\nSynchronous chat completion, {args.requests} requests each, interleaved, on loopback (ms)")
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

    print(f"\nStreaming time to first byte, {args.stream_requests} requests each (ms)")
    for name in ("agent", "gateway"):
        print(f"{name:<34}{percentile(ttfb[name], 0.5) * ms:8.2f}{percentile(ttfb[name], 0.99) * ms:8.2f}")
    added_ttfb = (percentile(ttfb["gateway"], 0.5) - percentile(ttfb["agent"], 0.5)) * ms
    print(
        f"gateway adds to TTFB at p50: {added_ttfb:.2f} ms (target <= 5); ratio "
        f"{percentile(ttfb['gateway'], 0.5) / percentile(ttfb['agent'], 0.5):.2f}x"
    )

    print(
        f"\nRate-limit admission alone (one conditional UpdateItem on the embedded AWS, {len(admission)} calls): "
        f"p50 {percentile(admission, 0.5) * ms:.2f} ms, p99 {percentile(admission, 0.99) * ms:.2f} ms"
    )
    print(f"DynamoDB calls of a warm synchronous request: {warm_path_dynamodb_calls()} (target <= 1)")
    print(
        f"Cold import of functions/api/app.py (median of 5 fresh interpreters): {cold_import_seconds() * ms:.0f} ms"
    )


if __name__ == "__main__":
    main()
