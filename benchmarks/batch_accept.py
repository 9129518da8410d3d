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
import os
import statistics
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "local")]

ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "LOG_LEVEL": "ERROR",
}
ROUND_TRIP_MS = 6.0  # a typical in-region DynamoDB/SQS request, for the modelled line only


def chat(i: int) -> dict:
    return {"model": "fake-llm", "messages": [{"role": "user", "content": f"item {i}"}], "max_tokens": 16}


class LambdaContext:
    function_name = "ApiFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def http_event(path: str, body: dict, api_key: str) -> dict:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "host": "gateway.bench",
            "x-forwarded-proto": "https",
            "content-type": "application/json",
            "authorization": f"Bearer {api_key}",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "gateway.bench",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


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
    os.environ.update(ENVIRONMENT)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws
    from switchyard_local import dynamodb_atomicity
    from switchyard_local.handler_loading import load_handler
    from switchyard_local.provision import provision

    dynamodb_atomicity.install()
    counter = CallCounter()
    counter.install()
    with mock_aws():
        stack = provision(ROOT / "template.yaml", {"ProviderEndpointPolicy": "loopback"})
        os.environ.update({name: str(value) for name, value in stack.environment.items()})
        import boto3
        from switchyard.services.accounts import get_accounts_service
        from switchyard.ttl_cache import wait_for_refreshes

        accounts = get_accounts_service()
        account = accounts.create_account("bench")
        api_key = accounts.create_api_key(account.account_id).secret
        handler = load_handler(ROOT / "functions" / "api", "app.handler")
        sqs = boto3.client("sqs")
        queue_url = stack.environment["JOBS_QUEUE_URL"]

        def call(path: str, body: dict) -> dict:
            result = handler(http_event(path, body, api_key), LambdaContext())
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
        wait_for_refreshes()  # nothing may reach past mock_aws
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
