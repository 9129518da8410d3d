"""The tooling is enforced, not only configured: CI's command lints, and every suppression says why."""

from __future__ import annotations

import re
import tomllib

SOURCE_FOLDERS = ("layers", "functions", "local", "admin", "agent", "benchmarks", "tests")
# A suppression reads `noqa: CODE[, CODE] - why`; ruff's RUF100 already rejects a code that is not
# selected or never fires.
NOQA = re.compile(r"#\s*noqa\b(?P<rest>.*)$")
EXPLAINED_NOQA = re.compile(r"^: [A-Z]+[0-9]+(, [A-Z]+[0-9]+)* - \S")
# Likewise `type: ignore[code, ...]  # why`: mypy's warn_unused_ignores (strict) rejects a stale one.
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<rest>.*)$")
EXPLAINED_TYPE_IGNORE = re.compile(r"^\[[a-z-]+(, [a-z-]+)*\]\s+#\s*\S")


def _make_target(makefile: str, target: str) -> list[str]:
    match = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, f"no {target} target"
    return [line.strip() for line in match.group(1).splitlines()]


def test_given_ci_then_it_runs_make_test_which_lints_before_the_suite(repo_root):
    ci = (repo_root / ".ci" / "run").read_text()
    recipe = _make_target((repo_root / "Makefile").read_text(), "test")

    assert re.search(r"^make test$", ci, re.MULTILINE)
    assert recipe.index("$(BIN)/ruff check .") < recipe.index("$(BIN)/pytest")
    assert recipe.index("$(BIN)/ruff format --check .") < recipe.index("$(BIN)/pytest")


def test_given_make_test_then_it_type_checks_the_layer_and_the_functions_strictly_before_the_suite(repo_root):
    recipe = _make_target((repo_root / "Makefile").read_text(), "test")
    mypy = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["mypy"]

    # Bare `mypy`: what it checks, and how, is the [tool.mypy] table, so CI and a developer run the same.
    assert recipe.index("$(BIN)/mypy") < recipe.index("$(BIN)/pytest")
    assert mypy["strict"] is True
    assert "pydantic.mypy" in mypy["plugins"]
    assert {"layers/shared/switchyard", "functions/*/app.py"} <= set(mypy["files"])


def test_given_the_sources_then_every_type_ignore_names_its_error_code_and_says_why(repo_root):
    unexplained = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((repo_root / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                found = TYPE_IGNORE.search(line)
                if found and not EXPLAINED_TYPE_IGNORE.match(found.group("rest")):
                    unexplained.append(f"{path.relative_to(repo_root)}:{number}: {line.strip()}")

    assert unexplained == []


def test_given_the_sources_then_every_noqa_names_its_rules_and_says_why(repo_root):
    unexplained = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((repo_root / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                found = NOQA.search(line)
                if found and not EXPLAINED_NOQA.match(found.group("rest")):
                    unexplained.append(f"{path.relative_to(repo_root)}:{number}: {line.strip()}")

    assert unexplained == []
