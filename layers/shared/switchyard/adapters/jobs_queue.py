"""The SQS queue that wakes the dispatcher. A message only says "look at job X (generation G)".

Every message carries its account as MessageGroupId: on a standard queue that makes SQS a fair queue,
which delivers other accounts' messages ahead of the backlog of one that has more than its share in
flight (the local stack's poller does the same, local/switchyard_local/sqs_poller.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from switchyard.adapters import aws

MAX_DELAY_SECONDS = 900  # SQS's own limit


@dataclass(frozen=True)
class JobMessage:
    """Carries what the dispatcher needs to pick a provider before it touches the job item, so the
    common path is: take a provider slot, claim the job, push, store the result, free the slot."""

    job_id: str
    gen: int
    account_id: str
    model: str
    service_type: str
    queued_ms: int

    def to_body(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_body(cls, body: str) -> JobMessage:
        data = json.loads(body)
        try:
            return cls(
                job_id=str(data["job_id"]),
                gen=int(data["gen"]),
                account_id=str(data["account_id"]),
                model=str(data["model"]),
                service_type=str(data["service_type"]),
                queued_ms=int(data["queued_ms"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a job message: {body[:200]!r}") from exc

    @classmethod
    def for_job(cls, job) -> JobMessage:
        return cls(job.job_id, job.gen, job.account_id, job.model, job.service_type, job.queued_ms)


class JobsQueue:
    def __init__(self, queue_url: str):
        self.queue_url = queue_url

    def send(self, message: JobMessage, delay_seconds: int = 0) -> None:
        aws.client("sqs").send_message(
            QueueUrl=self.queue_url,
            MessageBody=message.to_body(),
            DelaySeconds=max(0, min(int(delay_seconds), MAX_DELAY_SECONDS)),
            MessageGroupId=message.account_id,
        )

    def send_many(self, messages: list[JobMessage]) -> list[JobMessage]:
        """Send in batches of 10; returns the messages SQS did not accept (the sweeper re-sends those)."""
        failed: list[JobMessage] = []
        sqs = aws.client("sqs")
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "MessageBody": m.to_body(), "MessageGroupId": m.account_id}
                    for i, m in enumerate(chunk)
                ],
            )
            failed.extend(chunk[int(entry["Id"])] for entry in response.get("Failed", []))
        return failed
