"""Routes beyond synchronous inference (jobs, batches, workflows) register here."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from switchyard.api import batches_routes, jobs_routes, workflows_routes


def register(app: APIGatewayHttpResolver) -> None:
    jobs_routes.register(app)
    batches_routes.register(app)
    workflows_routes.register(app)
