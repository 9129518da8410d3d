"""DynamoDB storage of jobs. Every state change is a conditional write, so any SQS delivery may come twice."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure, update_arguments
from switchyard.batch_model import JobSummary
from switchyard.clock import now_ms
from switchyard.job_model import ACTIVE, Job, JobStatus

ACTIVE_INDEX = "active_by_account"
ACCOUNT_INDEX = "by_account"


class JobsTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._table = aws.table(table_name)

    # -- reads
    def get(self, job_id: str, consistent: bool = True) -> Job | None:
        item = self._table.get_item(Key={"job_id": job_id}, ConsistentRead=consistent).get("Item")
        return Job.from_item(item) if item and "account_id" in item else None

    def batch_get(self, job_ids: list[str]) -> dict[str, Job]:
        found: dict[str, Job] = {}
        client = aws.resource("dynamodb")
        for start in range(0, len(job_ids), 100):
            keys = [{"job_id": j} for j in job_ids[start : start + 100]]
            request = {self.name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                page = client.batch_get_item(RequestItems=request)
                for item in page.get("Responses", {}).get(self.name, []):
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
        # Plain expressions throughout: boto3's Key()/Attr() builder is shared by all threads using a
        # resource and reset on every call, so concurrent callers could swap each other's placeholders.
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
            found = [Job.from_item(item) for item in page]
            jobs.extend(keep(found) if keep else found)
            if len(jobs) > limit:
                break
        return jobs[:limit], len(jobs) > limit

    def active_jobs(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Active jobs (QUEUED or PROCESSING) from the sparse index: of one account, or of everyone."""
        kwargs: dict[str, Any] = {"IndexName": ACTIVE_INDEX}
        if account_id:
            kwargs["KeyConditionExpression"] = "active_account = :account"
            kwargs["ExpressionAttributeValues"] = {":account": account_id}
        operation = self._table.query if account_id else self._table.scan
        return [item for page in aws.item_pages(operation, **kwargs) for item in page]

    # -- liveness items (no account_id, so they never appear in the account indexes)
    def record_tick(self, item_id: str) -> None:
        self._table.update_item(
            Key={"job_id": item_id},
            UpdateExpression="SET last_tick_ms = :now",
            ExpressionAttributeValues={":now": now_ms()},
        )

    def last_tick_ms(self, item_id: str) -> int | None:
        item = self._table.get_item(Key={"job_id": item_id}).get("Item")
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

    def update(
        self,
        job_id: str,
        *,
        set_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        add: dict[str, int] | None = None,
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
    ) -> Job | None:
        """A conditional update; None when the condition does not hold (someone else moved the job).

        Conditions may refer to the reserved word `status` as `#status`.
        """
        kwargs = update_arguments(
            set_values=set_values,
            remove=remove,
            add=add,
            condition=condition,
            condition_values=condition_values,
        )
        kwargs["Key"] = {"job_id": job_id}
        try:
            return Job.from_item(self._table.update_item(**kwargs)["Attributes"])
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise

    def transition(
        self,
        job_id: str,
        *,
        from_statuses: tuple[JobStatus, ...],
        to_status: JobStatus,
        set_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        add: dict[str, int] | None = None,
        extra_condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
        reactivate_for: str | None = None,
    ) -> Job | None:
        """Move a job between states, keeping the sparse index of active work in step with the status.

        `reactivate_for` is the owner's account id, needed when a finished job becomes active again.
        """
        values = {**(set_values or {}), "status": to_status.value}
        removals = tuple(remove)
        if to_status not in ACTIVE:
            removals += ("active_account",)
        elif reactivate_for:
            values["active_account"] = reactivate_for
        condition = "#status IN (" + ", ".join(f":from{i}" for i in range(len(from_statuses))) + ")"
        cvalues = {f":from{i}": s.value for i, s in enumerate(from_statuses)}
        if extra_condition:
            condition += f" AND ({extra_condition})"
        cvalues.update(condition_values or {})
        return self.update(
            job_id, set_values=values, remove=removals, add=add, condition=condition, condition_values=cvalues
        )
