"""The SQS queue that wakes the dispatcher. A message only says "look at job X (generation G)"."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switchyard.adapters import aws
from switchyard.job_model import Job

if TYPE_CHECKING:
    from types_boto3_sqs.literals import MessageSystemAttributeNameForSendsType
    from types_boto3_sqs.type_defs import (
        MessageSystemAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

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
    # The submitting request and its trace (switchyard/tracing.py), so every dispatch of the job joins it.
    request_id: str | None = None
    trace_header: str | None = None

    def to_body(self) -> str:
        fields = {name: value for name, value in self.__dict__.items() if value is not None}
        return json.dumps(fields, separators=(",", ":"))

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
                request_id=_optional_str(data.get("request_id")),
                trace_header=_optional_str(data.get("trace_header")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a job message: {body[:200]!r}") from exc

    @classmethod
    def for_job(cls, job: Job) -> JobMessage:
        return cls(
            job.job_id,
            job.gen,
            job.account_id,
            job.model,
            job.service_type,
            job.queued_ms,
            request_id=job.request_id,
            trace_header=job.trace_header,
        )

    def system_attributes(
        self,
    ) -> dict[MessageSystemAttributeNameForSendsType, MessageSystemAttributeValueTypeDef]:
        """The trace header as SQS's own AWSTraceHeader attribute (X-Ray links the dispatcher's
        invocation to the submitting request through it); none without a trace."""
        if not self.trace_header:
            return {}
        return {"AWSTraceHeader": {"DataType": "String", "StringValue": self.trace_header}}


def _optional_str(value: Any) -> str | None:
    return str(value) if value else None


class JobsQueue:
    def __init__(self, queue_url: str):
        self.queue_url = queue_url

    def send(self, message: JobMessage, delay_seconds: int = 0) -> None:
        delay = max(0, min(int(delay_seconds), MAX_DELAY_SECONDS))
        attributes = message.system_attributes()
        sqs = aws.client("sqs")
        if attributes:  # never an empty map: only messages of a traced request carry one
            sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=message.to_body(),
                DelaySeconds=delay,
                MessageSystemAttributes=attributes,
            )
        else:
            sqs.send_message(QueueUrl=self.queue_url, MessageBody=message.to_body(), DelaySeconds=delay)

    def send_many(self, messages: list[JobMessage]) -> list[JobMessage]:
        """Send in batches of 10; returns the messages SQS did not accept (the sweeper re-sends those)."""
        failed: list[JobMessage] = []
        sqs = aws.client("sqs")
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries: list[SendMessageBatchRequestEntryTypeDef] = []
            for i, m in enumerate(chunk):
                entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(i), "MessageBody": m.to_body()}
                if attributes := m.system_attributes():
                    entry["MessageSystemAttributes"] = attributes
                entries.append(entry)
            response = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed.extend(chunk[int(entry["Id"])] for entry in response.get("Failed", []))
        return failed
