"""DynamoDB storage of each account's rate limit, quota and dispatch share: one item per account.

The item (`account_id`) holds
- `window_start` (epoch second the current minute began), `request_count` (admitted in it) and
  `rpm_limit` (the window's limit, copied from `rpm_override` or the deployment default when it starts);
- `jobs_in_flight` (queued or running) and `jobs_limit` (from `jobs_override` or the default);
- `running_jobs` (lease key -> expiry, epoch ms): the account's jobs a dispatcher is running now.

Every admission is one conditional UpdateItem: it counts the request (and reserves its jobs) only if the
window is the current one and there is room, so every Lambda instance shares the same limits exactly.
The first request of a minute finds the window old and makes two more calls: one starts the new window
(`start_window`, which also picks up the deployment's current defaults), one admits the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from botocore.exceptions import ClientError

from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure
from switchyard.caches import cached
from switchyard.settings import get_settings


@dataclass(frozen=True)
class Counters:
    """The item as an admission saw it (None where the item has no such attribute)."""

    window_start: int | None
    request_count: int
    rpm_limit: int | None
    jobs_in_flight: int
    jobs_limit: int | None
    rpm_override: int | None = None
    jobs_override: int | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Counters:
        item = item or {}

        def number(name: str) -> int | None:
            return int(item[name]) if item.get(name) is not None else None

        return cls(
            window_start=number("window_start"),
            request_count=number("request_count") or 0,
            rpm_limit=number("rpm_limit"),
            jobs_in_flight=number("jobs_in_flight") or 0,
            jobs_limit=number("jobs_limit"),
            rpm_override=number("rpm_override"),
            jobs_override=number("jobs_override"),
        )


@dataclass(frozen=True)
class Done:
    """The write happened; `counters` is the item after it."""

    counters: Counters


@dataclass(frozen=True)
class Refused:
    """The condition did not hold; `counters` is the item as it stood (what was wrong is read from it)."""

    counters: Counters
    present: frozenset[str] = frozenset()  # the attributes the item had


class LimitsTable:
    def __init__(self, table_name: str):
        self._table = aws.table(table_name)

    # -- admission (one call when the window is current)
    def admit(self, account_id: str, *, window: int, jobs: int, jobs_limit: int) -> Done | Refused:
        """Count one request of `window`, reserving `jobs` jobs in flight, if the window is current, the
        request fits its limit and, when jobs > 0, the item's jobs limit is `jobs_limit` (the caller's
        belief, so that the room can be a constant) and `jobs` more fit under it."""
        condition = "window_start = :w AND request_count < rpm_limit"
        values: dict[str, Any] = {":w": window, ":one": 1}
        update = "SET request_count = request_count + :one"
        if jobs:
            condition += " AND jobs_limit = :limit AND jobs_in_flight <= :room"
            values.update({":limit": jobs_limit, ":room": jobs_limit - jobs, ":jobs": jobs})
            update += " ADD jobs_in_flight :jobs"
        return self._update(account_id, update, condition, values)

    def start_window(
        self, account_id: str, *, window: int, default_rpm: int, default_jobs: int, seen: int | None
    ) -> bool:
        """Begin `window` (its count at 0) with the limits now in force, if the item is still at the window
        `seen` (None: it has none) and that one is older; False if another instance moved it first."""
        values: dict[str, Any] = {":w": window, ":zero": 0, ":rpm": default_rpm, ":jobs": default_jobs}
        if seen is None:
            condition = "attribute_not_exists(window_start)"
        else:
            condition = "window_start = :seen AND window_start < :w"
            values[":seen"] = seen
        result = self._update(
            account_id,
            "SET window_start = :w, request_count = :zero, rpm_limit = if_not_exists(rpm_override, :rpm), "
            "jobs_limit = if_not_exists(jobs_override, :jobs), "
            "jobs_in_flight = if_not_exists(jobs_in_flight, :zero)",
            condition,
            values,
        )
        return isinstance(result, Done)

    # -- jobs in flight
    def release_jobs(self, account_id: str, jobs: int) -> None:
        """Jobs that ended (or were reserved and never created); the count never goes below zero."""
        self._update(
            account_id,
            "ADD jobs_in_flight :minus",
            "jobs_in_flight >= :jobs",
            {":minus": -jobs, ":jobs": jobs},
        )

    def add_jobs(self, account_id: str, jobs: int) -> None:
        """Jobs that count without being checked (a workflow's steps: the run itself was admitted)."""
        self._table.update_item(
            Key={"account_id": account_id},
            UpdateExpression="ADD jobs_in_flight :jobs",
            ExpressionAttributeValues={":jobs": jobs},
        )

    def correct_jobs_in_flight(self, account_id: str, *, counted: int, actual: int) -> bool:
        """Set the count of jobs in flight to what the jobs table says, if no one changed it meanwhile."""
        result = self._update(
            account_id,
            "SET jobs_in_flight = :actual",
            "jobs_in_flight = :counted",
            {":actual": actual, ":counted": counted},
        )
        return isinstance(result, Done)

    # -- an operator's limits
    def set_limits(self, account_id: str, *, rpm: int | None, max_jobs: int | None) -> Counters:
        """Override one account's limits (None: leave as is); in force at once, not at the next minute."""
        sets: list[str] = []
        values: dict[str, Any] = {}
        if rpm is not None:
            sets += ["rpm_override = :rpm", "rpm_limit = :rpm"]
            values[":rpm"] = rpm
        if max_jobs is not None:
            sets += ["jobs_override = :jobs", "jobs_limit = :jobs"]
            values[":jobs"] = max_jobs
        item = self._table.update_item(
            Key={"account_id": account_id},
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return Counters.from_item(item)

    def get(self, account_id: str) -> Counters:
        item = self._table.get_item(Key={"account_id": account_id}, ConsistentRead=True).get("Item")
        return Counters.from_item(item)

    # -- dispatch share: the account's running jobs, as leases that expire if their holder dies
    def take_running_slot(self, account_id: str, lease_key: str, until_ms: int, share: int) -> bool:
        result = self._update(
            account_id,
            "SET running_jobs.#lease = :until",
            "attribute_exists(running_jobs) AND size(running_jobs) < :share",
            {":until": until_ms, ":share": share},
            names={"#lease": lease_key},
        )
        if isinstance(result, Done):
            return True
        if "running_jobs" in result.present:
            return False
        # The account's first running job: the map does not exist yet (SET a.b needs a).
        created = self._update(
            account_id,
            "SET running_jobs = :first",
            "attribute_not_exists(running_jobs)",
            {":first": {lease_key: until_ms}},
        )
        return isinstance(created, Done) or self.take_running_slot(account_id, lease_key, until_ms, share)

    def release_running_slot(self, account_id: str, lease_key: str) -> None:
        self._update(
            account_id,
            "REMOVE running_jobs.#lease",
            "attribute_exists(running_jobs)",
            {},
            names={"#lease": lease_key},
        )

    def expire_running_slots(self, now_ms: int) -> int:
        """Drop running leases past their expiry (their dispatcher died); returns how many were dropped."""
        dropped = 0
        pages = aws.item_pages(self._table.scan, ProjectionExpression="account_id, running_jobs")
        for item in (item for page in pages for item in page):
            for lease_key, until in (item.get("running_jobs") or {}).items():
                if int(until) >= now_ms:
                    continue
                result = self._update(
                    item["account_id"],
                    "REMOVE running_jobs.#lease",
                    "running_jobs.#lease = :until",
                    {":until": until},
                    names={"#lease": lease_key},
                )
                dropped += isinstance(result, Done)
        return dropped

    def _update(
        self,
        account_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        *,
        names: dict[str, str] | None = None,
    ) -> Done | Refused:
        """One conditional UpdateItem; on a failed condition, the item as it stood (one call either way)."""
        arguments: dict[str, Any] = {
            "Key": {"account_id": account_id},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            arguments["ExpressionAttributeNames"] = names
        if values:
            arguments["ExpressionAttributeValues"] = values
        try:
            item = self._table.update_item(**arguments)["Attributes"]
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            # boto3 is loaded lazily (aws.py), and a refusal is the rare case.
            from boto3.dynamodb.types import TypeDeserializer

            deserializer = TypeDeserializer()
            # ReturnValuesOnConditionCheckFailure puts the item in the error (botocore types it as object).
            refused_item = cast(dict[str, Any], exc.response.get("Item") or {})
            old = {k: deserializer.deserialize(v) for k, v in refused_item.items()}
            return Refused(Counters.from_item(old), frozenset(old))
        return Done(Counters.from_item(item))


@cached
def get_limits_table() -> LimitsTable:
    return LimitsTable(get_settings().limits_table)
