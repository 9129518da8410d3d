"""DynamoDB storage of each account's rate limit, quota and dispatch share: one item per account.

The item (`account_id`) holds
- `requests_<window>`: how many requests of the UTC minute starting at epoch second <window> have been
  handed out (to the instances that count them, services/rate_limits.py), and `rpm_override`;
- `jobs_in_flight` (queued or running) and `jobs_override`;
- `running_jobs` (lease key -> expiry, epoch ms): the account's jobs a dispatcher is running now.

Counting requests is one unconditional UpdateItem (`ADD requests_<window> :n`): the counter only grows, so
the n requests a call adds are exactly the numbers (total - n, total] of that window, and every instance
can tell from the total it gets back which of them fall under the limit. No window has to be "started"
(a minute's first request costs the same one call as any other), and the same call removes the counters
of minutes that are over and reserves jobs in flight when the request creates jobs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import ClientError

from switchyard.adapters import aws
from switchyard.adapters.dynamo_updates import is_condition_failure, update_arguments
from switchyard.caches import cached
from switchyard.settings import get_settings

_WINDOW_ATTRIBUTE = re.compile(r"^requests_(\d+)$")
# What an item of the first design (one window per item, started by a conditional write) may still hold:
# dropped by the next count.
_RETIRED_ATTRIBUTES = ("window_start", "request_count", "rpm_limit", "jobs_limit")


def window_attribute(window: int) -> str:
    return f"requests_{window}"


@dataclass(frozen=True)
class Counters:
    """The item as a call saw it (None where the item has no such attribute)."""

    jobs_in_flight: int = 0
    rpm_override: int | None = None
    jobs_override: int | None = None
    # requests handed out, by window (epoch second the minute began)
    windows: Mapping[int, int] = field(default_factory=dict)
    retired: tuple[str, ...] = ()

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Counters:
        item = item or {}

        def number(name: str) -> int | None:
            return int(item[name]) if item.get(name) is not None else None

        windows = {}
        for name, value in item.items():
            match = _WINDOW_ATTRIBUTE.match(name)
            if match:
                windows[int(match.group(1))] = int(value)
        return cls(
            jobs_in_flight=number("jobs_in_flight") or 0,
            rpm_override=number("rpm_override"),
            jobs_override=number("jobs_override"),
            windows=windows,
            retired=tuple(name for name in _RETIRED_ATTRIBUTES if name in item),
        )

    def requests_in(self, window: int) -> int:
        return self.windows.get(window, 0)

    def stale_attributes(self, window: int) -> list[str]:
        """Counters of minutes before the previous one (the previous one stays: an instance whose clock is
        a little behind may still be counting it), and attributes of the first design."""
        stale = [window_attribute(w) for w in sorted(self.windows) if w < window - 60]
        return stale + list(self.retired)


@dataclass(frozen=True)
class Done:
    """The write happened; `counters` is the item after it."""

    counters: Counters


@dataclass(frozen=True)
class Refused:
    """The condition did not hold; `counters` is the item as it stood (what was wrong is read from it)."""

    counters: Counters
    present: frozenset[str] = frozenset()  # the attributes the item had


@dataclass(frozen=True)
class JobsReservation:
    """Jobs in flight to reserve with a count: `jobs` more, if the account's jobs limit is what the caller
    believes (`override`: its jobs_override, None for the deployment default) and `jobs_room` (that
    limit minus `jobs`) is not below the count in flight. DynamoDB conditions cannot add, so the caller
    computes the room and the item confirms the limit it was computed from."""

    jobs: int
    override: int | None
    jobs_room: int


class LimitsTable:
    def __init__(self, table_name: str):
        self._table = aws.table(table_name)

    # -- admission: one call
    def count(
        self,
        account_id: str,
        *,
        window: int,
        requests: int,
        drop: Iterable[str] = (),
        reservation: JobsReservation | None = None,
    ) -> Done | Refused:
        """Hand out `requests` more requests of `window` (0: none), drop the attributes `drop` (counters of
        past minutes) and, with `reservation`, reserve jobs in flight: all in one UpdateItem, which is
        conditional only when it reserves (then a refusal writes nothing)."""
        add: dict[str, Any] = {}
        if requests:
            add[window_attribute(window)] = requests
        condition = None
        values: dict[str, Any] = {}
        if reservation is not None:
            add["jobs_in_flight"] = reservation.jobs
            room = "(attribute_not_exists(jobs_in_flight) OR jobs_in_flight <= :room)"
            values[":room"] = reservation.jobs_room
            if reservation.override is None:
                condition = f"attribute_not_exists(jobs_override) AND {room}"
            else:
                condition = f"jobs_override = :override AND {room}"
                values[":override"] = reservation.override
        current = window_attribute(window)
        removed = tuple(name for name in dict.fromkeys(drop) if name != current)
        arguments = update_arguments(add=add, remove=removed, condition=condition, condition_values=values)
        return self._call(account_id, arguments)

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
            sets.append("rpm_override = :rpm")
            values[":rpm"] = rpm
        if max_jobs is not None:
            sets.append("jobs_override = :jobs")
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
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ReturnValues": "ALL_NEW",
        }
        if names:
            arguments["ExpressionAttributeNames"] = names
        if values:
            arguments["ExpressionAttributeValues"] = values
        return self._call(account_id, arguments)

    def _call(self, account_id: str, arguments: dict[str, Any]) -> Done | Refused:
        if "ConditionExpression" in arguments:
            arguments["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            item = self._table.update_item(Key={"account_id": account_id}, **arguments)["Attributes"]
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
