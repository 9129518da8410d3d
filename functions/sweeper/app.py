"""SweeperFunction (EventBridge schedule): re-queue lost or orphaned jobs, free expired provider slots."""

from dataclasses import asdict

from aws_lambda_powertools import Logger
from switchyard.services.sweeper import get_sweeper

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    report = asdict(get_sweeper().sweep())
    logger.info("swept", extra=report)
    return report
