"""A stand-in for the Lambda runtime's context object, for handlers called in-process."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LambdaContext:
    """The attributes handlers (and Powertools' Logger) read from the real context."""

    function_name: str
    invoked_function_arn: str = ""
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline_ms: int | None = None
    identity: object | None = None
    client_context: object | None = None

    @classmethod
    def for_invocation(
        cls,
        function_name: str,
        *,
        invoked_function_arn: str = "",
        memory_limit_in_mb: int = 128,
        timeout_seconds: float = 3,
        aws_request_id: str | None = None,
    ) -> LambdaContext:
        return cls(
            function_name=function_name,
            invoked_function_arn=invoked_function_arn,
            memory_limit_in_mb=memory_limit_in_mb,
            aws_request_id=aws_request_id or str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{function_name}",
            deadline_ms=int((time.time() + timeout_seconds) * 1000),
        )

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline_ms is None:
            return 0
        return max(0, self.deadline_ms - int(time.time() * 1000))
