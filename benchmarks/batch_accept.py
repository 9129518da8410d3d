"""Accepting one 256-item batch vs 256 single async submissions, through the real ApiFunction handler on
in-process moto provisioned from template.yaml: wall time and the AWS calls each makes (per operation).

    .venv/bin/python benchmarks/batch_accept.py [--items 256] [--rounds 3]

Times are in-process moto, so they measure CPU spent in the handler, botocore and moto (moto's SQS is
quadratic in queue depth, so the queue is emptied before every measurement); the call counts are what a
deployment pays for and waits on. "Outside AWS calls" is the handler's own time (routing, validation,
serialization); the last line adds a typical in-region round trip per (sequential) call to it.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROUND_TRIP_MS = 6.0  # a typical in-region DynamoDB/SQS request, for the modelled line only


def chat(i: int) -> dict:
    return {"model": "fake-llm", "messages": [{"role": "user", "content": f"item {i}"}], "max_tokens": 16}


class CallCounter:
    """Counts every botocore API call, per service and operation, and the time spent inside them
    (botocore and the embedded AWS), while switched on."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.seconds_in_calls = 0.0
        self.on = False

    def install(self) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self

        def counted(client, operation_name, api_params):
            # A cache's background reload (the auth cache) belongs to no request being compared.
            if not counter.on or threading.current_thread().name == "cache-refresh":
                return original(client, operation_name, api_params)
            counter.calls[(client.meta.service_model.service_id, operation_name)] += 1
            started = time.perf_counter()
            try:
                return original(client, operation_name, api_params)
            finally:
                counter.seconds_in_calls += time.perf_counter() - started

        BaseClient._make_api_call = counted

    @contextmanager
    def counting(self):
        self.calls.clear()
        self.seconds_in_calls = 0.0
        self.on = True
        try:
            yield self.calls
        finally:
            self.on = False


def run(items: int, rounds: int) -> None:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    from _in_process import api_on_moto

    counter = CallCounter()
    counter.install()
    with api_on_moto() as bench:
        import boto3

        sqs = boto3.client("sqs")
        queue_url = bench.environment["JOBS_QUEUE_URL"]

        def call(path: str, body: dict) -> dict:
            result = bench.call("POST", path, body)
            assert result["statusCode"] == 202, result
            raw = result["body"]
            return json.loads(base64.b64decode(raw) if result.get("isBase64Encoded") else raw)

        def one_batch() -> None:
            accepted = call(
                "/v1/batches",
                {"requests": [{"endpoint": "/v1/chat/completions", "body": chat(i)} for i in range(items)]},
            )
            assert accepted["total"] == items

        def singles() -> None:
            for i in range(items):
                call("/v1/chat/completions", {**chat(i), "async": True})

        # Warm up (imports, route table, the auth cache) so both sides start equal.
        call("/v1/batches", {"requests": [{"endpoint": "/v1/chat/completions", "body": chat(0)}]})
        call("/v1/chat/completions", {**chat(0), "async": True})

        measured: dict[str, list[float]] = {"batch": [], "singles": []}
        outside: dict[str, list[float]] = {"batch": [], "singles": []}
        calls: dict[str, Counter] = {}
        for _ in range(rounds):
            for name, action in (("batch", one_batch), ("singles", singles)):
                empty_queue(sqs, queue_url)
                with counter.counting() as seen:
                    started = time.perf_counter()
                    action()
                    measured[name].append(time.perf_counter() - started)
                outside[name].append(measured[name][-1] - counter.seconds_in_calls)
                calls[name] = Counter(seen)
        report(items, rounds, measured, outside, calls)


def empty_queue(sqs, queue_url: str) -> None:
    """PurgeQueue is limited to once a minute: receive and delete instead."""
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)


def report(
    items: int,
    rounds: int,
    measured: dict[str, list[float]],
    outside: dict[str, list[float]],
    calls: dict[str, Counter],
) -> None:
    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    def ratio(single: float, batch: float) -> str:
        return f"{single / batch:.1f}x" if batch and single else "-"

    def row(name: str, batch: float, single: float) -> tuple[str, str, str, str]:
        return (name, f"{batch:.0f}", f"{single:.0f}", ratio(single, batch))

    batch_calls, singles_calls = sum(calls["batch"].values()), sum(calls["singles"].values())
    own_batch, own_singles = ms(outside["batch"]), ms(outside["singles"])
    rows = [
        row(f"wall time on moto, median of {rounds} (ms)", ms(measured["batch"]), ms(measured["singles"])),
        row("  of which outside AWS calls (ms)", own_batch, own_singles),
        row("AWS calls, total", batch_calls, singles_calls),
    ]
    for key in sorted(set(calls["batch"]) | set(calls["singles"])):
        rows.append(row(f"  {key[0]} {key[1]}", calls["batch"][key], calls["singles"][key]))
    rows.append(
        row(
            f"modelled on AWS: outside + {ROUND_TRIP_MS:.0f} ms/call (ms)",
            own_batch + batch_calls * ROUND_TRIP_MS,
            own_singles + singles_calls * ROUND_TRIP_MS,
        )
    )
    widths = [max(len(r[i]) for r in [header(items), *rows]) for i in range(4)]
    for r in [header(items), tuple("-" * w for w in widths), *rows]:
        print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}")


def header(items: int) -> tuple[str, str, str, str]:
    return (f"accepting {items} async requests", "1 batch", f"{items} singles", "singles/batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run(args.items, args.rounds)


if __name__ == "__main__":
    main()
