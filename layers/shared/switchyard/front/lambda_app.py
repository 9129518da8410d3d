"""The StreamFunction's ASGI app on AWS (`uvicorn switchyard.front.lambda_app:app` under the Lambda
Web Adapter): the front around the same API handler the ApiFunction runs.
"""

from __future__ import annotations

from typing import Any

from switchyard.front.app import ApiHandler, create_app


def _load_api_handler() -> ApiHandler:
    # Imported on first use (or during warm-up), not when uvicorn imports this module.
    from switchyard.api.app import lambda_handler

    return lambda_handler


def api_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _load_api_handler()(event, context)


def _warm_up() -> None:
    # uvicorn runs this during lifespan startup, before it opens its port: on Lambda that is the init
    # phase, so the first request does not pay for importing Powertools, boto3 and pydantic, and a
    # function deployed without its settings fails to start, naming the missing variables.
    _load_api_handler()
    from switchyard.settings import get_settings

    get_settings()


app = create_app(api_handler, warmup=_warm_up)
