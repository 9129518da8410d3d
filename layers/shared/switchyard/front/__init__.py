"""The ASGI front: turns HTTP requests into API Gateway HTTP API (payload v2) events for the API
Lambda handler, and relays streaming completions from the provider chunk by chunk.

The local stack serves it; on AWS the StreamFunction runs it under the Lambda Web Adapter
(`switchyard.front.lambda_app:app`). It never imports moto or the local stack.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so `switchyard.front.lambda_context` can be imported without Starlette and httpx.
    if name == "create_app":
        from switchyard.front.app import create_app

        return create_app
    raise AttributeError(name)
