"""DynamoDB storage of webhook endpoints, their deliveries, and the batch counters behind batch.completed.

Keys: `pk` is the endpoint's id for the endpoint item (sk "endpoint") and for each of its deliveries
(sk "msg#<delivery id>", so one query lists an endpoint's deliveries newest first: delivery ids sort by
the time of their event). Only endpoint items carry `account_id`, so `by_account` lists endpoints, never
deliveries. A pending delivery carries `wake_part`/`wake_ms`: the sparse `by_wake` index is how the
sweeper finds deliveries whose next attempt is too far off for an SQS delay, or whose message was lost.
Deliveries and counters expire (`expires_at`, TTL); endpoints do not.

Every state change of a delivery is a conditional write, so a message delivered twice, a late message of
an earlier attempt, or a sweeper racing the delivery function can never record an attempt twice or move a
finished delivery.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure, update_arguments
from switchyard.caches import cached
from switchyard.settings import get_settings
from switchyard.webhook_model import Attempt, Delivery, DeliveryState, EndpointStatus, WebhookEndpoint

ACCOUNT_INDEX = "by_account"
WAKE_INDEX = "by_wake"
ENDPOINT_SK = "endpoint"
DELIVERY_PREFIX = "msg#"
# The wake index is spread over a few partitions, so that a burst of retries does not funnel every write
# of the index into one partition (a GSI partition takes ~1,000 writes/s); the sweeper reads them all.
WAKE_SHARDS = 4


def wake_part_for(delivery_id: str) -> str:
    return f"wake#{zlib.crc32(delivery_id.encode()) % WAKE_SHARDS}"


def wake_parts() -> list[str]:
    return [f"wake#{shard}" for shard in range(WAKE_SHARDS)]


def _endpoint_key(webhook_id: str) -> dict[str, str]:
    return {"pk": webhook_id, "sk": ENDPOINT_SK}


def _delivery_key(webhook_id: str, delivery_id: str) -> dict[str, str]:
    return {"pk": webhook_id, "sk": DELIVERY_PREFIX + delivery_id}


def _batch_key(batch_id: str) -> dict[str, str]:
    return {"pk": f"batch#{batch_id}", "sk": "progress"}


class WebhooksTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._table = aws.table(table_name)

    # ------------------------------------------------------------ endpoints
    def create_endpoint(self, endpoint: WebhookEndpoint) -> None:
        item: dict[str, Any] = {
            **_endpoint_key(endpoint.webhook_id),
            "account_id": endpoint.account_id,
            "url": endpoint.url,
            "secret": endpoint.secret,
            "created_ms": endpoint.created_ms,
            "status": endpoint.status.value,
        }
        if endpoint.events is not None:
            item["events"] = list(endpoint.events)
        if endpoint.description is not None:
            item["description"] = endpoint.description
        self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")

    def get_endpoint(self, webhook_id: str, consistent: bool = True) -> WebhookEndpoint | None:
        item = self._table.get_item(Key=_endpoint_key(webhook_id), ConsistentRead=consistent).get("Item")
        return WebhookEndpoint.from_item(item) if item else None

    def endpoints_of(
        self, account_id: str, *, limit: int, after: str | None
    ) -> tuple[list[WebhookEndpoint], bool]:
        """Newest first; (endpoints, has_more). `after` is the last id of the previous page."""
        condition = "account_id = :account"
        values: dict[str, Any] = {":account": account_id}
        if after:
            condition += " AND pk < :after"
            values[":after"] = after
        found: list[WebhookEndpoint] = []
        pages = aws.item_pages(
            self._table.query,
            IndexName=ACCOUNT_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit + 1,
        )
        for page in pages:
            found.extend(WebhookEndpoint.from_item(item) for item in page)
            if len(found) > limit:
                break
        return found[:limit], len(found) > limit

    def count_endpoints(self, account_id: str) -> int:
        pages = aws.item_pages(
            self._table.query,
            IndexName=ACCOUNT_INDEX,
            KeyConditionExpression="account_id = :account",
            ExpressionAttributeValues={":account": account_id},
            ProjectionExpression="pk",
        )
        return sum(len(page) for page in pages)

    def delete_endpoint(self, webhook_id: str, account_id: str) -> bool:
        try:
            self._table.delete_item(
                Key=_endpoint_key(webhook_id),
                ConditionExpression="account_id = :account",
                ExpressionAttributeValues={":account": account_id},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def rotate_secret(
        self, endpoint: WebhookEndpoint, new_secret: str, now_ms: int, overlap_ms: int
    ) -> WebhookEndpoint | None:
        """The current secret becomes the previous one (signing on for `overlap_ms`); None if the
        endpoint changed meanwhile (deleted, or rotated by a concurrent call)."""
        return self._update_endpoint(
            endpoint.webhook_id,
            set_values={
                "secret": new_secret,
                "previous_secret": endpoint.secret,
                "previous_secret_expires_ms": now_ms + overlap_ms,
                "rotated_ms": now_ms,
            },
            condition="secret = :current",
            condition_values={":current": endpoint.secret},
        )

    def disable_endpoint(self, webhook_id: str, reason: str, now_ms: int) -> WebhookEndpoint | None:
        return self._update_endpoint(
            webhook_id,
            set_values={
                "status": EndpointStatus.DISABLED.value,
                "disabled_reason": reason,
                "disabled_ms": now_ms,
            },
            condition="#status = :enabled",
            condition_values={":enabled": EndpointStatus.ENABLED.value},
        )

    def enable_endpoint(self, webhook_id: str) -> WebhookEndpoint | None:
        return self._update_endpoint(
            webhook_id,
            set_values={"status": EndpointStatus.ENABLED.value},
            remove=("disabled_reason", "disabled_ms"),
            condition="#status = :disabled",
            condition_values={":disabled": EndpointStatus.DISABLED.value},
        )

    def _update_endpoint(self, webhook_id: str, **changes: Any) -> WebhookEndpoint | None:
        item = self._update(_endpoint_key(webhook_id), **changes)
        return WebhookEndpoint.from_item(item) if item else None

    # ------------------------------------------------------------ deliveries
    def create_delivery(
        self, delivery: Delivery, *, expires_at: int, wake_ms: int | None, final_reason: str | None = None
    ) -> bool:
        """Store a new delivery; False when it exists already (the same happening announced again)."""
        item: dict[str, Any] = {
            **_delivery_key(delivery.webhook_id, delivery.delivery_id),
            "delivery_id": delivery.delivery_id,
            "event": delivery.event,
            "created_ms": delivery.created_ms,
            "state": delivery.state.value,
            "next_index": delivery.next_index,
            "attempts": [],
            "expires_at": expires_at,
        }
        for name in ("body", "body_key", "generation_id", "next_attempt_ms", "manual_token"):
            if getattr(delivery, name) is not None:
                item[name] = getattr(delivery, name)
        if final_reason:
            item["final_reason"] = final_reason
        if wake_ms is not None and delivery.state == DeliveryState.PENDING:
            item["wake_part"] = wake_part_for(delivery.delivery_id)
            item["wake_ms"] = wake_ms
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        item = self._table.get_item(Key=_delivery_key(webhook_id, delivery_id), ConsistentRead=True).get(
            "Item"
        )
        return Delivery.from_item(item) if item else None

    def deliveries_of(
        self, webhook_id: str, *, limit: int, after: str | None, state: str | None
    ) -> tuple[list[Delivery], bool]:
        """Newest first; (deliveries, has_more). `after` is the last delivery id of the previous page."""
        values: dict[str, Any] = {":pk": webhook_id}
        if after:
            condition = "pk = :pk AND sk BETWEEN :low AND :before"
            values[":low"] = DELIVERY_PREFIX
            values[":before"] = DELIVERY_PREFIX + after
        else:
            condition = "pk = :pk AND begins_with(sk, :prefix)"
            values[":prefix"] = DELIVERY_PREFIX
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
            "Limit": max(limit + 1, 25),
        }
        if state:
            kwargs["FilterExpression"] = "#state = :state"
            kwargs["ExpressionAttributeNames"] = {"#state": "state"}
            values[":state"] = state
        kwargs["ExpressionAttributeValues"] = values
        found: list[Delivery] = []
        for page in aws.item_pages(self._table.query, **kwargs):
            found.extend(
                Delivery.from_item(item) for item in page if item["sk"] != DELIVERY_PREFIX + (after or "")
            )
            if len(found) > limit:
                break
        return found[:limit], len(found) > limit

    def record_scheduled_attempt(
        self,
        delivery: Delivery,
        index: int,
        attempt: Attempt | None,
        *,
        succeeded: bool = False,
        retry_at_ms: int | None = None,
        wake_ms: int | None = None,
        final_reason: str | None = None,
    ) -> Delivery | None:
        """Record attempt number `index` of the schedule and what follows it: success, another attempt
        at `retry_at_ms` (woken by the sweeper from `wake_ms`), or failure for good (`final_reason`).
        None when that attempt was recorded already or the delivery is no longer pending (stale message)."""
        values: dict[str, Any] = {}
        remove: list[str] = []
        if succeeded:
            values["state"] = DeliveryState.SUCCEEDED.value
            remove += ["next_attempt_ms", "wake_part", "wake_ms", "final_reason"]
        elif retry_at_ms is not None:
            values.update(next_index=index + 1, next_attempt_ms=retry_at_ms)
            if wake_ms is not None:
                values.update(wake_part=wake_part_for(delivery.delivery_id), wake_ms=wake_ms)
        else:
            values.update(state=DeliveryState.FAILED.value, final_reason=final_reason or "failed")
            remove += ["next_attempt_ms", "wake_part", "wake_ms"]
        return self._record(
            delivery,
            attempt,
            values,
            tuple(remove),
            condition="#state = :pending AND next_index = :index",
            condition_values={":pending": DeliveryState.PENDING.value, ":index": index},
        )

    def request_redelivery(self, webhook_id: str, delivery_id: str, token: str) -> Delivery | None:
        item = self._update(_delivery_key(webhook_id, delivery_id), set_values={"manual_token": token})
        return Delivery.from_item(item) if item else None

    def record_manual_attempt(
        self,
        delivery: Delivery,
        token: str,
        attempt: Attempt,
        *,
        succeeded: bool,
        final_reason: str | None = None,
    ) -> Delivery | None:
        """A redelivery (or a test) that was asked for with `token`. Success ends the delivery, whatever
        its state; a failure with `final_reason` fails it (one with no schedule running); a failure
        without only adds to the log (the schedule carries on)."""
        values: dict[str, Any] = {}
        remove = ["manual_token"]
        if succeeded:
            values["state"] = DeliveryState.SUCCEEDED.value
            remove += ["next_attempt_ms", "wake_part", "wake_ms", "final_reason"]
        elif final_reason:
            values.update(state=DeliveryState.FAILED.value, final_reason=final_reason)
            remove += ["next_attempt_ms", "wake_part", "wake_ms"]
        return self._record(
            delivery,
            attempt,
            values,
            tuple(remove),
            condition="manual_token = :token",
            condition_values={":token": token},
        )

    def _record(
        self,
        delivery: Delivery,
        attempt: Attempt | None,
        values: dict[str, Any],
        remove: tuple[str, ...],
        *,
        condition: str,
        condition_values: dict[str, Any],
    ) -> Delivery | None:
        names = {"#state": "state"} if "#state" in condition else {}
        if attempt is not None:
            names["#attempts"] = "attempts"
        kwargs = update_arguments(
            set_values=values,
            remove=remove,
            condition=condition,
            condition_values=condition_values,
            names=names,
        )
        if attempt is not None:
            # list_append cannot go through update_arguments' SET (it only assigns values).
            kwargs["UpdateExpression"] = _with_appended_attempt(kwargs["UpdateExpression"])
            kwargs.setdefault("ExpressionAttributeValues", {}).update(
                {":attempt": [attempt.to_item()], ":no_attempts": []}
            )
        kwargs["Key"] = _delivery_key(delivery.webhook_id, delivery.delivery_id)
        try:
            item = self._table.update_item(**kwargs)["Attributes"]
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return Delivery.from_item(item)

    def mark_woken(self, webhook_id: str, delivery_id: str, index: int, wake_ms: int) -> bool:
        """Look at scheduled attempt `index` again at `wake_ms` if it is still pending then: after the
        sweeper sent its message (in case that one is lost too), or when its message could not be sent."""
        return (
            self._update(
                _delivery_key(webhook_id, delivery_id),
                set_values={"wake_part": wake_part_for(delivery_id), "wake_ms": wake_ms},
                condition="#state = :pending AND next_index = :index",
                condition_values={":pending": DeliveryState.PENDING.value, ":index": index},
                names={"#state": "state"},
            )
            is not None
        )

    def due_for_wake(self, now_ms: int) -> Iterator[dict[str, Any]]:
        """Pending deliveries whose wake time has come, from every partition of the wake index."""
        for part in random.sample(wake_parts(), WAKE_SHARDS):
            pages = aws.item_pages(
                self._table.query,
                IndexName=WAKE_INDEX,
                KeyConditionExpression="wake_part = :part AND wake_ms <= :now",
                ExpressionAttributeValues={":part": part, ":now": now_ms},
            )
            for page in pages:
                yield from page

    def count_parked(self) -> int:
        """How many deliveries sit in the wake index (their next attempt is too far off for an SQS delay,
        or their message was refused): the operators' backlog gauge, a COUNT query per partition."""
        total = 0
        for part in wake_parts():
            kwargs: dict[str, Any] = {
                "IndexName": WAKE_INDEX,
                "KeyConditionExpression": "wake_part = :part",
                "ExpressionAttributeValues": {":part": part},
                "Select": "COUNT",
            }
            while True:  # a COUNT page has no Items for aws.item_pages to yield
                page = self._table.query(**kwargs)
                total += int(page.get("Count", 0))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return total

    # ------------------------------------------------------------ batch counters
    def count_batch_end(
        self, batch_id: str, *, webhook_id: str, total: int, expires_at: int
    ) -> tuple[int, int | None]:
        """One more job of the batch ended: (ends counted so far, when batch.completed was announced).

        A hint, not the truth: a job retried after its end counts twice, so the caller checks the jobs
        themselves once the count reaches the batch's size.
        """
        answer: dict[str, Any] = self._table.update_item(
            Key=_batch_key(batch_id),
            UpdateExpression="SET webhook_id = :w, #total = :t, expires_at = :e ADD ended :one",
            ExpressionAttributeNames={"#total": "total"},
            ExpressionAttributeValues={":w": webhook_id, ":t": total, ":e": expires_at, ":one": 1},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        announced = answer.get("announced_ms")
        return int(answer["ended"]), int(announced) if announced is not None else None

    def announce_batch(self, batch_id: str, now_ms: int) -> int:
        """When batch.completed is (or was) announced: the first caller sets it, later ones read it."""
        try:
            self._table.update_item(
                Key=_batch_key(batch_id),
                UpdateExpression="SET announced_ms = :now",
                ConditionExpression="attribute_not_exists(announced_ms)",
                ExpressionAttributeValues={":now": now_ms},
            )
            return now_ms
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
        item: dict[str, Any] = (
            self._table.get_item(Key=_batch_key(batch_id), ConsistentRead=True).get("Item") or {}
        )
        return int(item.get("announced_ms", now_ms))

    # ------------------------------------------------------------ plumbing
    def _update(
        self,
        key: dict[str, str],
        *,
        set_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """A conditional update of an existing item (never creates one); None when the condition fails."""
        guard = "attribute_exists(pk)" + (f" AND ({condition})" if condition else "")
        kwargs = update_arguments(
            set_values=set_values,
            remove=remove,
            condition=guard,
            condition_values=condition_values,
            names=names,
        )
        kwargs["Key"] = key
        try:
            return self._table.update_item(**kwargs)["Attributes"]
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise


def _with_appended_attempt(expression: str) -> str:
    """Add `#attempts = list_append(#attempts, :attempt)` to an UpdateExpression's SET clause."""
    append = "#attempts = list_append(if_not_exists(#attempts, :no_attempts), :attempt)"
    if expression.startswith("SET "):
        return f"SET {append}, " + expression[len("SET ") :]
    return f"SET {append} " + expression if expression else f"SET {append}"


@cached
def get_webhooks_table() -> WebhooksTable:
    return WebhooksTable(get_settings().webhooks_table)
