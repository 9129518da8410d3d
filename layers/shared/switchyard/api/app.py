"""The HTTP API: one Powertools resolver for every route, shared by the ApiFunction and the front."""

from __future__ import annotations

import json
import logging
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
from switchyard.api.admission import Admission, jobs_requested
from switchyard.api.openapi_docs import finish_document
from switchyard.api.request_guard import normalise_json_body, refuse_loops
from switchyard.api.route_groups import route_group
from switchyard.errors import ApiError, to_http
from switchyard.logs import logged_invocation
from switchyard.services.accounts import get_accounts_service
from switchyard.services.rate_limits import get_rate_limiter
from switchyard.validation import json_body_deserializer

logger = logging.getLogger(__name__)

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
    app = PerThreadResolver(enable_validation=True, json_body_deserializer=json_body_deserializer)
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
    for (path, method), body in account_routes.OPENAPI_OPERATIONS.items():
        operation = spec.get("paths", {}).get(path, {}).get(method)
        if operation is not None:
            operation.update(body)
    finish_document(spec)
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
    """Refuse a request that looped back from a provider call, authenticate (so a caller without a key
    learns nothing about bodies), count the request against the account's limits, check the body's
    encoding, then route."""
    resolver = get_resolver()
    path = _route_path(event)
    admission: Admission | None = None
    try:
        refuse_loops(event.get("headers") or {})
        if path.startswith(_AUTHENTICATED_PREFIXES):
            account_id = get_accounts_service().authenticate(
                (event.get("headers") or {}).get("authorization")
            )
            resolver.context["account_id"] = account_id  # what append_context does (which has no annotations)
            method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", "")).upper()
            jobs = jobs_requested(method, path, event)
            if jobs is not None:
                admission = Admission(account_id, get_rate_limiter().admit(account_id, jobs))
                resolver.context["admission"] = admission
        normalise_json_body(event, path)
    except ApiError as error:
        result = _error_result(error)
        return _with_limit_headers(result, admission)
    try:
        result = resolver.resolve(event, context)
    finally:
        if admission is not None:
            _settle(admission)
    return _with_limit_headers(result, admission)


def _settle(admission: Admission) -> None:
    """Give back the jobs the request reserved and did not create (or count ones it made unannounced)."""
    limiter = get_rate_limiter()
    try:
        if admission.unused:
            limiter.release(admission.account_id, admission.unused)
        elif admission.created > admission.allowance.jobs_reserved:
            limiter.count_unchecked(
                admission.account_id, admission.created - admission.allowance.jobs_reserved
            )
    except Exception:
        logger.exception("could not settle the jobs reserved by a request")


def _with_limit_headers(result: dict[str, Any], admission: Admission | None) -> dict[str, Any]:
    if admission is not None:
        result["headers"] = {**(result.get("headers") or {}), **admission.allowance.headers()}
    return result


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
