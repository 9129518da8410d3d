"""Routes beyond synchronous inference (jobs, batches, workflows) register here."""

from __future__ import annotations


def register(app) -> None:
    from switchyard.api import batches_routes, jobs_routes

    jobs_routes.register(app)
    batches_routes.register(app)
    from switchyard.api import workflows_routes

    workflows_routes.register(app)
