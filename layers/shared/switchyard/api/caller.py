"""Who is calling: set by authentication before routing, read by every route (fail closed)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from switchyard.errors import AuthenticationFailed


def caller_account(app: APIGatewayHttpResolver) -> str:
    account_id = app.context.get("account_id")
    if not isinstance(account_id, str) or not account_id:
        # Only reachable if a route outside the authenticated prefixes asks for a caller: refuse.
        raise AuthenticationFailed("Authentication credentials were not provided.")
    return account_id
