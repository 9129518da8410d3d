"""Routes beyond synchronous inference (jobs, batches, workflows) register here."""

from __future__ import annotations


def register(app) -> None:
    return None
