"""Async jobs through the local stack: throughput, submit-to-provider latency, the embedded AWS's own
ceiling for the same calls (measured in the same run), and billable AWS requests and cost per job.

    .venv/bin/python benchmarks/async_throughput.py [--jobs 1000] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _processes import ROOT, percentile, running_stack  # noqa: E402

BODY = {"model": "fake-llm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "async": True}

# us-east-1 list prices, USD per million requests (HTTP API; Lambda requests only; DynamoDB on-demand
# write/read request units for items under 1 KB; SQS standard; S3 Standard PUT/GET).
PRICES = {
    "API Gateway (HTTP API)": 1.00,
    "Lambda invocations": 0.20,
    "DynamoDB writes": 0.625,
    "DynamoDB reads": 0.125,
    "SQS requests": 0.40,
    "S3 PUT": 5.00,
    "S3 GET": 0.40,
}
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def end_to_end(setup, jobs: int, clients: int) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {setup.api_key}"}
    submitted: dict[str, float] = {}
    lock = threading.Lock()

    def submit(count: int) -> None:
        with httpx.Client(base_url=setup.gateway_url, timeout=60, trust_env=False) as client:
            for _ in range(count):
                sent = time.time()
                response = client.post("/v1/chat/completions", json=BODY, headers=headers)
                response.raise_for_status()
                with lock:
                    submitted[response.json()["id"]] = sent

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for share in [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]:
            pool.submit(submit, share)
    with httpx.Client(base_url=setup.gateway_url, timeout=60, trust_env=False) as client:
        while True:
            summary = client.get("/api/inference/queue/summary", headers=headers).json()
            if summary["active"] == 0:
                break
            time.sleep(0.5)  # each summary is 3 calls to the embedded AWS: poll gently, it shares the ceiling
        elapsed = time.perf_counter() - started
        processed = client.get(
            "/v1/jobs", params={"status": "PROCESSED", "limit": 100}, headers=headers
        ).json()
        assert processed["data"], "no job was processed"
        received = httpx.get(f"{setup.model_server_url}/_debug/requests", trust_env=False).json()["data"]
    latencies = [
        record["received_at"] - submitted[record["headers"]["x-request-id"]]
        for record in received
        if record["path"] == "/v1/chat/completions" and record["headers"].get("x-request-id") in submitted
    ]
    return jobs / elapsed, latencies


def embedded_aws_ceiling(
    endpoint_url: str, environment: dict, jobs: int, clients: int, *, bulk: bool
) -> float:
    """Jobs per second the embedded AWS sustains for the AWS calls a job makes (submit: PutItem +
    SendMessage; dispatch: ReceiveMessage batch, four UpdateItems, DeleteMessageBatch; one status poll:
    GetItem), made straight to it from `clients` threads of this process.

    bulk=False keeps every queue shallow (10 messages): moto's best case. bulk=True submits every job
    first and then drains, the access pattern of the end-to-end run, where moto's SQS slows down with
    queue depth (every call scans the whole queue).
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    config = Config(max_pool_connections=clients * 2)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url, config=config)
    sqs = session.client("sqs", endpoint_url=endpoint_url, config=config)
    table, providers = environment["JOBS_TABLE"], environment["PROVIDERS_TABLE"]
    queue_url = sqs.create_queue(QueueName=f"ceiling-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    provider_key = {"account_id": {"S": f"ceiling-{uuid.uuid4().hex[:6]}"}, "provider_id": {"S": "p"}}
    dynamodb.put_item(
        TableName=providers, Item={**provider_key, "leases": {"M": {}}, "max_concurrency": {"N": "100000"}}
    )
    per_client = jobs // clients
    prefix = uuid.uuid4().hex[:6]

    def submit(job_id: str) -> None:
        dynamodb.put_item(
            TableName=table, Item={"job_id": {"S": job_id}, "status": {"S": "QUEUED"}, "gen": {"N": "0"}}
        )
        sqs.send_message(QueueUrl=queue_url, MessageBody=job_id)

    def dispatch(message: dict) -> None:
        job_key = {"job_id": {"S": message["Body"]}}
        lease = {"#l": f"l{message['MessageId']}"}
        dynamodb.update_item(
            TableName=providers,
            Key=provider_key,
            UpdateExpression="SET leases.#l = :t",
            ConditionExpression="size(leases) < max_concurrency",
            ExpressionAttributeNames=lease,
            ExpressionAttributeValues={":t": {"N": "1"}},
        )
        try:
            dynamodb.update_item(
                TableName=table,
                Key=job_key,
                UpdateExpression="SET #s = :p",
                ConditionExpression="#s = :q",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":p": {"S": "PROCESSING"}, ":q": {"S": "QUEUED"}},
            )
            dynamodb.update_item(
                TableName=table,
                Key=job_key,
                UpdateExpression="SET #s = :d, #r = :r",
                ExpressionAttributeNames={"#s": "status", "#r": "result"},
                ExpressionAttributeValues={":d": {"S": "PROCESSED"}, ":r": {"S": "{}"}},
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            pass  # moto handed the same message to two receivers at once; the claim stops the second
        dynamodb.update_item(
            TableName=providers,
            Key=provider_key,
            UpdateExpression="REMOVE leases.#l",
            ExpressionAttributeNames=lease,
        )

    def drain(count: int) -> None:
        done = 0
        while done < count:
            received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=min(10, count - done)).get(
                "Messages", []
            )
            for message in received:
                dispatch(message)
            if received:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)
                    ],
                )
            done += len(received)

    def poll(job_id: str) -> None:
        dynamodb.get_item(TableName=table, Key={"job_id": {"S": job_id}})

    def shallow(worker: int) -> None:
        for start in range(0, per_client, 10):
            ids = [f"{prefix}-{worker}-{start + i}" for i in range(min(10, per_client - start))]
            for job_id in ids:
                submit(job_id)
            drain(len(ids))
            for job_id in ids:
                poll(job_id)

    def submit_share(worker: int) -> None:
        for i in range(per_client):
            submit(f"{prefix}-{worker}-{i}")

    def drain_share(worker: int) -> None:
        drain(per_client)
        for i in range(per_client):
            poll(f"{prefix}-{worker}-{i}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        if bulk:
            list(pool.map(submit_share, range(clients)))
            list(pool.map(drain_share, range(clients)))
        else:
            list(pool.map(shallow, range(clients)))
    return per_client * clients / (time.perf_counter() - started)


def billable_requests_per_job(jobs: int = 50) -> tuple[Counter, int]:
    """Count the AWS calls of `jobs` plain async jobs, submit to one poll, through the real handlers."""
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="ERROR",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import botocore.client
    from moto import mock_aws
    from switchyard_agent.fake_model_server import FakeServerConfig, create_app
    from switchyard_agent.serving import serve_in_thread
    from switchyard_local import dynamodb_atomicity
    from switchyard_local.provision import provision

    from tests.conftest import LambdaContext, heartbeat_body, http_event, reset_switchyard_caches
    from tests.functional.jobs_harness import JobsHarness

    dynamodb_atomicity.install()
    counts: Counter = Counter()
    with mock_aws(), serve_in_thread(create_app(FakeServerConfig(stream_delay_ms=0))) as provider_url:
        stack = provision(ROOT / "template.yaml", {"ProviderEndpointPolicy": "loopback"})
        os.environ.update({k: str(v) for k, v in stack.environment.items()})
        reset_switchyard_caches()
        from switchyard.services.accounts import get_accounts_service
        from switchyard_local.handler_loading import load_handler

        api = load_handler(ROOT / "functions" / "api", "app.handler")
        accounts = get_accounts_service()
        account = accounts.create_account("bench")
        headers = {"authorization": f"Bearer {accounts.create_api_key(account.account_id).secret}"}
        api(
            http_event(
                "POST",
                "/api/inference/agent/heartbeat/",
                body=heartbeat_body(provider_url, max_concurrency=64),
                headers=headers,
            ),
            LambdaContext(),
        )
        harness = JobsHarness(stack.environment)
        api(
            http_event("GET", "/v1/models", headers=headers), LambdaContext()
        )  # warm caches, as a warm container has them
        real = botocore.client.BaseClient._make_api_call

        def counting(client, operation, params):
            counts[(client.meta.service_model.service_name, operation)] += 1
            return real(client, operation, params)

        botocore.client.BaseClient._make_api_call = counting
        try:
            ids = []
            for _ in range(jobs):
                result = api(
                    http_event("POST", "/v1/chat/completions", body=BODY, headers=headers), LambdaContext()
                )
                ids.append(__import__("json").loads(result["body"])["id"])
            invocations = 0
            while harness.depth():
                invocations += 1 if harness.dispatch_once() else 0
            for job_id in ids:
                api(http_event("GET", f"/v1/jobs/{job_id}", headers=headers), LambdaContext())
        finally:
            botocore.client.BaseClient._make_api_call = real
    return counts, invocations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    with running_stack(
        overrides=("JobMaxAttempts=3",),
        server_args=("--stream-delay-ms", "0", "--history-size", str(args.jobs + 100)),
        agent_args=("--max-concurrency", "64"),
    ) as setup:
        import json

        state = json.loads((Path(setup.workdir) / ".switchyard" / "local-stack.json").read_text())
        rate, latencies = end_to_end(setup, args.jobs, args.clients)
        ceiling_bulk = embedded_aws_ceiling(
            state["aws_endpoint_url"], state["environment"], args.jobs, args.clients, bulk=True
        )
        ceiling = embedded_aws_ceiling(
            state["aws_endpoint_url"], state["environment"], args.jobs, args.clients, bulk=False
        )

    print(
        f"\nAsync jobs through the local stack ({args.jobs} jobs, {args.clients} submitting clients, fake provider)"
    )
    print(f"  end-to-end throughput:               {rate:8.1f} jobs/s")
    print(
        f"  submit-to-provider latency:   p50 {percentile(latencies, 0.5) * 1000:8.1f} ms   p99 {percentile(latencies, 0.99) * 1000:8.1f} ms  ({len(latencies)} samples)"
    )
    print(
        f"  embedded AWS ceiling, same calls, same pattern (submit all, then drain): {ceiling_bulk:6.1f} jobs/s"
        f"  -> share used {rate / ceiling_bulk:4.0%}"
    )
    print(
        f"  embedded AWS ceiling, same calls, queues kept at 10 (moto's best case):   {ceiling:6.1f} jobs/s"
        f"  -> share used {rate / ceiling:4.0%}  (target >= 60%)"
    )

    sample = 50
    counts, invocations = billable_requests_per_job(sample)
    per_job: dict[str, float] = Counter()
    per_job["API Gateway (HTTP API)"] = 2  # the submit and the status poll
    per_job["Lambda invocations"] = (
        2 + invocations / sample
    )  # ApiFunction twice, DispatcherFunction per batch
    for (service, operation), count in counts.items():
        if service == "dynamodb":
            per_job["DynamoDB writes" if operation in DYNAMODB_WRITES else "DynamoDB reads"] += count / sample
        elif service == "sqs" and operation != "GetQueueAttributes":  # the harness's own depth checks
            per_job["SQS requests"] += count / sample
        elif service == "s3":
            per_job["S3 PUT" if operation.startswith("Put") else "S3 GET"] += count / sample
    total = sum(per_job.values())
    cost = sum(per_job[k] * PRICES[k] for k in per_job)
    print(
        f"\nBillable AWS requests per plain async LLM job, submit to one status poll ({sample} jobs, batches of up to 10)"
    )
    for name, value in per_job.items():
        print(f"  {name:<26}{value:6.2f}   ${value * PRICES[name]:.2f} per million jobs")
    print(
        f"  {'total':<26}{total:6.2f}   ${cost:.2f} per million jobs (target <= 12 requests); Lambda duration not included"
    )
    print("  calls seen:", ", ".join(f"{s}:{o}={c / sample:.2f}" for (s, o), c in sorted(counts.items())))


if __name__ == "__main__":
    main()
