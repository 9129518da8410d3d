"""Async jobs through the local stack: throughput, submit-to-provider latency, the embedded AWS's own
ceiling for the same calls (measured in the same run), and billable AWS requests and cost per job; then
the same with a webhook on every job: deliveries per second, the delay from a job's end to its delivery,
and the extra billable AWS requests a webhook costs per job.

    .venv/bin/python benchmarks/async_throughput.py [--jobs 1000] [--clients 8] [--webhook-jobs 1000]
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


def with_webhook(webhook_id: str) -> dict:
    return {**BODY, "metadata": {"webhook_id": webhook_id}}


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


def end_to_end(
    setup, jobs: int, clients: int, body: dict | None = None, rate: float | None = None
) -> tuple[float, list[float]]:
    """`rate` (jobs/s over all clients) paces the submissions; by default they go as fast as they can."""
    body = body or BODY
    headers = {"Authorization": f"Bearer {setup.api_key}"}
    submitted: dict[str, float] = {}
    lock = threading.Lock()

    def submit(count: int, offset: int) -> None:
        with httpx.Client(base_url=setup.gateway_url, timeout=60, trust_env=False) as client:
            for number in range(count):
                if rate:
                    time.sleep(max(0.0, started_at + (number * clients + offset) / rate - time.time()))
                sent = time.time()
                response = client.post("/v1/chat/completions", json=body, headers=headers)
                response.raise_for_status()
                with lock:
                    submitted[response.json()["id"]] = sent

    started = time.perf_counter()
    started_at = time.time()
    with ThreadPoolExecutor(clients) as pool:
        for offset, share in enumerate(
            jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)
        ):
            pool.submit(submit, share, offset)
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
    # The provider knows a job by the UUID derived from its id (switchyard.ids.provider_request_id).
    from switchyard.ids import provider_request_id

    sent_as = {provider_request_id(job_id): sent for job_id, sent in submitted.items()}
    latencies = [
        record["received_at"] - sent_as[record["headers"]["x-request-id"]]
        for record in received
        if record["path"] == "/v1/chat/completions" and record["headers"].get("x-request-id") in sent_as
    ]
    return jobs / elapsed, latencies


class Receiver:
    """A webhook receiver that verifies every signature and notes when each delivery arrived."""

    def __init__(self, secret: str | None = None):
        from standardwebhooks.webhooks import Webhook
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        self.secret = secret
        self.arrivals: dict[str, tuple[float, float]] = {}  # webhook-id -> (arrived, job finished)
        self.bad_signatures = 0
        self.duplicates = 0
        self._verifier = Webhook
        self._lock = threading.Lock()

        async def receive(request):
            arrived = time.time()
            body = await request.body()
            try:
                payload = self._verifier(self.secret).verify(body, dict(request.headers))
            except Exception:  # noqa: BLE001 - counted, reported
                with self._lock:
                    self.bad_signatures += 1
                return Response("bad signature", 400)
            finished = _epoch(payload["data"]["finishedAt"])
            with self._lock:
                if request.headers["webhook-id"] in self.arrivals:
                    self.duplicates += 1
                self.arrivals.setdefault(request.headers["webhook-id"], (arrived, finished))
            return Response("ok")

        self.app = Starlette(routes=[Route("/hook", receive, methods=["POST"])])


def _epoch(iso_text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


def webhooks_end_to_end(jobs: int, clients: int, rate: float | None = None) -> dict[str, Any]:
    """`jobs` chat jobs, each naming a webhook, through a fresh local stack to a verifying receiver
    (submitted at `rate` jobs/s, or all at once)."""
    from switchyard_agent.serving import serve_in_thread

    receiver = Receiver()
    with (
        running_stack(
            overrides=("JobMaxAttempts=3",),
            server_args=("--stream-delay-ms", "0", "--history-size", str(jobs + 100)),
            agent_args=("--max-concurrency", "64"),
        ) as setup,
        serve_in_thread(receiver.app) as receiver_url,
    ):
        headers = {"Authorization": f"Bearer {setup.api_key}"}
        created = httpx.post(
            f"{setup.gateway_url}/v1/webhooks",
            json={"url": receiver_url + "/hook"},
            headers=headers,
            trust_env=False,
        ).json()
        receiver.secret = created["secret"]
        started = time.time()
        throughput, _ = end_to_end(setup, jobs, clients, with_webhook(created["id"]), rate)
        deadline = time.monotonic() + 300
        while len(receiver.arrivals) < jobs and time.monotonic() < deadline:
            time.sleep(0.2)
    arrivals = sorted(receiver.arrivals.values())
    delays = [arrived - finished for arrived, finished in arrivals]
    span = arrivals[-1][0] - started if arrivals else float("nan")
    return {
        "jobs_per_second": throughput,
        "delivered": len(arrivals),
        "deliveries_per_second": len(arrivals) / span,
        "delays": delays,
        "bad_signatures": receiver.bad_signatures,
        "duplicates": receiver.duplicates,
    }


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


def billable_requests_with_webhook(jobs: int = 50) -> tuple[Counter, Counter, int, int]:
    """The AWS calls of `jobs` async jobs that each name a webhook, submit to one poll, including their
    deliveries to a receiver (through the real handlers on in-process moto). Returns every call, the calls
    the webhooks caused (on the webhooks table and queue), the
    dispatcher invocations and the delivery function invocations."""
    import botocore.client
    from _in_process import api_on_moto
    from switchyard.adapters.jobs_table import UNANNOUNCED
    from switchyard_agent.serving import serve_in_thread

    from tests.functional.jobs_harness import JobsHarness
    from tests.functional.webhooks_harness import WebhooksHarness

    counts: Counter = Counter()
    caused: Counter = Counter()  # the calls on webhook resources
    receiver = Receiver()
    with api_on_moto(provider=True, provider_concurrency=64) as bench, serve_in_thread(receiver.app) as url:
        harness = JobsHarness(bench.environment)
        webhooks = WebhooksHarness(bench.environment, harness)
        created = bench.json("POST", "/v1/webhooks", {"url": url + "/hook"})
        receiver.secret = created["secret"]
        bench.call("GET", "/v1/models")
        body = with_webhook(created["id"])
        bench.json(
            "POST", "/v1/chat/completions", body
        )  # warm the endpoint caches, as a warm container has them
        while harness.depth():
            harness.dispatch_once()
        while len(receiver.arrivals) < 1:
            webhooks.deliver_once()
        real = botocore.client.BaseClient._make_api_call

        webhook_resources = (bench.environment["WEBHOOKS_TABLE"], bench.environment["WEBHOOK_QUEUE_URL"])

        def takes_an_end_out_of_the_outbox(params) -> bool:
            # A plain job's end is never in the jobs table's outbox: one with a webhook is, until heard.
            names = params.get("ExpressionAttributeNames") or {}
            return params.get("UpdateExpression", "").startswith("REMOVE") and UNANNOUNCED in names.values()

        def counting(client, operation, params):
            key = (client.meta.service_model.service_name, operation)
            counts[key] += 1
            text = repr(params)
            if any(resource in text for resource in webhook_resources) or takes_an_end_out_of_the_outbox(
                params
            ):
                caused[key] += 1
            return real(client, operation, params)

        botocore.client.BaseClient._make_api_call = counting
        try:
            ids = [bench.json("POST", "/v1/chat/completions", body)["id"] for _ in range(jobs)]
            dispatched = delivered = 0
            while harness.depth():
                dispatched += 1 if harness.dispatch_once() else 0
            while len(receiver.arrivals) < jobs + 1:
                delivered += 1 if webhooks.deliver_once() else 0
            for job_id in ids:
                bench.call("GET", f"/v1/jobs/{job_id}")
        finally:
            botocore.client.BaseClient._make_api_call = real
    return counts, caused, dispatched, delivered


def per_job_requests(counts: Counter, jobs: int, lambda_invocations: float) -> dict[str, float]:
    per_job: dict[str, float] = Counter()
    per_job["API Gateway (HTTP API)"] = 2  # the submit and the status poll
    per_job["Lambda invocations"] = lambda_invocations
    for (service, operation), count in counts.items():
        if service == "dynamodb":
            per_job["DynamoDB writes" if operation in DYNAMODB_WRITES else "DynamoDB reads"] += count / jobs
        elif service == "sqs" and operation != "GetQueueAttributes":  # the harness's own depth checks
            per_job["SQS requests"] += count / jobs
        elif service == "s3":
            per_job["S3 PUT" if operation.startswith("Put") else "S3 GET"] += count / jobs
    return per_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--ceiling-processes", type=int, default=2, help="client processes the ceiling's calls come from"
    )
    parser.add_argument(
        "--webhook-jobs", type=int, default=1000, help="jobs of the run with a webhook each (0: skip)"
    )
    parser.add_argument(
        "--paced-webhook-jobs",
        type=int,
        default=200,
        help="jobs of the paced run with a webhook each (0: skip)",
    )
    parser.add_argument("--paced-rate", type=float, default=4.0, help="jobs/s of the paced run")
    args = parser.parse_args()
    if not 1 <= args.ceiling_processes <= args.clients:
        parser.error("--ceiling-processes must be between 1 and --clients")

    with running_stack(
        overrides=("JobMaxAttempts=3",),
        server_args=("--stream-delay-ms", "0", "--history-size", str(args.jobs + 100)),
        agent_args=("--max-concurrency", "64"),
    ) as setup:
        rate, latencies = end_to_end(setup, args.jobs, args.clients)
    webhook_run = webhooks_end_to_end(args.webhook_jobs, args.clients) if args.webhook_jobs else None
    paced_run = (
        webhooks_end_to_end(args.paced_webhook_jobs, args.clients, args.paced_rate)
        if args.paced_webhook_jobs
        else None
    )
    sample = 50
    counts, invocations, trace = billable_requests_per_job(sample)
    webhook_counts, webhook_caused, webhook_dispatches, webhook_deliveries = billable_requests_with_webhook(
        sample
    )
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

    # ApiFunction twice, DispatcherFunction per batch.
    per_job = per_job_requests(counts, sample, 2 + invocations / sample)
    print_requests(
        f"Billable AWS requests per plain async LLM job, submit to one status poll ({sample} jobs, batches of up to 10)",
        per_job,
        "(target <= 12 requests)",
    )
    print("  calls seen:", ", ".join(f"{s}:{o}={c / sample:.2f}" for (s, o), c in sorted(counts.items())))

    if webhook_run:
        delays = webhook_run["delays"]
        print(
            f"\nThe same with a webhook on every job ({args.webhook_jobs} jobs, a receiver on loopback verifying "
            "every signature)"
        )
        print(f"  end-to-end throughput:               {webhook_run['jobs_per_second']:8.1f} jobs/s")
        print(
            f"  webhook deliveries:                  {webhook_run['deliveries_per_second']:8.1f} deliveries/s"
            f"  ({webhook_run['delivered']} of {args.webhook_jobs} delivered, {webhook_run['duplicates']} duplicates,"
            f" {webhook_run['bad_signatures']} bad signatures)"
        )
        print(
            f"  job end to delivery:          p50 {percentile(delays, 0.5) * 1000:8.1f} ms   "
            f"p99 {percentile(delays, 0.99) * 1000:8.1f} ms"
        )
    if paced_run:
        delays = paced_run["delays"]
        print(
            f"\nWith a webhook on every job, paced ({args.paced_webhook_jobs} jobs submitted at {args.paced_rate:g}/s,"
            " below what the stack sustains: no backlog)"
        )
        print(
            f"  job end to delivery:          p50 {percentile(delays, 0.5) * 1000:8.1f} ms   "
            f"p99 {percentile(delays, 0.99) * 1000:8.1f} ms  ({paced_run['delivered']} delivered,"
            f" {paced_run['duplicates']} duplicates, {paced_run['bad_signatures']} bad signatures)"
        )
    # Attributed: what the webhook's own calls cost (its table and queue, the outbox write on the job, the
    # delivery function's invocations); the cross-check subtracts every call of the plain run.
    extra = per_job_requests(webhook_caused, sample, webhook_deliveries / sample)
    extra.pop("API Gateway (HTTP API)")
    print_requests(
        f"Extra billable AWS requests per job with a webhook, job end to a 2xx ({sample} jobs)",
        extra,
        "(target <= 4 more)",
    )
    print("  calls:", ", ".join(f"{s}:{o}={c / sample:.2f}" for (s, o), c in sorted(webhook_caused.items())))
    with_webhook_per_job = per_job_requests(
        webhook_counts, sample, 2 + (webhook_dispatches + webhook_deliveries) / sample
    )
    difference = sum(with_webhook_per_job.values()) - sum(per_job.values())
    seen = Counter(webhook_counts)
    seen.subtract(counts)
    print(
        f"  cross-check, every call of the run minus the plain run's: {difference:+.2f} per job (",
        ", ".join(
            f"{s}:{o}={c / sample:+.2f}" for (s, o), c in sorted(seen.items()) if abs(c / sample) >= 0.005
        ),
        ")",
    )


def print_requests(title: str, per_job: dict[str, float], target: str) -> None:
    print(f"\n{title}")
    for name, value in per_job.items():
        print(f"  {name:<26}{value:6.2f}   ${value * PRICES[name]:.2f} per million jobs")
    total = sum(per_job.values())
    cost = sum(per_job[k] * PRICES[k] for k in per_job)
    print(
        f"  {'total':<26}{total:6.2f}   ${cost:.2f} per million jobs {target}; Lambda duration not included"
    )


if __name__ == "__main__":
    main()
