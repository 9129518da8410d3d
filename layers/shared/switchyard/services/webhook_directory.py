"""Webhook endpoints by id, cached briefly: every announcement and delivery attempt looks one up."""

from __future__ import annotations

from switchyard.adapters.webhooks_table import WebhooksTable, get_webhooks_table
from switchyard.caches import cached
from switchyard.settings import get_settings
from switchyard.ttl_cache import TtlCache
from switchyard.webhook_model import WebhookEndpoint


class EndpointDirectory:
    """Endpoints by id, cached briefly: every delivery attempt and announcement looks one up.

    A rotated secret, a deletion or a disabling takes effect within the cache's lifetime in other
    processes, at once in this one (writes here invalidate).
    """

    def __init__(self, table: WebhooksTable, ttl_seconds: float):
        self.table = table
        self._cache: TtlCache[WebhookEndpoint | None] = TtlCache(ttl_seconds)

    def get(self, webhook_id: str) -> WebhookEndpoint | None:
        return self._cache.get_or_load(webhook_id, lambda: self.table.get_endpoint(webhook_id))

    def invalidate(self, webhook_id: str) -> None:
        self._cache.invalidate(webhook_id)


@cached
def get_endpoint_directory() -> EndpointDirectory:
    return EndpointDirectory(get_webhooks_table(), get_settings().webhook_endpoint_cache_seconds)
