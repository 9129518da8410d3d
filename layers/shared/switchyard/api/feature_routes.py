"""Routes beyond synchronous inference (jobs, batches, workflows, the background path, webhooks) register here."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from switchyard.api import background_routes, batches_routes, jobs_routes, webhooks_routes, workflows_routes


def register(app: APIGatewayHttpResolver) -> None:
    jobs_routes.register(app)
    background_routes.register(app)
    batches_routes.register(app)
    workflows_routes.register(app)
    webhooks_routes.register(app)
