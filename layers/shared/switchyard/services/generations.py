"""Generations: any async job of the caller as inference.net's GenerationForClient."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from switchyard.errors import NotFound
from switchyard.generation import generation_for_client
from switchyard.job_model import Job, JobStatus
from switchyard.services.jobs import JobsService, get_jobs_service


class GenerationsService:
    def __init__(self, jobs: JobsService):
        self.jobs = jobs

    def get(self, account_id: str, generation_id: str, base_url: str | None) -> dict[str, Any]:
        try:
            job = self.jobs.get(account_id, generation_id)
        except NotFound:
            raise NotFound(f"No generation '{generation_id}'.") from None
        return self.of(job, base_url)

    def of(self, job: Job, base_url: str | None) -> dict[str, Any]:
        return generation_for_client(job, self.request(job), self.response(job, base_url))

    def request(self, job: Job) -> dict[str, Any]:
        """The request body as the caller sent it: what the provider got, plus the gateway's fields."""
        text = job.body if job.body is not None else self.jobs.media.get(job.body_key).content.decode()
        request = json.loads(text)
        request.update(json.loads(job.extra.get("client_fields") or "{}"))
        return request

    def response(self, job: Job, base_url: str | None) -> Any:
        """The provider's answer: its JSON for text and embeddings; for media, where the stored asset is
        (`url`, under the gateway that took the request) and the provider's JSON without the bytes."""
        if job.status != JobStatus.PROCESSED:
            return None
        envelope = self.jobs.envelope(job, base_url)
        if not job.is_media:
            return envelope.get("result")
        return {
            "object": "inference.asset",
            "url": envelope.get("result_url"),
            "content_type": job.result_content_type,
            "metadata": envelope.get("result"),
        }


@lru_cache(maxsize=1)
def get_generations_service() -> GenerationsService:
    return GenerationsService(get_jobs_service())
