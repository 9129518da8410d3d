"""The tooling is enforced, not only configured: CI's command lints, and every suppression says why."""

from __future__ import annotations

import re

SOURCE_FOLDERS = ("layers", "functions", "local", "admin", "agent", "benchmarks", "tests")
# A suppression reads `noqa: CODE[, CODE] - why`; ruff's RUF100 already rejects a code that is not
# selected or never fires.
NOQA = re.compile(r"#\s*noqa\b(?P<rest>.*)$")
EXPLAINED_NOQA = re.compile(r"^: [A-Z]+[0-9]+(, [A-Z]+[0-9]+)* - \S")


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


def test_given_the_sources_then_every_noqa_names_its_rules_and_says_why(repo_root):
    unexplained = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((repo_root / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                found = NOQA.search(line)
                if found and not EXPLAINED_NOQA.match(found.group("rest")):
                    unexplained.append(f"{path.relative_to(repo_root)}:{number}: {line.strip()}")

    assert unexplained == []
