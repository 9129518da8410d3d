"""SweeperFunction (EventBridge schedule): re-queue lost or orphaned jobs, free expired provider slots."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from switchyard.services.sweeper import get_sweeper

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = asdict(get_sweeper().sweep())
    logger.info("swept", extra=report)
    return report
