"""SweeperFunction (EventBridge schedule): re-queue lost or orphaned jobs, free expired provider slots,
and take the census behind the operators' gauges and alarms (services/sweeper.py)."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from switchyard.logs import logged_invocation, logger
from switchyard.services.sweeper import get_sweeper


@logged_invocation()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = asdict(get_sweeper().sweep())
    logger.info("swept", extra=report)
    return report
