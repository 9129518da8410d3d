"""DynamoDB storage of workflow runs: one run item and one item per step, under the run's id.

Keys: `run_id` (partition) and `sk`: "run" for the run, "step#<step id>" for each step. Only run items
carry `account_id`, so the `by_account` index (account_id, run_id) lists runs, never steps; run ids
sort by creation time, so that index is newest-first when read backwards.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure, update_arguments

ACCOUNT_INDEX = "by_account"
RUN_SK = "run"
STEP_PREFIX = "step#"


def step_key(run_id: str, step_id: str) -> dict[str, str]:
    return {"run_id": run_id, "sk": f"{STEP_PREFIX}{step_id}"}


def run_key(run_id: str) -> dict[str, str]:
    return {"run_id": run_id, "sk": RUN_SK}


class RunsTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._table = aws.table(table_name)

    # -- writes
    def create(self, run_item: dict[str, Any], step_items: list[dict[str, Any]]) -> None:
        """Steps first, the run last: a run that can be read always has all of its steps."""
        with self._table.batch_writer() as writer:
            for item in step_items:
                writer.put_item(Item=item)
        self._table.put_item(Item=run_item, ConditionExpression="attribute_not_exists(run_id)")

    def update(
        self,
        key: dict[str, str],
        *,
        set_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        add: dict[str, int] | None = None,
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """A conditional update returning the new item; None when the condition does not hold.

        Conditions may name the reserved word `status` as `#status`; `names` maps other placeholders.
        """
        # Never create an item by updating a key that does not exist.
        guard = "attribute_exists(run_id)" + (f" AND ({condition})" if condition else "")
        kwargs = update_arguments(
            set_values=set_values,
            remove=remove,
            add=add,
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

    # -- reads
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key=run_key(run_id), ConsistentRead=True).get("Item")

    def get_step(self, run_id: str, step_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key=step_key(run_id, step_id), ConsistentRead=True).get("Item")

    # Queries spell their expressions out instead of using boto3.dynamodb.conditions: the resource's
    # condition builder keeps placeholder counters on the shared client, so two threads building
    # conditions at once (the local stack runs handlers in threads) can swap each other's placeholders.
    def get_steps(self, run_id: str) -> list[dict[str, Any]]:
        pages = aws.item_pages(
            self._table.query,
            KeyConditionExpression="run_id = :run AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":run": run_id, ":prefix": STEP_PREFIX},
            ConsistentRead=True,
        )
        return [item for page in pages for item in page]

    def list_for_account(self, account_id: str, *, limit: int, after: str | None) -> tuple[list[dict], bool]:
        """Newest first; (runs, has_more). `after` is the last run id of the previous page."""
        condition = "account_id = :account"
        values: dict[str, Any] = {":account": account_id}
        if after:
            condition += " AND run_id < :after"
            values[":after"] = after
        kwargs: dict[str, Any] = {
            "IndexName": ACCOUNT_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        items: list[dict[str, Any]] = []
        for page in aws.item_pages(self._table.query, **kwargs):
            items.extend(page)
            if len(items) > limit:
                break
        return items[:limit], len(items) > limit
