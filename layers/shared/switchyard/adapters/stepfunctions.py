"""Step Functions: start workflow executions and answer task tokens.

A token is answered once; a late or second answer is harmless. AWS answers those with TaskTimedOut
("Provided task does not exist anymore"), moto with InvalidToken once the execution ended; both (and
TaskDoesNotExist) mean "already answered", which callers get as False instead of an exception.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from switchyard.adapters import aws

logger = logging.getLogger(__name__)

ALREADY_ANSWERED = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")
MAX_CAUSE_CHARS = 32_768  # the API's limit on `cause`
MAX_ERROR_CHARS = 256


def _already_answered(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ALREADY_ANSWERED


class StepFunctions:
    def start_execution(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        # Always named: unnamed starts collapse onto one execution ARN in moto, and a name makes a
        # retried start of the same run fail instead of running it twice.
        answer = aws.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload, separators=(",", ":"))
        )
        return answer["executionArn"]

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        """True when this call answered the token; False when it had been answered (or expired)."""
        try:
            aws.client("stepfunctions").send_task_success(
                taskToken=token, output=json.dumps(output, separators=(",", ":"))
            )
        except ClientError as exc:
            if _already_answered(exc):
                logger.info("task token already answered (%s)", exc.response["Error"]["Code"])
                return False
            raise
        return True

    def fail(self, token: str, error: str, cause: str = "") -> bool:
        try:
            aws.client("stepfunctions").send_task_failure(
                taskToken=token, error=error[:MAX_ERROR_CHARS], cause=cause[:MAX_CAUSE_CHARS]
            )
        except ClientError as exc:
            if _already_answered(exc):
                logger.info("task token already answered (%s)", exc.response["Error"]["Code"])
                return False
            raise
        return True
