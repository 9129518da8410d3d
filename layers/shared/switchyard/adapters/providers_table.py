"""DynamoDB storage of provider agents, and of the capacity slots their running jobs hold.

A provider runs at most `max_concurrency` async jobs; each running job holds a lease (lease key ->
expiry, epoch ms) in the `leases` map on the provider's item. Leases are counted atomically by
DynamoDB (`size(leases) < max_concurrency`), released when the job ends, and expire (swept) if a
dispatcher dies holding one. Heartbeats update the item in place, so leases survive them.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure
from switchyard.caches import cached
from switchyard.provider_model import Provider, Registration
from switchyard.settings import get_settings


class ProvidersTable:
    def __init__(self, table_name: str):
        self._table = aws.table(table_name)

    def record_heartbeat(self, provider: Provider, expires_at: int) -> None:
        """Create or refresh the provider (UpdateItem, not PutItem: its leases must survive); a provider
        that stops heartbeating is deleted once `expires_at` (epoch seconds, the TTL) has passed."""
        last_seen_ms = int(provider.last_seen * 1000)
        self._table.update_item(
            Key=self._key(provider.account_id, provider.provider_id),
            UpdateExpression=(
                "SET endpoint_url = :u, secret = :s, max_concurrency = :c, models = :m, last_seen = :t, "
                "first_seen = if_not_exists(first_seen, :t), leases = if_not_exists(leases, :empty), "
                "expires_at = :x"
            ),
            ExpressionAttributeValues={
                ":u": provider.endpoint_url,
                ":s": provider.secret,
                ":c": provider.max_concurrency,
                ":m": [m.model_dump() for m in provider.models],
                ":t": last_seen_ms,
                ":empty": {},
                ":x": expires_at,
            },
        )

    def of_account(self, account_id: str) -> tuple[Provider, ...]:
        # Plain expressions: boto3's Key()/Attr() builder is shared by every thread using a resource and is
        # reset on each call, so concurrent queries (the dispatcher's threads, the front's) can mix them up.
        pages = aws.item_pages(
            self._table.query,
            KeyConditionExpression="account_id = :a",
            ExpressionAttributeValues={":a": account_id},
        )
        return tuple(Provider.from_item(item) for page in pages for item in page)

    def count_online(self, seen_since_ms: int) -> int:
        """Providers of every account that heartbeated at or after `seen_since_ms` (the sweeper's census;
        the table holds heartbeat state only, so the scan is as small as the fleet)."""
        return aws.item_count(
            self._table.scan,
            FilterExpression="last_seen >= :since",
            ExpressionAttributeValues={":since": seen_since_ms},
        )

    def registrations(self, account_id: str) -> list[Registration]:
        """Every provider of the account, with its leases and first heartbeat (read afresh)."""
        pages = aws.item_pages(
            self._table.query,
            KeyConditionExpression="account_id = :a",
            ExpressionAttributeValues={":a": account_id},
        )
        return [
            Registration(
                provider=Provider.from_item(item),
                leases={key: int(until) for key, until in (item.get("leases") or {}).items()},
                first_seen=int(item["first_seen"]) / 1000 if item.get("first_seen") else None,
            )
            for page in pages
            for item in page
        ]

    def leases(self, account_id: str, provider_id: str) -> dict[str, int]:
        """The provider's leases (lease key -> expiry, epoch ms); empty for an unknown provider."""
        item: dict[str, Any] | None = self._table.get_item(
            Key=self._key(account_id, provider_id), ConsistentRead=True
        ).get("Item")
        return {key: int(until) for key, until in ((item or {}).get("leases") or {}).items()}

    def acquire_slot(self, account_id: str, provider_id: str, lease_key: str, until_ms: int) -> bool:
        """Take one of the provider's slots until `until_ms`; False when every slot is taken."""
        return self._conditional(
            account_id,
            provider_id,
            UpdateExpression="SET leases.#job = :until",
            ConditionExpression="attribute_exists(leases) AND size(leases) < max_concurrency",
            ExpressionAttributeNames={"#job": lease_key},
            ExpressionAttributeValues={":until": until_ms},
        )

    def release_slot(self, account_id: str, provider_id: str, lease_key: str) -> None:
        self._conditional(
            account_id,
            provider_id,
            UpdateExpression="REMOVE leases.#job",
            ConditionExpression="attribute_exists(leases)",
            ExpressionAttributeNames={"#job": lease_key},
        )

    def expire_leases(self, now_ms: int) -> int:
        """Drop leases past their expiry (their holder died); returns how many were dropped."""
        dropped = 0
        pages = aws.item_pages(self._table.scan, ProjectionExpression="account_id, provider_id, leases")
        for item in (item for page in pages for item in page):
            for lease_key, until in (item.get("leases") or {}).items():
                if int(until) >= now_ms:
                    continue
                # Only the lease as read, so two sweeps at once count it once.
                dropped += self._conditional(
                    item["account_id"],
                    item["provider_id"],
                    UpdateExpression="REMOVE leases.#job",
                    ConditionExpression="leases.#job = :until",
                    ExpressionAttributeNames={"#job": lease_key},
                    ExpressionAttributeValues={":until": until},
                )
        return dropped

    def _conditional(self, account_id: str, provider_id: str, **update: Any) -> bool:
        """One conditional UpdateItem; False when the condition does not hold."""
        try:
            self._table.update_item(Key=self._key(account_id, provider_id), **update)
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    @staticmethod
    def _key(account_id: str, provider_id: str) -> dict[str, str]:
        return {"account_id": account_id, "provider_id": provider_id}


@cached
def get_providers_table() -> ProvidersTable:
    return ProvidersTable(get_settings().providers_table)
