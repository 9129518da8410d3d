"""Routes beyond synchronous inference (jobs, batches, workflows) register here."""

from __future__ import annotations

from switchyard.api import batches_routes, jobs_routes, workflows_routes


def register(app) -> None:
    jobs_routes.register(app)
    batches_routes.register(app)
    workflows_routes.register(app)
