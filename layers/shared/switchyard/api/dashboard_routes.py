"""GET /dashboard/...: the dashboard's static files (switchyard.dashboard), unauthenticated: the files
hold no data, and every data call they make carries the user's key."""

from __future__ import annotations

import json
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from switchyard import dashboard

INDEX = "index.html"


def _file(app, name: str):
    found = dashboard.find(name)
    if found is None:
        return Response(404, "application/json", json.dumps({"detail": f"Not found: /dashboard/{name}"}))
    headers = {
        **dashboard.SECURITY_HEADERS,
        "ETag": found.etag,
        # Revalidate every time (a cheap 304): a new deployment's files are picked up at once.
        "Cache-Control": "no-cache",
    }
    if app.current_event.headers.get("if-none-match") == found.etag:
        return Response(304, None, "", headers=headers)
    return Response(200, found.content_type, found.body, headers=headers)


def register(app) -> None:
    @app.get("/dashboard", include_in_schema=False)
    def dashboard_root():
        # Relative, so it also holds under a named stage (/dev/dashboard -> /dev/dashboard/), where the
        # page's relative links to its modules then resolve.
        return Response(308, "text/plain", "", headers={"Location": "dashboard/"})

    @app.get("/dashboard/", include_in_schema=False)
    def dashboard_index():
        return _file(app, INDEX)

    @app.get("/dashboard/<name>", include_in_schema=False)
    def dashboard_file(name: Annotated[str, Path(max_length=64)]):
        return _file(app, name)
