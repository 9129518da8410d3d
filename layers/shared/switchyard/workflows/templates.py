"""Curated workflow templates: JSON files shipped in the layer next to this module (templates/*.json).

A template file is `{"id", "name", "description", "inputs": [...], "steps": [...]}`; `inputs` and
`steps` form a spec like an inline one, so templates go through the same validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchyard.caches import cached
from switchyard.errors import InvalidRequest
from switchyard.workflows.model import WorkflowSpec
from switchyard.workflows.spec import parse_spec

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class WorkflowTemplate:
    id: str
    name: str
    description: str
    raw_spec: dict[str, Any]
    spec: WorkflowSpec

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "workflow.template",
            "name": self.name,
            "description": self.description,
            **self.spec.public(),
        }


def _load(path: Path) -> WorkflowTemplate:
    document = json.loads(path.read_text(encoding="utf-8"))
    raw_spec = {key: document[key] for key in ("inputs", "steps") if key in document}
    try:
        spec = parse_spec(raw_spec)
    except InvalidRequest as exc:  # a broken shipped template is a bug: fail loudly, naming the file
        raise ValueError(f"workflow template {path.name}: {exc.message}") from exc
    if document.get("id") != path.stem:
        raise ValueError(f"workflow template {path.name}: id must be {path.stem!r}")
    return WorkflowTemplate(
        document["id"], document.get("name", path.stem), document.get("description", ""), raw_spec, spec
    )


@cached
def all_templates() -> tuple[WorkflowTemplate, ...]:
    return tuple(_load(path) for path in sorted(TEMPLATES_DIR.glob("*.json")))


def find_template(template_id: str) -> WorkflowTemplate | None:
    return next((t for t in all_templates() if t.id == template_id), None)
