"""The package's import graph: one-way data flow, no cycles (docs: style guide).

Every import counts, including those inside functions (a lazy import is still a
dependency), so a cycle cannot hide behind ``import`` statements moved into a body.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "calaudit"
#: What computes statistics: the reporters read results and never import these.
COMPUTING = {"calaudit.bootstrap", "calaudit.estimators", "calaudit.estimates", "calaudit.binning",
             "calaudit.auditing", "calaudit.metric_functions", "calaudit.decisions.compare",
             "calaudit.decisions.segments", "calaudit.decisions.segment_test", "calaudit.decisions.segment_levels",
             "calaudit.decisions.routing", "calaudit.decisions.sequences", "calaudit.human.metrics",
             "calaudit.human.intervals", "calaudit.human.analysis"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            submodules = {f"{name}.{alias.name}" for alias in node.names} & set(modules)
            found |= submodules
            if name in modules and len(submodules) < len(node.names):
                found.add(name)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
    return found - {module}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_has_no_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # calaudit.cli imports the audit only inside the run command.
    assert "calaudit.auditing" in graph["calaudit.cli"]


def test_reporters_compute_no_statistic():
    graph = import_graph()
    reporters = [m for m in graph if m.startswith(("calaudit.reporters", "calaudit.report."))]
    assert reporters
    for module in reporters:
        computing = sorted(graph[module] & COMPUTING)
        assert computing == [], f"{module} imports {computing}"
