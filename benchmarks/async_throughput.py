"""Async jobs through the local stack: throughput, submit-to-provider latency, the embedded AWS's own
ceiling for the same calls (measured in the same run), and billable AWS requests and cost per job.

    .venv/bin/python benchmarks/async_throughput.py [--jobs 1000] [--clients 8]
"""

from __future__ import annotations

import argparse
import copy
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _processes import ROOT, percentile, running_stack

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


@dataclass
class JobTrace:
    """The DynamoDB calls one plain async job made through the real handlers, phase by phase.

    SQS calls are not replayed verbatim (receipt handles differ on every receive): the ceiling makes the
    same SQS calls structurally (SendMessage per job, ReceiveMessage and DeleteMessageBatch per 10).
    """

    job_id: str
    submit: list[tuple[str, dict]]
    dispatch: list[tuple[str, dict]]
    poll: list[tuple[str, dict]]
    provider_item: dict
    tables: dict[str, str]  # environment variable -> table name, in the recording stack


def _with_job_id(value: Any, recorded: str, replacement: str) -> Any:
    if isinstance(value, str):
        return value.replace(recorded, replacement)
    if isinstance(value, dict):
        return {
            _with_job_id(k, recorded, replacement): _with_job_id(v, recorded, replacement)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return type(value)(_with_job_id(v, recorded, replacement) for v in value)
    return value


@contextmanager
def fresh_embedded_aws() -> Iterator[tuple[str, dict]]:
    """A second embedded AWS, provisioned from the template like the stack's, that has served nothing yet.

    The ceiling is measured on it, not on the stack's moto: that one holds every job of the end-to-end run
    by then, and moto gets slower as its tables and its heap grow, which would lower the ceiling unfairly.
    """
    from switchyard_local.aws_process import EmbeddedAwsProcess
    from switchyard_local.local_stack import provision_locally

    aws = EmbeddedAwsProcess()  # the ceiling invokes no function: anything that tries gets an error
    try:
        endpoint_url = aws.start()
        yield endpoint_url, dict(provision_locally(ROOT / "template.yaml", {}, endpoint_url).environment)
    finally:
        aws.stop()


def embedded_aws_ceiling(
    endpoint_url: str,
    environment: dict,
    trace: JobTrace,
    jobs: int,
    clients: int,
    *,
    bulk: bool,
    processes: int,
) -> float:
    """Jobs per second the embedded AWS sustains for the AWS calls a job makes, made straight to it: the
    recorded DynamoDB calls of a real job (same items, same update and condition expressions, same tables
    and indexes) under a fresh job id, plus SendMessage per job and ReceiveMessage / DeleteMessageBatch
    per 10.

    The calls come from `clients` threads spread over `processes` processes: one client process's own
    CPU (botocore, one interpreter lock) would otherwise cap the figure below what moto can serve.
    bulk=False keeps the queue shallow (each client sends 10, then receives 10); bulk=True submits every
    job first and then drains: the deepest queue the end-to-end run could build.
    """
    import multiprocessing

    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    queue_url = session.client("sqs", endpoint_url=endpoint_url).create_queue(
        QueueName=f"ceiling-{uuid.uuid4().hex[:8]}"
    )["QueueUrl"]
    session.resource("dynamodb", endpoint_url=endpoint_url).meta.client.put_item(
        TableName=environment["PROVIDERS_TABLE"], Item=trace.provider_item
    )
    spawn = multiprocessing.get_context("spawn")
    # Every process waits here three times: set up, (bulk: all submitted,) all done. So does this one.
    barrier = spawn.Barrier(processes + 1)
    workers = [
        spawn.Process(
            target=_ceiling_process,
            args=(endpoint_url, environment, trace, queue_url, list(range(p, clients, processes))),
            kwargs={"per_client": jobs // clients, "bulk": bulk, "barrier": barrier},
        )
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(timeout=120)
        started = time.perf_counter()
        if bulk:
            barrier.wait(timeout=900)
        barrier.wait(timeout=900)
        elapsed = time.perf_counter() - started
    except threading.BrokenBarrierError:
        raise RuntimeError("a ceiling process failed (its traceback is above)") from None
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    return jobs // clients * clients / elapsed


def _ceiling_process(
    endpoint_url: str,
    environment: dict,
    trace: JobTrace,
    queue_url: str,
    client_numbers: list[int],
    *,
    per_client: int,
    bulk: bool,
    barrier: Any,
) -> None:
    """One process of the ceiling: a thread per client number, calling the embedded AWS directly."""
    import boto3
    from botocore import xform_name
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    config = Config(max_pool_connections=len(client_numbers) * 2)
    # The resource's client takes the same (unserialised) parameters the handlers' Table calls made.
    dynamodb = session.resource("dynamodb", endpoint_url=endpoint_url, config=config).meta.client
    sqs = session.client("sqs", endpoint_url=endpoint_url, config=config)
    renamed = {trace.tables[name]: environment[name] for name in trace.tables}
    prefix = queue_url.rsplit("-", 1)[-1][:6]

    def replay(calls: list[tuple[str, dict]], job_id: str) -> None:
        for operation, params in calls:
            params = _with_job_id(params, trace.job_id, job_id)
            if "TableName" in params:
                params["TableName"] = renamed.get(params["TableName"], params["TableName"])
            try:
                getattr(dynamodb, xform_name(operation))(**params)
            except dynamodb.exceptions.ConditionalCheckFailedException:
                return  # moto handed one message to two receivers at once; the claim stops the second

    def submit(job_id: str) -> None:
        replay(trace.submit, job_id)
        sqs.send_message(QueueUrl=queue_url, MessageBody=job_id)

    def drain(count: int) -> None:
        done = 0
        while done < count:
            received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=min(10, count - done)).get(
                "Messages", []
            )
            for message in received:
                replay(trace.dispatch, message["Body"])
            if received:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)
                    ],
                )
            done += len(received)

    def job_id(client: int, number: int) -> str:
        return f"job_{prefix}{client:02d}{number:06d}"

    def shallow(client: int) -> None:
        for start in range(0, per_client, 10):
            ids = [job_id(client, start + i) for i in range(min(10, per_client - start))]
            for each in ids:
                submit(each)
            drain(len(ids))
            for each in ids:
                replay(trace.poll, each)

    def submit_share(client: int) -> None:
        for number in range(per_client):
            submit(job_id(client, number))

    def drain_share(client: int) -> None:
        drain(per_client)
        for number in range(per_client):
            replay(trace.poll, job_id(client, number))

    try:
        with ThreadPoolExecutor(len(client_numbers)) as pool:
            barrier.wait(timeout=120)
            if bulk:
                list(pool.map(submit_share, client_numbers))
                barrier.wait(timeout=900)
                list(pool.map(drain_share, client_numbers))
            else:
                list(pool.map(shallow, client_numbers))
            barrier.wait(timeout=900)
    except BaseException:
        barrier.abort()  # the others (and the parent) stop waiting at once
        raise


def billable_requests_per_job(jobs: int = 50) -> tuple[Counter, int, JobTrace]:
    """Count the AWS calls of `jobs` plain async jobs, submit to one poll, through the real handlers, then
    record the DynamoDB calls of one more job, phase by phase, for the ceiling to replay."""
    import botocore.client
    from _in_process import api_on_moto

    from tests.functional.jobs_harness import JobsHarness

    counts: Counter = Counter()
    with api_on_moto(provider=True, provider_concurrency=64) as bench:
        harness = JobsHarness(bench.environment)
        bench.call("GET", "/v1/models")  # warm caches, as a warm container has them
        real = botocore.client.BaseClient._make_api_call
        recorded: list[tuple[str, dict]] = []

        def counting(client, operation, params):
            service = client.meta.service_model.service_name
            counts[(service, operation)] += 1  # background cache reloads are billable too
            if service == "dynamodb" and threading.current_thread().name != "cache-refresh":
                # ...but not part of one job's calls: the ceiling would replay them once per job.
                recorded.append((operation, copy.deepcopy(params)))
            return real(client, operation, params)

        botocore.client.BaseClient._make_api_call = counting
        try:
            ids = [bench.json("POST", "/v1/chat/completions", BODY)["id"] for _ in range(jobs)]
            invocations = 0
            while harness.depth():
                invocations += 1 if harness.dispatch_once() else 0
            for job_id in ids:
                bench.call("GET", f"/v1/jobs/{job_id}")
            sampled = Counter(counts)
            phases = []
            for step in ("submit", "dispatch", "poll"):
                recorded.clear()
                if step == "submit":
                    job_id = bench.json("POST", "/v1/chat/completions", BODY)["id"]
                elif step == "dispatch":
                    while harness.depth():
                        harness.dispatch_once()
                else:
                    bench.call("GET", f"/v1/jobs/{job_id}")
                phases.append(list(recorded))
        finally:
            botocore.client.BaseClient._make_api_call = real
        from switchyard.adapters import aws

        provider_item = aws.table(bench.environment["PROVIDERS_TABLE"]).scan()["Items"][0]
        provider_item["leases"] = {}
        provider_item["max_concurrency"] = 1_000_000
        trace = JobTrace(
            job_id,
            *phases,
            provider_item=provider_item,
            tables={name: value for name, value in bench.environment.items() if name.endswith("_TABLE")},
        )
    return sampled, invocations, trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--ceiling-processes", type=int, default=2, help="client processes the ceiling's calls come from"
    )
    args = parser.parse_args()
    if not 1 <= args.ceiling_processes <= args.clients:
        parser.error("--ceiling-processes must be between 1 and --clients")

    with running_stack(
        overrides=("JobMaxAttempts=3",),
        server_args=("--stream-delay-ms", "0", "--history-size", str(args.jobs + 100)),
        agent_args=("--max-concurrency", "64"),
    ) as setup:
        rate, latencies = end_to_end(setup, args.jobs, args.clients)
    sample = 50
    counts, invocations, trace = billable_requests_per_job(sample)
    ceilings = {}
    for bulk in (True, False):
        with fresh_embedded_aws() as (endpoint_url, environment):
            ceilings[bulk] = embedded_aws_ceiling(
                endpoint_url,
                environment,
                trace,
                args.jobs,
                args.clients,
                bulk=bulk,
                processes=args.ceiling_processes,
            )
    ceiling_bulk, ceiling = ceilings[True], ceilings[False]

    print(
        f"\nAsync jobs through the local stack ({args.jobs} jobs, {args.clients} submitting clients, fake provider)"
    )
    print(f"  end-to-end throughput:               {rate:8.1f} jobs/s")
    print(
        f"  submit-to-provider latency:   p50 {percentile(latencies, 0.5) * 1000:8.1f} ms   p99 {percentile(latencies, 0.99) * 1000:8.1f} ms  ({len(latencies)} samples)"
    )
    print(
        f"  embedded AWS ceiling, same calls, submit all, then drain:                  {ceiling_bulk:6.1f} jobs/s"
        f"  -> share used {rate / ceiling_bulk:4.0%}"
    )
    print(
        f"  embedded AWS ceiling, same calls, shallow queue (send 10, drain 10):       {ceiling:6.1f} jobs/s"
        f"  -> share used {rate / ceiling:4.0%}  (target >= 60%)"
    )

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
