"""Schedule timers: rate parsing, the EventBridge event shape, and a fast local tick."""

from __future__ import annotations

import time

import pytest
from switchyard_local.scheduler import rate_seconds, timer_for_event


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_expressions(expression: str, seconds: float) -> None:
    assert rate_seconds(expression) == seconds


def test_cron_has_no_fixed_rate_and_is_skipped_without_an_override() -> None:
    assert rate_seconds("cron(0 12 * * ? *)") is None
    kwargs = {
        "name": "t",
        "event_type": "Schedule",
        "invoke": print,
        "region": "us-east-1",
        "account_id": "1",
    }
    assert timer_for_event(properties={"Schedule": "cron(0 12 * * ? *)"}, **kwargs) is None
    assert timer_for_event(properties={"Schedule": "rate(1 minute)", "Enabled": False}, **kwargs) is None


def test_a_timer_ticks_with_a_scheduled_event_and_stops(eventually) -> None:
    events: list[dict] = []
    timer = timer_for_event(
        name="Sweeper-Every",
        event_type="Schedule",
        properties={"Schedule": "rate(1 minute)"},
        invoke=events.append,
        region="us-east-1",
        account_id="123456789012",
        interval_override=0.05,
    )
    timer.start()
    eventually(lambda: len(events) >= 2, timeout=5)
    timer.stop()
    count = len(events)
    assert events[0]["detail-type"] == "Scheduled Event" and events[0]["source"] == "aws.events"
    assert events[0]["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/Sweeper-Every"]
    assert events[0]["id"] != events[1]["id"]
    time.sleep(0.2)
    assert len(events) == count  # stopped means stopped
