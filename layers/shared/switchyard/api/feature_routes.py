"""Routes beyond synchronous inference (jobs, batches, workflows) register here."""

from __future__ import annotations


def register(app) -> None:
    from switchyard.api import jobs_routes

    jobs_routes.register(app)
