"""cfn-lint (with its SAM transform) finds nothing on template.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

cfnlint_api = pytest.importorskip("cfnlint.api")

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


def test_given_the_template_when_cfn_lint_runs_then_it_reports_no_errors_or_warnings():
    matches = cfnlint_api.lint_file(TEMPLATE_PATH)

    findings = [
        f"{m.rule.id} {m.rule.severity} line {m.linenumber}: {m.message}"
        for m in matches
        if m.rule.severity in ("error", "warning")
    ]
    assert findings == []
