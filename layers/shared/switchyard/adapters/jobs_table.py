"""DynamoDB storage of jobs, and every change of a job's state as a named, conditional transition.

Each transition is one conditional UpdateItem that names the state it starts from, and returns the job
as it is after the write, or None when the job was not in that state: someone else moved it first (a
duplicate or stale SQS delivery, a cancel, the sweeper, a newer generation). Callers treat None as
"not mine any more" and stop; so any message may be delivered twice and any two workers may race.

Two guards name a job's moments: `gen` (bumped by every re-queue, so a message of an older generation
finds nothing to claim) and `claim_id` (fresh on every claim, so only the worker holding the claim may
finish, fail or re-queue the run it claimed). A claim's lease never changes while the claim holds, so
the claim id alone names the run.

An ending write (to PROCESSED, FAILED or CANCELED) also marks the job `unannounced`, which puts it in
the sparse `unannounced_ends` index (key: the marker, a shard of it; range: finished_ms) in the same
write; the job-end hook takes it out once every subscriber has heard (`mark_announced`), and the sweeper
announces again whatever is still there a while later. So no end is lost between the write and its
announcement (switchyard/job_end.py). The writer of `finish` and `fail` says whether the end needs it
(`outbox`): a plain job's, which no at-least-once subscriber hears, does not.

Expressions are plain strings, not boto3's Key()/Attr() builder: that builder is shared by every thread
using a resource and reset on each call, so concurrent callers could swap each other's placeholders.
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure, update_arguments
from switchyard.batch_model import JobSummary
from switchyard.caches import cached
from switchyard.clock import now_ms
from switchyard.job_model import ACTIVE, RETRYABLE, Job, JobStatus
from switchyard.job_results import JobResult
from switchyard.retention import is_expired
from switchyard.settings import get_settings

ACTIVE_INDEX = "active_by_account"
ACCOUNT_INDEX = "by_account"
UNANNOUNCED_INDEX = "unannounced_ends"
UNANNOUNCED = "unannounced"  # the marker (and the index's key): a shard, so ends spread over partitions
UNANNOUNCED_SHARDS = 8
# What a finished run leaves on the item that a re-queued job must not carry into its next run.
_RUN_ATTRIBUTES = (
    "error_type",
    "error_message",
    "claim_id",
    "provider_id",
    "lease_until_ms",
    "started_ms",
    "finished_ms",
    "result",
    "result_key",
    "result_content_type",
    "result_bytes",
    "metadata_key",
    "assets",
    "seen_ms",
    UNANNOUNCED,  # an end re-queued by its owner before it was announced is not announced any more
)


def new_claim_id() -> str:
    return secrets.token_hex(8)


def unannounced_shard(job_id: str) -> str:
    return f"end#{zlib.crc32(job_id.encode()) % UNANNOUNCED_SHARDS}"


def exhausted_message(attempts: int, last_error: str) -> str:
    return f"Max retries exhausted after {attempts} attempts; last error: {last_error}"


class JobsTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._table = aws.table(table_name)

    # -- reads
    def get(self, job_id: str, consistent: bool = True) -> Job | None:
        item = self._table.get_item(Key={"job_id": job_id}, ConsistentRead=consistent).get("Item")
        return Job.from_item(item) if item and "account_id" in item and not is_expired(item) else None

    def batch_get(self, job_ids: list[str]) -> dict[str, Job]:
        found: dict[str, Job] = {}
        client = aws.resource("dynamodb")
        for start in range(0, len(job_ids), 100):
            keys = [{"job_id": j} for j in job_ids[start : start + 100]]
            request: dict[str, Any] = {self.name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                page = client.batch_get_item(RequestItems=request)
                for item in page.get("Responses", {}).get(self.name, []):
                    if is_expired(item):
                        continue
                    job = Job.from_item(item)
                    found[job.job_id] = job
                request = page.get("UnprocessedKeys") or {}
        return found

    def list_for_account(
        self,
        account_id: str,
        *,
        statuses: tuple[str, ...] | None,
        limit: int,
        after: str | None,
        active_only: bool,
        keep: Callable[[list[Job]], list[Job]] | None = None,
    ) -> tuple[list[Job], bool]:
        """Newest first; returns (jobs, has_more). Ids sort by creation time, so `after` is a job id.

        `keep` filters each page before it counts towards `limit` (callers hide jobs not yet visible).
        """
        index = ACTIVE_INDEX if active_only else ACCOUNT_INDEX
        key_attr = "active_account" if active_only else "account_id"
        condition = f"{key_attr} = :account"
        values: dict[str, Any] = {":account": account_id}
        if after:
            condition += " AND job_id < :after"
            values[":after"] = after
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
            "Limit": max(limit + 1, 25),
        }
        if statuses:
            placeholders = [f":st{i}" for i in range(len(statuses))]
            kwargs["FilterExpression"] = f"#status IN ({', '.join(placeholders)})"
            kwargs["ExpressionAttributeNames"] = {"#status": "status"}
            values.update(zip(placeholders, statuses, strict=True))
        kwargs["ExpressionAttributeValues"] = values
        jobs: list[Job] = []
        for page in aws.item_pages(self._table.query, **kwargs):
            found = [Job.from_item(item) for item in page if not is_expired(item)]
            jobs.extend(keep(found) if keep else found)
            if len(jobs) > limit:
                break
        return jobs[:limit], len(jobs) > limit

    def active_jobs(self, account_id: str | None = None) -> list[Job]:
        """Active jobs (QUEUED or PROCESSING) from the sparse index: of one account, or of everyone.

        The index is eventually consistent: a job read here may have moved on (transitions check)."""
        kwargs: dict[str, Any] = {"IndexName": ACTIVE_INDEX}
        if account_id:
            kwargs["KeyConditionExpression"] = "active_account = :account"
            kwargs["ExpressionAttributeValues"] = {":account": account_id}
        operation = self._table.query if account_id else self._table.scan
        return [Job.from_item(item) for page in aws.item_pages(operation, **kwargs) for item in page]

    def count_active(self, account_id: str) -> int:
        """How many active jobs the account has, by the sparse index (eventually consistent)."""
        total = 0
        kwargs: dict[str, Any] = {
            "IndexName": ACTIVE_INDEX,
            "KeyConditionExpression": "active_account = :account",
            "ExpressionAttributeValues": {":account": account_id},
            "Select": "COUNT",
        }
        while True:
            page = self._table.query(**kwargs)
            total += int(page.get("Count", 0))
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def unannounced_ends(self, before_ms: int, limit: int) -> list[str]:
        """Ids of jobs that ended before `before_ms` and whose end not every subscriber has heard (the
        index is eventually consistent: read the job before announcing it again)."""
        found: list[str] = []
        for shard in range(UNANNOUNCED_SHARDS):
            pages = aws.item_pages(
                self._table.query,
                IndexName=UNANNOUNCED_INDEX,
                KeyConditionExpression="#marker = :shard AND finished_ms < :before",
                ExpressionAttributeNames={"#marker": UNANNOUNCED},
                ExpressionAttributeValues={":shard": f"end#{shard}", ":before": before_ms},
            )
            for page in pages:
                found.extend(str(item["job_id"]) for item in page)
                if len(found) >= limit:
                    return found[:limit]
        return found

    # -- liveness items (no account_id, so they never appear in the account indexes)
    def record_tick(self, item_id: str) -> None:
        self._table.update_item(
            Key={"job_id": item_id},
            UpdateExpression="SET last_tick_ms = :now",
            ExpressionAttributeValues={":now": now_ms()},
        )

    def last_tick_ms(self, item_id: str) -> int | None:
        item: dict[str, Any] | None = self._table.get_item(Key={"job_id": item_id}).get("Item")
        return int(item["last_tick_ms"]) if item and "last_tick_ms" in item else None

    # -- writes
    def create(self, job: Job) -> None:
        self._table.put_item(Item=job.to_item(), ConditionExpression="attribute_not_exists(job_id)")

    def batch_create(self, jobs: list[Job]) -> None:
        with self._table.batch_writer() as writer:
            for job in jobs:
                writer.put_item(Item=job.to_item())

    def batch_delete(self, job_ids: list[str]) -> None:
        with self._table.batch_writer() as writer:
            for job_id in dict.fromkeys(job_ids):
                writer.delete_item(Key={"job_id": job_id})

    def summaries(self, job_ids: list[str]) -> dict[str, JobSummary]:
        """Id, status and inference type of many jobs: BatchGetItem of 100 keys, projected to those three
        attributes, the chunks read in parallel."""
        unique = list(dict.fromkeys(job_ids))
        chunks = [unique[start : start + 100] for start in range(0, len(unique), 100)]
        found: dict[str, JobSummary] = {}
        if len(chunks) <= 1:
            pages = [self._summaries(chunk) for chunk in chunks]
        else:
            with ThreadPoolExecutor(max_workers=min(8, len(chunks))) as pool:
                pages = list(pool.map(self._summaries, chunks))
        for page in pages:
            found.update(page)
        return found

    def _summaries(self, job_ids: list[str]) -> dict[str, JobSummary]:
        client = aws.client("dynamodb")  # a client (unlike a resource) may be shared between threads
        request: dict[str, Any] = {
            self.name: {
                "Keys": [{"job_id": {"S": job_id}} for job_id in job_ids],
                "ProjectionExpression": "job_id, #status, inference_type",
                "ExpressionAttributeNames": {"#status": "status"},
                "ConsistentRead": True,
            }
        }
        found: dict[str, JobSummary] = {}
        while request:
            page = client.batch_get_item(RequestItems=request)
            for item in page.get("Responses", {}).get(self.name, []):
                job_id = item["job_id"]["S"]
                found[job_id] = JobSummary(
                    job_id, JobStatus(item["status"]["S"]), item.get("inference_type", {}).get("S", "")
                )
            request = page.get("UnprocessedKeys") or {}
        return found

    # -- transitions of the dispatcher (and the sweeper, which recovers what a dead dispatcher left)
    def claim(self, job_id: str, *, gen: int, provider_id: str, lease_until_ms: int) -> Job | None:
        """QUEUED of this generation, or PROCESSING whose holder died (its lease ran out) -> PROCESSING
        under a new claim; counts an attempt."""
        now = now_ms()
        return self._move(
            job_id,
            (JobStatus.QUEUED, JobStatus.PROCESSING),
            JobStatus.PROCESSING,
            set_values={
                "claim_id": new_claim_id(),
                "provider_id": provider_id,
                "lease_until_ms": lease_until_ms,
                "started_ms": now,
                "seen_ms": now,
            },
            add={"attempt": 1},
            also="gen = :gen AND (#status = :queued OR lease_until_ms < :now)",
            values={":gen": gen, ":queued": JobStatus.QUEUED.value, ":now": now},
        )

    def note_waiting(self, job_id: str, *, gen: int, reason: str) -> Job | None:
        """A QUEUED job of this generation stays QUEUED; note that it was seen, and why it waits."""
        return self._update(
            job_id,
            set_values={"seen_ms": now_ms(), "wait_reason": reason},
            condition="#status = :queued AND gen = :gen",
            values={":queued": JobStatus.QUEUED.value, ":gen": gen},
        )

    def requeue_lost(self, job: Job) -> Job | None:
        """A QUEUED job whose message was lost gets a new generation (the old message, if it was only
        late, is then stale and dropped)."""
        return self._update(
            job.job_id,
            set_values={"seen_ms": now_ms()},
            add={"gen": 1},
            condition="#status = :queued AND gen = :gen",
            values={":queued": JobStatus.QUEUED.value, ":gen": job.gen},
        )

    def requeue_after_failure(self, job: Job, reason: str) -> Job | None:
        """PROCESSING under this claim -> QUEUED as a new generation, the failure kept as the last error:
        the provider failed, or the run's holder died (the sweeper found its lease expired)."""
        return self._move(
            job.job_id,
            (JobStatus.PROCESSING,),
            JobStatus.QUEUED,
            set_values={"error_message": reason, "seen_ms": now_ms()},
            remove=("claim_id", "lease_until_ms"),
            add={"gen": 1},
            also="claim_id = :claim",
            values={":claim": job.claim_id},
        )

    def finish(self, job: Job, result: JobResult, *, outbox: bool = True) -> Job | None:
        """PROCESSING under this claim -> PROCESSED with its result. None: canceled (or reclaimed after the
        lease ran out) while the provider worked, and the answer is dropped. `outbox`: mark the end."""
        return self._move(
            job.job_id,
            (JobStatus.PROCESSING,),
            JobStatus.PROCESSED,
            set_values={"finished_ms": now_ms(), **result.stored_values()},
            remove=("lease_until_ms", "error_type", "error_message"),
            also="claim_id = :claim",
            values={":claim": job.claim_id},
            outbox=outbox,
        )

    def fail(self, job: Job, error_type: str, message: str, *, outbox: bool = True) -> Job | None:
        """PROCESSING under this claim -> FAILED (the provider refused the request, or attempts ran out)."""
        return self._move(
            job.job_id,
            (JobStatus.PROCESSING,),
            JobStatus.FAILED,
            set_values={"finished_ms": now_ms(), "error_type": error_type, "error_message": message},
            remove=("lease_until_ms",),
            also="claim_id = :claim",
            values={":claim": job.claim_id},
            outbox=outbox,
        )

    def fail_exhausted(self, job: Job, *, attempts: int, last_error: str, outbox: bool = True) -> Job | None:
        """`fail` for a job out of attempts, naming how many it had and the last error."""
        return self.fail(job, "upstream_error", exhausted_message(attempts, last_error), outbox=outbox)

    def fail_no_provider(self, job_id: str, *, gen: int, model: str, waited_seconds: float) -> Job | None:
        """QUEUED of this generation -> FAILED: no provider of its model came online in time."""
        message = (
            f"No online provider serving model '{model}' for this user (waited {int(waited_seconds)} s)."
        )
        return self._fail_queued(job_id, "no_provider", message, gen=gen)

    def fail_unrunnable(self, job_id: str, error_type: str, message: str) -> Job | None:
        """QUEUED -> FAILED: the job can never run (its message names an unknown service type)."""
        return self._fail_queued(job_id, error_type, message, gen=None)

    # -- transitions of callers (and of workflows, on their behalf)
    def cancel(self, job_id: str) -> Job | None:
        """QUEUED or PROCESSING -> CANCELED; None if the job had already finished."""
        return self._move(
            job_id,
            ACTIVE,
            JobStatus.CANCELED,
            set_values={"finished_ms": now_ms()},
            remove=("lease_until_ms",),
        )

    def requeue_by_caller(self, job_id: str, account_id: str) -> Job | None:
        """FAILED or CANCELED -> QUEUED as a fresh job (a new generation, attempts from 0, no trace of the
        last run); None if it is not FAILED or CANCELED (any more)."""
        return self._move(
            job_id,
            RETRYABLE,
            JobStatus.QUEUED,
            set_values={"attempt": 0, "queued_ms": now_ms()},
            add={"gen": 1, "manual_retries": 1},
            remove=_RUN_ATTRIBUTES,
            reactivate_for=account_id,
        )

    # -- the job-end hook's bookkeeping
    @staticmethod
    def is_unannounced(job: Job) -> bool:
        """The job (as read) ended and not every subscriber has heard of it yet."""
        return UNANNOUNCED in job.extra

    def mark_announced(self, job: Job) -> bool:
        """Every subscriber heard of this end (`job` as its ending write left it); False when the job has
        moved on since (re-queued by its owner and perhaps ended again: that end is announced on its own)."""
        return (
            self._update(
                job.job_id,
                remove=(UNANNOUNCED,),
                condition="attribute_exists(#marker) AND gen = :gen AND finished_ms = :finished",
                values={":gen": job.gen, ":finished": job.finished_ms},
                names={"#marker": UNANNOUNCED},
            )
            is not None
        )

    def hand_over_token(self, job_id: str, token: str) -> Job | None:
        """An active job's end will answer this task token instead of the one it carried; None if the job
        already ended (and answered the old one)."""
        return self._update(
            job_id,
            set_values={"task_token": token},
            condition="#status IN (:queued, :processing)",
            values={":queued": JobStatus.QUEUED.value, ":processing": JobStatus.PROCESSING.value},
        )

    # -- the two writes every transition is made of
    def _fail_queued(self, job_id: str, error_type: str, message: str, *, gen: int | None) -> Job | None:
        return self._move(
            job_id,
            (JobStatus.QUEUED,),
            JobStatus.FAILED,
            set_values={"finished_ms": now_ms(), "error_type": error_type, "error_message": message},
            also="gen = :gen" if gen is not None else None,
            values={":gen": gen} if gen is not None else None,
        )

    def _move(
        self,
        job_id: str,
        from_statuses: tuple[JobStatus, ...],
        to_status: JobStatus,
        *,
        set_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        add: dict[str, Any] | None = None,
        also: str | None = None,
        values: dict[str, Any] | None = None,
        reactivate_for: str | None = None,
        outbox: bool = True,
    ) -> Job | None:
        """A status change, keeping the sparse index of active work in step with the status.

        `reactivate_for` is the owner's account id, needed when a finished job becomes active again.
        `outbox`: an end is marked unannounced (unless its writer knows nobody must hear it).
        """
        set_values = {**(set_values or {}), "status": to_status.value}
        if to_status not in ACTIVE:
            remove += ("active_account",)
            if outbox:
                set_values[UNANNOUNCED] = unannounced_shard(job_id)  # in the ending write itself
        elif reactivate_for:
            set_values["active_account"] = reactivate_for
        condition = "#status IN (" + ", ".join(f":from{i}" for i in range(len(from_statuses))) + ")"
        condition_values = {f":from{i}": s.value for i, s in enumerate(from_statuses)}
        if also:
            condition += f" AND ({also})"
        condition_values.update(values or {})
        return self._update(
            job_id,
            set_values=set_values,
            remove=remove,
            add=add,
            condition=condition,
            values=condition_values,
        )

    def _update(
        self,
        job_id: str,
        *,
        condition: str,
        values: dict[str, Any],
        set_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        add: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> Job | None:
        """One conditional UpdateItem; None when the condition does not hold (`#status` is `status`)."""
        kwargs = update_arguments(
            set_values=set_values,
            remove=remove,
            add=add,
            condition=condition,
            condition_values=values,
            names=names,
        )
        kwargs["Key"] = {"job_id": job_id}
        try:
            return Job.from_item(self._table.update_item(**kwargs)["Attributes"])
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise


@cached
def get_jobs_table() -> JobsTable:
    return JobsTable(get_settings().jobs_table)
