"""The list shape every paged listing answers with (OpenAI's: data, has_more, first_id, last_id)."""

from __future__ import annotations

from typing import Any


def list_page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """Page further with `?after=<last_id>`."""
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
