"""DynamoDB storage of batches: the commit marker that makes a batch's jobs exist, and the job id list.

A batch item is written CREATING (carrying the sparse `uncommitted` key, so the sweeper can find one whose
creator died), its jobs are written next, and one conditional write CREATING -> COMMITTED makes the whole
batch visible at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure
from switchyard.batch_model import Batch, BatchState
from switchyard.caches import cached
from switchyard.retention import is_expired
from switchyard.settings import get_settings

ACCOUNT_INDEX = "by_account"
UNCOMMITTED_INDEX = "uncommitted"
UNCOMMITTED = "1"  # the one partition of the sparse index: only batches in flight carry it
_COMMITTED_CACHE_LIMIT = 50_000


class BatchesTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._table = aws.table(table_name)
        # COMMITTED is final, so a batch seen committed can be remembered for good: on a warm function the
        # visibility check of a batch job costs nothing after the first look.
        self._committed: set[str] = set()
        self._lock = threading.Lock()

    # -- reads
    def get(self, batch_id: str) -> Batch | None:
        item = self._table.get_item(Key={"batch_id": batch_id}, ConsistentRead=True).get("Item")
        return Batch.from_item(item) if item and not is_expired(item) else None

    def committed(self, batch_ids: Iterable[str]) -> set[str]:
        """Which of these batches are committed (a missing batch is not)."""
        wanted = set(batch_ids)
        with self._lock:
            found = wanted & self._committed
        unknown = sorted(wanted - found)
        client = aws.resource("dynamodb")
        for start in range(0, len(unknown), 100):
            request: dict[str, Any] = {
                self.name: {
                    "Keys": [{"batch_id": b} for b in unknown[start : start + 100]],
                    "ProjectionExpression": "batch_id, #state",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ConsistentRead": True,
                }
            }
            while request:
                page = client.batch_get_item(RequestItems=request)
                for item in page.get("Responses", {}).get(self.name, []):
                    if item.get("state") == BatchState.COMMITTED.value:
                        found.add(str(item["batch_id"]))
                request = page.get("UnprocessedKeys") or {}
        self._remember(found)
        return found

    def is_committed(self, batch_id: str) -> bool:
        return batch_id in self.committed((batch_id,))

    def list_for_account(self, account_id: str, *, limit: int, after: str | None) -> tuple[list[Batch], bool]:
        """Committed batches, newest first (ids sort by creation time, so `after` is a batch id)."""
        # Plain expressions: boto3's Key()/Attr() builder is not safe to share between threads.
        condition = "account_id = :account"
        values: dict[str, Any] = {":account": account_id, ":committed": BatchState.COMMITTED.value}
        if after:
            condition += " AND batch_id < :after"
            values[":after"] = after
        kwargs: dict[str, Any] = {
            "IndexName": ACCOUNT_INDEX,
            "KeyConditionExpression": condition,
            "FilterExpression": "#state = :committed",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        batches: list[Batch] = []
        for page in aws.item_pages(self._table.query, **kwargs):
            batches.extend(Batch.from_item(item) for item in page if not is_expired(item))
            if len(batches) > limit:
                break
        return batches[:limit], len(batches) > limit

    def uncommitted_before(self, created_before_ms: int) -> list[Batch]:
        """Batches still CREATING (or being abandoned) that were started before the given time."""
        kwargs: dict[str, Any] = {
            "IndexName": UNCOMMITTED_INDEX,
            "KeyConditionExpression": "uncommitted = :marker AND created_ms < :before",
            "ExpressionAttributeValues": {":marker": UNCOMMITTED, ":before": created_before_ms},
        }
        return [
            Batch.from_item(item) for page in aws.item_pages(self._table.query, **kwargs) for item in page
        ]

    # -- writes
    def create(self, batch: Batch) -> None:
        """Write the batch CREATING: invisible, and findable by the sweeper until it is committed."""
        item = {**batch.to_item(), "state": BatchState.CREATING.value, "uncommitted": UNCOMMITTED}
        self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(batch_id)")

    def commit(self, batch_id: str) -> bool:
        """CREATING -> COMMITTED in one conditional write; False if the sweeper abandoned it first."""
        if not self._move(batch_id, BatchState.CREATING, BatchState.COMMITTED, remove_uncommitted=True):
            return False
        self._remember({batch_id})
        return True

    def abandon(self, batch_id: str) -> bool:
        """CREATING -> ABANDONED; False if its creator committed it after all."""
        return self._move(batch_id, BatchState.CREATING, BatchState.ABANDONED, remove_uncommitted=False)

    def delete(self, batch_id: str) -> None:
        self._table.delete_item(Key={"batch_id": batch_id})

    # -- helpers
    def _move(
        self, batch_id: str, from_state: BatchState, to_state: BatchState, *, remove_uncommitted: bool
    ) -> bool:
        update = "SET #state = :to" + (" REMOVE uncommitted" if remove_uncommitted else "")
        try:
            self._table.update_item(
                Key={"batch_id": batch_id},
                UpdateExpression=update,
                ConditionExpression="#state = :from",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":to": to_state.value, ":from": from_state.value},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def _remember(self, batch_ids: set[str]) -> None:
        if not batch_ids:
            return
        with self._lock:
            if len(self._committed) + len(batch_ids) > _COMMITTED_CACHE_LIMIT:
                self._committed.clear()  # bounded memory beats LRU bookkeeping on this path
            self._committed |= batch_ids


@cached
def get_batches_table() -> BatchesTable:
    """One per process: it remembers which batches are committed."""
    return BatchesTable(get_settings().batches_table)
