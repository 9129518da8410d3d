"""The HTTP API: one Powertools resolver for every route, shared by the ApiFunction and the front."""

from __future__ import annotations

import json
import threading

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from switchyard.api import agent_routes, errors, feature_routes, inference_routes
from switchyard.api.admission import Admission, jobs_requested
from switchyard.api.openapi_docs import finish_document
from switchyard.api.request_guard import normalise_json_body, refuse_loops
from switchyard.errors import ApiError, to_http
from switchyard.services.accounts import get_accounts_service
from switchyard.services.rate_limits import get_rate_limiter
from switchyard.validation import json_body_deserializer

logger = Logger()
metrics = Metrics()

TITLE = "Switchyard"
DESCRIPTION = (
    "OpenAI-compatible inference gateway. Every /v1 and /api/inference call needs "
    "`Authorization: Bearer <api key>`."
)
_AUTHENTICATED_PREFIXES = ("/v1/", "/api/inference/")


def build_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=json_body_deserializer)
    errors.register(app)
    inference_routes.register(app)
    agent_routes.register(app)
    feature_routes.register(app)
    app.enable_swagger(path="/docs", title=TITLE, description=DESCRIPTION, version="1")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json():
        return Response(200, "application/json", openapi_document(app))

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok"}

    return app


def openapi_document(app: APIGatewayHttpResolver) -> str:
    spec = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version="1",
            description=DESCRIPTION,
            security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
            security=[{"bearer": []}],
        )
    )
    return json.dumps(finish_document(spec))


# A resolver keeps the current request on itself, so each thread gets its own: on Lambda that is one,
# in the local front's worker threads it is one per worker.
_local = threading.local()


def get_resolver() -> APIGatewayHttpResolver:
    resolver = getattr(_local, "resolver", None)
    if resolver is None:
        resolver = _local.resolver = build_resolver()
    return resolver


def _error_result(error: ApiError) -> dict:
    """`to_http`'s answer as an API Gateway result, for failures before the resolver runs."""
    answer = to_http(error)
    return {
        "statusCode": answer.status,
        "headers": dict(answer.headers),
        "body": answer.body,
        "isBase64Encoded": False,
    }


def _route_path(event: dict) -> str:
    """The path the routes see: on a named HTTP API stage, rawPath starts with /<stage>, which
    Powertools strips before routing; authentication must look at the same path."""
    path = event.get("rawPath") or ""
    stage = (event.get("requestContext") or {}).get("stage") or "$default"
    if stage != "$default" and path.startswith(f"/{stage}/"):
        return path[len(stage) + 1 :]
    return path


def resolve(event: dict, context) -> dict:
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
            resolver.append_context(account_id=account_id)
            method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", "")).upper()
            jobs = jobs_requested(method, path, event)
            if jobs is not None:
                admission = Admission(account_id, get_rate_limiter().admit(account_id, jobs))
                resolver.append_context(admission=admission)
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


def _with_limit_headers(result: dict, admission: Admission | None) -> dict:
    if admission is not None:
        result["headers"] = {**(result.get("headers") or {}), **admission.allowance.headers()}
    return result


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return resolve(event, context)
