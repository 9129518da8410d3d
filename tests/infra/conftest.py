"""Fixtures for the template and build-config checks (no AWS, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.cfn_template import Template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def template() -> Template:
    return Template.from_file(TEMPLATE_PATH)
