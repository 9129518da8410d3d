"""The modules of the shared package import each other without a cycle (lazy imports included: an
import inside a function that closes a loop is a cycle held apart, not a cycle gone)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "layers" / "shared"
PACKAGE = "switchyard"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in (PACKAGE_ROOT / PACKAGE).rglob("*.py")}


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `module` imports (a `from package import name` counts as importing
    the submodule `package.name` when there is one, else the package itself)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first module repeated at the end), or None."""
    visiting: list[str] = []
    state: dict[str, str] = {}

    def visit(node: str) -> list[str] | None:
        state[node] = "visiting"
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "visiting":
                return [*visiting[visiting.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        visiting.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_shared_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checker_finds_a_cycle_held_apart_by_a_lazy_import():
    # The shape the package had: jobs -> (lazily) runner -> workflows -> jobs.
    graph = {"jobs": {"runner"}, "runner": {"workflows"}, "workflows": {"jobs"}, "leaf": set()}
    assert find_cycle(graph) == ["jobs", "runner", "workflows", "jobs"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_an_import_inside_a_function_is_an_edge(tmp_path):
    module = tmp_path / "jobs.py"
    module.write_text("def after_finish():\n    from switchyard.services.workflow_runner import report\n")
    known = {"switchyard.services.jobs", "switchyard.services.workflow_runner"}
    assert _imports("switchyard.services.jobs", module, known) == {"switchyard.services.workflow_runner"}


def test_the_graph_has_the_edges_the_layering_promises():
    graph = import_graph()
    # `from package import module` is an edge to the module.
    assert "switchyard.api.jobs_routes" in graph["switchyard.api.feature_routes"]
    # Generic job code knows nothing of workflows; only the wiring does.
    for jobs_module in ("switchyard.services.jobs", "switchyard.services.job_lifecycle"):
        assert not any("workflow" in name or "step_tokens" in name for name in graph[jobs_module])
    assert "switchyard.services.step_tokens" in graph["switchyard.wiring"]
    # workflows/ is pure: it imports no service, adapter or AWS code.
    for name, targets in graph.items():
        if name.startswith("switchyard.workflows"):
            assert not {t for t in targets if t.startswith(("switchyard.services", "switchyard.adapters"))}, (
                name
            )
