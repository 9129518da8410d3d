"""The HTTP API: one Powertools resolver for every route, shared by the ApiFunction and the front."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from switchyard import metrics, tracing
from switchyard.api import (
    account_routes,
    agent_routes,
    dashboard_routes,
    errors,
    feature_routes,
    inference_routes,
    providers_routes,
)
from switchyard.api.route_groups import route_group
from switchyard.errors import ApiError, to_http
from switchyard.logs import logged_invocation
from switchyard.services.accounts import get_accounts_service

TITLE = "Switchyard"
DESCRIPTION = (
    "OpenAI-compatible inference gateway. Every /v1, /api/inference and /api/account call needs "
    "`Authorization: Bearer <api key>`. The dashboard is at /dashboard/."
)
# Everything else is public: /health, the API explorer, and the dashboard's static files (which hold no
# data; their every data call carries the user's key).
_AUTHENTICATED_PREFIXES = ("/v1/", "/api/inference/", "/api/account/")


class PerThreadResolver(APIGatewayHttpResolver):
    """Powertools stores the request being resolved on the BaseRouter class, which every thread shares:
    two requests served at once (the local front's worker threads, the StreamFunction's) read each
    other's headers and body. Each thread has its own resolver (get_resolver), so keeping the event
    on the instance, which attribute lookup finds before the class, gives every request its own."""

    def resolve(self, event, context):
        self.current_event = cast(APIGatewayProxyEventV2, self._to_proxy_event(event))
        self.lambda_context = context
        return super().resolve(event, context)


def build_resolver() -> APIGatewayHttpResolver:
    app = PerThreadResolver(enable_validation=True)
    errors.register(app)
    inference_routes.register(app)
    agent_routes.register(app)
    feature_routes.register(app)
    providers_routes.register(app)
    account_routes.register(app)
    dashboard_routes.register(app)
    app.enable_swagger(path="/docs", title=TITLE, description=DESCRIPTION, version="1")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json():
        return Response(200, "application/json", openapi_document(app))

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    return app


def openapi_document(app: APIGatewayHttpResolver) -> str:
    spec = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version="1",
            description=DESCRIPTION,
            security_schemes={"bearer": HTTPBearer()},
            security=[{"bearer": []}],
        )
    )
    for path, body in inference_routes.MULTIPART_DOCS.items():
        operation = spec.get("paths", {}).get(path, {}).get("post")
        if operation is not None:
            operation.update(body)
    for (path, method), body in account_routes.OPENAPI_OPERATIONS.items():
        operation = spec.get("paths", {}).get(path, {}).get(method)
        if operation is not None:
            operation.update(body)
    for operation in (op for item in spec.get("paths", {}).values() for op in item.values()):
        # Powertools documents 422 for validation errors; this API answers 400 (documented per route).
        operation.get("responses", {}).pop("422", None)
    from switchyard.api.webhooks_routes import document_events

    document_events(spec)
    return json.dumps(spec)


# A resolver keeps the current request on itself, so each thread gets its own: on Lambda that is one,
# in the local front's worker threads it is one per worker.
_local = threading.local()


def get_resolver() -> APIGatewayHttpResolver:
    resolver = getattr(_local, "resolver", None)
    if resolver is None:
        resolver = _local.resolver = build_resolver()
    return resolver


def _error_result(error: ApiError) -> dict[str, Any]:
    """`to_http`'s answer as an API Gateway result, for failures before the resolver runs."""
    answer = to_http(error)
    return {
        "statusCode": answer.status,
        "headers": dict(answer.headers),
        "body": answer.body,
        "isBase64Encoded": False,
    }


def _route_path(event: dict[str, Any]) -> str:
    """The path the routes see: on a named HTTP API stage, rawPath starts with /<stage>, which
    Powertools strips before routing; authentication must look at the same path."""
    path = event.get("rawPath") or ""
    stage = (event.get("requestContext") or {}).get("stage") or "$default"
    if stage != "$default" and path.startswith(f"/{stage}/"):
        return path[len(stage) + 1 :]
    return path


def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Authenticate first (so a caller without a key learns nothing about bodies), then route."""
    resolver = get_resolver()
    if _route_path(event).startswith(_AUTHENTICATED_PREFIXES):
        try:
            account_id = get_accounts_service().authenticate(
                (event.get("headers") or {}).get("authorization")
            )
        except ApiError as error:
            return _error_result(error)
        resolver.context["account_id"] = account_id  # what append_context does (which has no annotations)
    return resolver.resolve(event, context)


@logged_invocation(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Every request is counted by route group and status; jobs it submits remember its request id."""
    started = time.perf_counter()
    status = 500  # what API Gateway answers when the handler raises
    request_id = (event.get("requestContext") or {}).get("requestId")
    with metrics.measured_request(route_group(_route_path(event))), tracing.request_scope(request_id):
        try:
            result = resolve(event, context)
            status = int(result.get("statusCode") or 200)
            return result
        finally:
            metrics.record_request(status, (time.perf_counter() - started) * 1000)
