"""Play EventBridge schedules: a timer per Schedule/ScheduleV2 event invokes its function every interval.

Only `rate(...)` expressions have a fixed interval; `cron(...)` ones are skipped unless an interval
override is given (SWITCHYARD_LOCAL_SCHEDULE_SECONDS or `--schedule-seconds`), which also lets a
developer run a one-minute sweeper every few seconds.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of a `rate(...)` expression; None for anything else (cron, at)."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2).rstrip("s")
    return float(value * _UNIT_SECONDS[unit])


def scheduled_event(rule_name: str, region: str, account_id: str) -> dict[str, Any]:
    """What EventBridge sends a Lambda target of a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{rule_name}"],
        "detail": {},
    }


class ScheduleTimer:
    """Invokes `invoke(event)` every `interval_seconds` (first run one interval after start)."""

    def __init__(
        self,
        *,
        name: str,
        interval_seconds: float,
        invoke: Callable[[dict], Any],
        region: str = "us-east-1",
        account_id: str = "123456789012",
        input_json: str | None = None,
    ):
        self.name = name
        self.interval_seconds = interval_seconds
        self._invoke = invoke
        self._region = region
        self._account_id = account_id
        self._input = input_json
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        next_run = time.monotonic() + self.interval_seconds
        while not self._stopping.wait(max(0.0, next_run - time.monotonic())):
            # Fixed rate, like EventBridge: a slow run does not push the following ones back.
            next_run += self.interval_seconds
            event = (
                json.loads(self._input)
                if self._input
                else scheduled_event(self.name, self._region, self._account_id)
            )
            try:
                self._invoke(event)
            except Exception:
                log.exception("Scheduled invocation %s failed", self.name)
            next_run = max(next_run, time.monotonic())  # after a long run, do not fire a burst


def timer_for_event(
    *,
    name: str,
    event_type: str,
    properties: dict[str, Any],
    invoke: Callable[[dict], Any],
    region: str,
    account_id: str,
    interval_override: float | None = None,
) -> ScheduleTimer | None:
    """A timer for a SAM `Schedule` or `ScheduleV2` event, or None when it is disabled or not a rate."""
    if event_type == "Schedule":
        expression, enabled = properties.get("Schedule", ""), properties.get("Enabled", True)
        state = properties.get("State")
    else:  # ScheduleV2 (EventBridge Scheduler)
        expression, enabled = properties.get("ScheduleExpression", ""), True
        state = properties.get("State")
    if str(enabled).lower() == "false" or (state and str(state).upper() == "DISABLED"):
        return None
    interval = interval_override or rate_seconds(str(expression))
    if interval is None:
        log.warning(
            "Schedule %s (%s) has no fixed rate; set SWITCHYARD_LOCAL_SCHEDULE_SECONDS to run it",
            name,
            expression,
        )
        return None
    input_value = properties.get("Input")
    input_json = (
        input_value if isinstance(input_value, str) or input_value is None else json.dumps(input_value)
    )
    return ScheduleTimer(
        name=name,
        interval_seconds=interval,
        invoke=invoke,
        region=region,
        account_id=account_id,
        input_json=input_json,
    )
