"""Generations: any async job of the caller as inference.net's GenerationForClient."""

from __future__ import annotations

from typing import Any

from switchyard.adapters.media_store import MediaStore
from switchyard.caches import cached
from switchyard.errors import NotFound
from switchyard.generation import generation_of
from switchyard.services.jobs import JobsService, get_jobs_service
from switchyard.settings import get_settings


class GenerationsService:
    def __init__(self, jobs: JobsService, media: MediaStore):
        self.jobs = jobs
        self.media = media

    def get(self, account_id: str, generation_id: str, base_url: str | None) -> dict[str, Any]:
        try:
            job = self.jobs.get(account_id, generation_id)
        except NotFound:
            raise NotFound(f"No generation '{generation_id}'.") from None
        return generation_of(job, self.media, base_url, get_settings().read_inline_result_limit_bytes)


@cached
def get_generations_service() -> GenerationsService:
    return GenerationsService(get_jobs_service(), MediaStore(get_settings().media_bucket))
